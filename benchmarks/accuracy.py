"""Evaluate a model folder (or Hub id) on a prepared dataset split or on a raw source, and print the table.

Usage:
    python benchmarks/accuracy.py --model models/default --data-dir data/utkface --split test --json out.json
    python benchmarks/accuracy.py --model models/default --source folders=../shared/data/men_women_classification_128px --detect
Whole image by default; --detect goes through the app's detect-and-crop path (largest face; no face = wrong).
The JSON has gender_accuracy, age_group_accuracy, age_mae, faces_found_rate and the calibration errors
gender_ece / age_group_ece (15 bins, over images with a face) at its top level, and everything under "metrics".
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default", help="model folder or Hub id")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data-dir", help="a folder written by prepare_dataset.py")
    data.add_argument("--source", help="a raw source, as prepare_dataset.py's --source KIND=PATH")
    parser.add_argument("--split", default="test", help="split of --data-dir")
    parser.add_argument("--detect", action="store_true", help="detect the largest face and crop it like the training faces")
    parser.add_argument("--detector", default="centerface", choices=["centerface", "mtcnn"],
                        help="with --detect: the first detector (the app's default, centerface, or MTCNN alone)")
    parser.add_argument("--flip", action="store_true", help="horizontal-flip test-time augmentation")
    parser.add_argument("--limit", type=int, help="evaluate at most this many images")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (faster on recent CPUs; probabilities differ slightly)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    from genderage.cli import ensure_output_file
    from genderage.data.labelled import split_metadata
    from genderage.serving.inference import check_model

    try:  # the mistakes that need no data: answered before the heavy imports
        if args.json:
            ensure_output_file(args.json, "--json")
        check_model(args.model)
        if args.data_dir:
            split_metadata(args.data_dir, args.split)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import evaluate

    from genderage import METRIC_MODULE
    from genderage.data.labelled import from_prepared, from_source
    from genderage.data.sources import SourceError
    from genderage.measure.accuracy import headline, measure
    from genderage.serving.inference import GenderAgeClassifier

    try:
        data = from_prepared(args.data_dir, args.split, args.limit) if args.data_dir else from_source(args.source, args.limit)
        classifier = GenderAgeClassifier.from_pretrained(args.model, bf16=args.bf16)
    except (SourceError, ValueError, OSError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    detector = None
    if args.detect:
        from genderage.serving.faces import FaceDetector

        detector = FaceDetector(first=args.detector, chip=classifier.face_chip)
    result = measure(classifier, data, evaluate.load(METRIC_MODULE), detector, args.flip, args.batch_size)
    result.update(headline(result))  # gender_accuracy, age_group_accuracy, ... also at the top level (fractions)
    result.update({"model": args.model, "data": args.data_dir or args.source, "split": args.split if args.data_dir else None,
                   "path": f"detect ({args.detector} first)" if args.detect else "whole image", "flip_tta": args.flip, "bf16": args.bf16, "skipped": len(data.skipped)})
    print(format_result(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def format_result(result: dict) -> str:
    metrics = result["metrics"]
    lines = [f"{result['model']} on {result['data']} ({result['path']}, flip TTA {result['flip_tta']}, bf16 {result['bf16']}): {metrics['images']} images, "
             f"{result['skipped']} skipped, {metrics['inference_images_per_second']:.0f} images/s batched inference"]
    if "faces_found_rate" in metrics:
        lines.append(f"faces found: {metrics['faces_found_rate']:.2%}")
    for name in ("gender_accuracy", "gender_macro_f1", "gender_ece", "age_group_accuracy", "age_group_one_off_accuracy", "age_mae", "age_group_ece"):
        if name in metrics:
            lines.append(f"{name:<28}{metrics[name]:.4f}")
    for column in ("age_group", "race", "source"):
        keys = sorted(k for k in metrics if k.startswith(f"n/{column}="))
        if len(keys) > 1:
            lines.append(f"\nby {column}:  n   gender_acc  age_group_acc  one_off  age_mae")
            for key in keys:
                value = key.split("=", 1)[1]
                cells = [metrics.get(f"{m}/{column}={value}") for m in ("gender_accuracy", "age_group_accuracy", "age_group_one_off_accuracy", "age_mae")]
                lines.append(f"  {value:<14}{metrics[key]:>5}  " + "  ".join("      -" if c is None else f"{c:>9.3f}" for c in cells))
    for key, value in result["details"].items():
        if key.startswith("worst/"):
            lines.append(f"worst slice for {key.removeprefix('worst/')}: {value}")
    if result["details"].get("too_small_to_judge"):
        lines.append(f"too small to judge (under 20 images): {', '.join(result['details']['too_small_to_judge'])}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
