"""Calibrate a model folder by temperature scaling and save it with the temperature folded into its head.

Usage:
    python benchmarks/calibrate.py --model models/default --data-dir data/prepared [--split validation] [--output DIR]

Fits one scalar T on the split (minimising the NLL of the joint logits), divides the final linear layer's
weight and bias by T, records `calibration_temperature` and the ECE before/after in config.json, measures the
calibrated model on the validation and test splits again (metrics.json, evaluation.json, the card's Results and
model-index then hold the calibrated model's figures), and updates the card's "Calibration" section. In place unless --output is given. Run it once per trained model: running
it again fits a further T on already-calibrated logits (config.json records the product).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--data-dir", required=True, help="a folder written by prepare_dataset.py")
    parser.add_argument("--split", default="validation", help="split to fit T on (never the test split you report)")
    parser.add_argument("--output", help="write the calibrated model here (default: in place)")
    parser.add_argument("--limit", type=int, help="fit on at most this many images")
    parser.add_argument("--class-bias", action="store_true",
                        help="fit one bias per class too (bias-corrected temperature scaling): undoes the class prior "
                             "that balanced or boosted sampling taught, towards the split's own shares")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from genderage.training.calibration import calibrate_model_folder
    from genderage.training.model_card import update_card_sections

    try:
        result = calibrate_model_folder(args.model, args.data_dir, args.split, args.output, args.limit, args.class_bias)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output or args.model)
    print(f"temperature T = {result['temperature']:.4f} (total in config.json: {result['total_temperature']:.4f}), "
          f"fitted on {result['images']} {args.split} images")
    if "class_bias" in result:
        print("class biases: " + ", ".join(f"{name} {b:+.2f}" for name, b in result["class_bias"].items()))
    for name in ("gender_ece", "age_group_ece", "nll"):
        if name in result["before"]:
            print(f"{name:<15} before {result['before'][name]:.4f}  after {result['after'][name]:.4f}")
    import evaluate

    from genderage import METRIC_MODULE
    from genderage.training.evaluation import evaluate_model_folder
    from genderage.training.model_card import refresh_results

    results = evaluate_model_folder(output, args.data_dir, evaluate.load(METRIC_MODULE))
    results["calibration_temperature"] = result["total_temperature"]
    refresh_results(output, results)
    print(f"calibrated test split: gender {results['test']['metrics'].get('gender_accuracy', float('nan')):.4f}, "
          f"gender ECE {results['test']['metrics'].get('gender_ece', float('nan')):.4f}")
    if (output / "README.md").is_file():
        update_card_sections(output)
    print(f"saved to {output}")
    if (output / "model.onnx").is_file():  # it holds the uncalibrated weights: re-export (the ONNX helper may be absent)
        try:
            from genderage.training.onnx_export import export_onnx

            print(f"re-exported {export_onnx(output)}")
        except ImportError as error:
            print(f"note: model.onnx holds the uncalibrated weights; re-export it ({error})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
