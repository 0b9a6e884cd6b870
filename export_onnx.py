"""Export a saved model folder to ONNX Runtime's format: writes FOLDER/model.onnx (logits, dynamic batch).

Usage: python export_onnx.py models/default [more folders ...]
Inference (`GenderAgeClassifier`, the app, predict.py) then uses ONNX Runtime automatically. Re-run it whenever
the folder's weights change: a model.onnx exported from other weights is ignored (with a warning).
"""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="model folders written by train.py (or any transformers image classifier)")
    args = parser.parse_args(argv)
    from genderage.training.onnx_export import export_onnx

    for folder in args.folders:
        try:
            print(export_onnx(folder))
        except (OSError, ValueError) as error:
            print(f"error: {folder}: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
