"""WiSE-FT: mix the weights of two model folders of one architecture (a start, e.g. a linear probe on the frozen face
network, and its fine-tuned version) into a normal model folder, at one or several α.

Usage:
    python wise_ft.py START_DIR FINETUNED_DIR --alpha 0.5 --output runs/wise_0.5
    python wise_ft.py START_DIR FINETUNED_DIR --alpha 0.25 0.5 0.75 --output runs/wise   # runs/wise/alpha_0.25, ...
α = 0 is the start, 1 the fine-tuned model. Each folder gets model.onnx (fp32); compare the sweep with
benchmarks/compare_models.py runs/wise/alpha_* FINETUNED_DIR --source ...
"""

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("start", help="the model folder at alpha 0")
    parser.add_argument("finetuned", help="the model folder at alpha 1 (same architecture and labels)")
    parser.add_argument("--alpha", type=float, nargs="+", required=True, help="mixing weights in [0, 1]")
    parser.add_argument("--output", required=True, help="the folder written (one alpha) or holding alpha_* folders")
    args = parser.parse_args(argv)
    from genderage.training.wise_ft import wise_ft

    for alpha in args.alpha:
        output = Path(args.output) if len(args.alpha) == 1 else Path(args.output) / f"alpha_{alpha:g}"
        try:
            print(wise_ft(args.start, args.finetuned, alpha, output))
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
