"""Predict gender and age for every face in a photo collection; one JSONL or CSV row per face.

Usage:
    python predict.py PHOTOS... --output faces.jsonl [--model models/default] [--workers N] [--resume] [--flip]
PHOTOS are folders (searched recursively), globs ("photos/**/*.jpg", quoted) or list files (.txt, one path per line).
The output format follows --output's extension (.jsonl or .csv). A photo without a face, or a file that is not a
usable photo, gets one row with a reason. --resume skips the photos already in the output.
"""

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="folders, globs or list files")
    parser.add_argument("--output", required=True, help="a .jsonl or .csv file")
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: models/default)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes, one core each (default: all cores)")
    parser.add_argument("--resume", action="store_true", help="append, skipping photos that already have rows")
    parser.add_argument("--flip", action="store_true", help="horizontal-flip test-time augmentation")
    parser.add_argument("--chunk", type=int, default=16, help="photos per work unit (their faces are classified as one batch)")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help="classifier backend (auto: ONNX Runtime when model.onnx exists)")
    args = parser.parse_args(argv)
    from genderage.serving.inference import DEFAULT_MODEL
    from genderage.serving.predict import WorkerDied, output_format, predict_photos

    try:
        output_format(args.output)
        counts = predict_photos(args.inputs, args.output, args.model or DEFAULT_MODEL, args.workers, args.resume, args.flip, args.chunk, args.backend)
    except (ValueError, OSError, WorkerDied) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rate = counts["photos"] / counts["seconds"] if counts["seconds"] else 0.0
    print(f"{counts['photos']} photos ({counts['faces']} faces, {counts['no_face']} without a face, {counts['bad']} unusable files), "
          f"{counts['skipped']} already done; {counts['seconds']} s, {rate:.1f} photos/s -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
