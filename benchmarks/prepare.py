"""Time prepare_dataset on the real sets: UTKFace (23,050) + the men/women set (2,398). Goal: ≤ 2 minutes.

Usage: python benchmarks/prepare.py --shared ../shared/data [--workers N]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", required=True, help="the folder holding utkface/ and men_women_classification_128px/")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    from genderage.data.dataset_card import format_summary
    from genderage.data.imagefolder import PrepareConfig, prepare_dataset
    from genderage.data.sources import parse_source_spec

    shared = Path(args.shared)
    if not shared.is_dir():
        print(f"error: {shared} not found", file=sys.stderr)
        return 2
    sources = [parse_source_spec(f"utkface={shared / 'utkface'}"), parse_source_spec(f"folders={shared / 'men_women_classification_128px'}")]
    with tempfile.TemporaryDirectory() as out:
        config = PrepareConfig(sources=sources, output_dir=Path(out) / "prepared", **({"workers": args.workers} if args.workers else {}))
        started = time.perf_counter()
        report = prepare_dataset(config)
        seconds = time.perf_counter() - started
    print(format_summary(report))
    print(f"prepare: {report['inputs']} inputs in {seconds:.1f} s wall = {report['inputs'] / seconds:.0f} images/s "
          f"({config.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
