"""Cross-dataset report: one model on several test sets, one row each, through the app's detect-and-crop path.

Usage:
    python benchmarks/cross_dataset.py --model models/default --data-dir data/prepared \\
        --test men_women=folders=../shared/data/men_women_classification_128px \\
        --test all_age_faces=csv=../shared/data/all_age_faces/labels.csv,gender_col=gender,age_col=age \\
        --limit 300 --json cross.json --markdown cross.md [--update-card]

Test sets:
    --data-dir PREPARED     every source's held-out rows of the prepared split (--split, default test) become a row
    --test NAME=prepared:SOURCE   only that source's rows of the prepared split (then no automatic rows)
    --test NAME=KIND=PATH[,options]   a whole raw source, as prepare_dataset.py's --source
Whether the model trained on each set comes from the model folder (config.json `training_sources`, else the
sources in metrics.json, else the card's datasets); "unknown" when none says.
--update-card writes the table (and the calibration, if any) into the model folder's README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PREPARED = "prepared:"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default", help="model folder")
    parser.add_argument("--test", action="append", default=[], metavar="NAME=SPEC", help="a test set (repeatable)")
    parser.add_argument("--data-dir", help="a folder written by prepare_dataset.py: its split's sources become rows")
    parser.add_argument("--split", default="test", help="split of --data-dir")
    parser.add_argument("--detect", action=argparse.BooleanOptionalAction, default=True,
                        help="detect and crop the largest face like the app (default); --no-detect feeds whole images")
    parser.add_argument("--limit", type=int, help="at most this many images per test set")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--markdown", help="write the markdown table here")
    parser.add_argument("--update-card", action="store_true", help="insert/replace the section in MODEL/README.md")
    args = parser.parse_args(argv)
    if not args.test and not args.data_dir:
        parser.error("give --test NAME=SPEC and/or --data-dir")
    return args


def training_sources(model_dir: str | Path) -> list[str] | None:
    """The source names the model was trained on, as its folder records them (None: unknown)."""
    folder = Path(model_dir)
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    if config.get("training_sources"):
        return list(config["training_sources"])
    if (folder / "metrics.json").is_file():  # the Trainer's validation metrics are sliced by source
        validation = json.loads((folder / "metrics.json").read_text()).get("validation", {})
        found = sorted(key.split("source=", 1)[1] for key in validation if key.startswith("n/source="))
        if found:
            return found
    if (folder / "README.md").is_file():
        from huggingface_hub import ModelCard

        datasets = ModelCard.load(folder / "README.md").data.to_dict().get("datasets") or []
        found = sorted({name for dataset in datasets for name in dataset.split("+")} - {"unknown"})
        if found:
            return found
    return None


def test_sets(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name, spec) per row: explicit --test ones, plus one per source of --data-dir unless a prepared: one was given."""
    tests = []
    for text in args.test:
        name, _, spec = text.partition("=")
        if not name or not spec:
            raise ValueError(f"--test {text!r}: expected NAME=SPEC")
        tests.append((name, spec))
    if args.data_dir and not any(spec.startswith(PREPARED) for _, spec in tests):
        from genderage.data.imagefolder import load_prepared

        sources = sorted(set(load_prepared(args.data_dir)[args.split]["source"]))
        tests = [(f"{source} ({args.split} split)", PREPARED + source) for source in sources] + tests
    return tests


def load_test_set(spec: str, args: argparse.Namespace):
    """(data, source name) for one spec."""
    from genderage.data.labelled import from_prepared, from_source
    from genderage.data.sources import parse_source_spec

    if spec.startswith(PREPARED):
        if not args.data_dir:
            raise ValueError(f"{spec}: needs --data-dir")
        source = spec.removeprefix(PREPARED)
        return from_prepared(args.data_dir, args.split, args.limit, source=source), source
    return from_source(spec, args.limit), parse_source_spec(spec).name


def run(args: argparse.Namespace) -> dict:
    import evaluate

    from genderage import METRIC_MODULE
    from genderage.measure.accuracy import headline, measure
    from genderage.serving.inference import GenderAgeClassifier

    classifier = GenderAgeClassifier.from_pretrained(args.model)
    metric = evaluate.load(METRIC_MODULE)
    detector = None
    if args.detect:
        from genderage.serving.faces import FaceDetector

        detector = FaceDetector()
    trained = training_sources(args.model)
    rows = []
    for name, spec in test_sets(args):
        data, source = load_test_set(spec, args)
        if not data.images:
            raise ValueError(f"test set {name} ({spec}) has no usable images")
        result = measure(classifier, data, metric, detector, batch_size=args.batch_size)
        # A prepared split's rows are held out even from a source the model trained on; a whole raw source is not.
        trained_on = None if trained is None else source in trained
        row = {"name": name, "data": spec, "source": source, "trained_on": trained_on, "held_out_split": spec.startswith(PREPARED),
               "n": result["metrics"]["images"], "skipped": len(data.skipped), **headline(result)}
        rows.append(row)
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k not in ('name', 'data')})}", flush=True)
    return {"model": args.model, "path": "detect" if args.detect else "whole image", "training_sources": trained,
            "limit": args.limit, "split": args.split if args.data_dir else None, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from genderage.data.sources import SourceError
    from genderage.training.model_card import cross_dataset_markdown, update_card_sections

    try:
        report = run(args)
    except (SourceError, ValueError, FileNotFoundError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = cross_dataset_markdown(report)
    print("\n" + table)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    if args.update_card:
        print(f"updated {update_card_sections(args.model, report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
