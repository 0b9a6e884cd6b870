"""Re-cut a prepared dataset's faces another way, row for row: the same splits and labels, each face cut afresh from
its original photo (metadata's source_path) through the detect path. Compares framings on equal terms (issue 21,
item 5: dlib's own 5-landmark chips against the detector-box crops the dataset was prepared with).

Usage: python benchmarks/recut_chips.py data/mixture --chip dlib --output data/mixture_dlib [--workers 2]

Rows whose photo is missing or shows no face are left out and counted in the printed summary and report.json.
"""

import argparse
import json
import shutil
import sys
from functools import partial
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPLITS = ("train", "validation", "test")


def recut_one(row: dict, chip: str, output: Path) -> str | None:
    """Cut one row's face into `output`; the reason it could not be, or None."""
    from genderage.data.images import ImageRejected, open_rgb
    from genderage.serving.faces import largest_face_crop

    try:
        image, _ = open_rgb(row["source_path"])
    except (ImageRejected, OSError) as error:
        return f"unreadable: {error}"
    crop = largest_face_crop(image, chip)
    if crop is None:
        return "no face found"
    crop.save(output / row["file_name"], "JPEG", quality=95)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared", help="a folder written by prepare_dataset.py")
    parser.add_argument("--chip", required=True, help="a name in genderage.serving.faces.FACE_CHIPS (e.g. dlib)")
    parser.add_argument("--output", required=True, help="the new prepared folder (must not exist)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    from genderage.serving.faces import FACE_CHIPS

    prepared, output = Path(args.prepared), Path(args.output)
    if args.chip not in FACE_CHIPS:
        parser.error(f"--chip {args.chip!r}: use one of {sorted(FACE_CHIPS)}")
    if not (prepared / "report.json").is_file():
        parser.error(f"{prepared} is not a prepared dataset (no report.json)")
    if output.exists():
        parser.error(f"{output} exists; choose a new folder")
    report = json.loads((prepared / "report.json").read_text())
    left_out = []
    with Pool(args.workers) as pool:
        for split in SPLITS:
            rows = [json.loads(line) for line in (prepared / split / "metadata.jsonl").read_text().splitlines()]
            (output / split).mkdir(parents=True)
            reasons = pool.map(partial(recut_one, chip=args.chip, output=output / split), rows, chunksize=64)
            kept = [row for row, reason in zip(rows, reasons) if reason is None]
            left_out += [{"split": split, "path": row["source_path"], "reason": reason} for row, reason in zip(rows, reasons) if reason]
            (output / split / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in kept))
            report["splits"][split] = len(kept)
            print(f"{split}: {len(kept)} of {len(rows)} faces cut ({len(rows) - len(kept)} left out)", flush=True)
    report.update({"recut_from": str(prepared), "face_chip": args.chip, "recut_left_out": left_out})
    (output / "report.json").write_text(json.dumps(report, indent=2))
    shutil.copy(prepared / "README.md", output / "README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
