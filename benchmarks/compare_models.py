r"""A leaderboard of model folders on the same photos, through the app's detect-and-crop path: one Markdown + JSON
table and one plot, a row per model (backbone, initialisation, resolution, epochs, gender and age-group accuracy per
set, the worst group, |ΔP(female)| p95 under a mirror and under another framing, ms per face, size).

Usage:
    python benchmarks/compare_models.py models/default runs/a runs/b \
        --source "folders=../shared/data/men_women_classification_128px,name=men_women" \
        [--prepared data/mixture [--split test]] [--limit 500] \
        [--markdown docs/leaderboard.md] [--json leaderboard.json] [--plot leaderboard.png]
--source takes prepare_dataset.py's KIND=PATH[,options] (name= names the column); --prepared adds one set per source of
that prepared split, read from the original photos its metadata lists (so a model trained on that split's train part
is measured on photos it never saw). Faces are detected once per set and shared by every model.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders (each with config.json, preferably model.onnx)")
    parser.add_argument("--source", action="append", default=[], help="a labelled raw source, KIND=PATH[,name=...]")
    parser.add_argument("--prepared", help="a prepared dataset: one set per source of --split, from the original photos")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="at most this many photos per set (spread over the set)")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--plot", help="write the plot here (PNG)")
    args = parser.parse_args(argv)
    if not args.source and not args.prepared:
        parser.error("give at least one --source or --prepared")
    import evaluate

    from genderage import METRIC_MODULE
    from genderage.data.labelled import from_source, originals_of_prepared, split_metadata
    from genderage.data.sources import SourceError, parse_source_spec
    from genderage.measure.leaderboard import markdown_table, model_row, plot, prepare_test_set
    from genderage.serving.faces import FaceDetector

    from genderage.cli import ensure_output_file
    from genderage.serving.inference import check_model

    try:
        for model in args.models:
            check_model(model)
        for option, path in (("--markdown", args.markdown), ("--json", args.json), ("--plot", args.plot)):
            if path:
                ensure_output_file(path, option)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    detector, sets = FaceDetector(), []
    try:
        for spec in args.source:
            name = parse_source_spec(spec).name
            sets.append(prepare_test_set(name, from_source(spec, args.limit), detector))
        if args.prepared:
            sources = sorted({json.loads(line)["source"] for line in split_metadata(args.prepared, args.split).open()})
            for source in sources:
                data = originals_of_prepared(args.prepared, args.split, source, args.limit)
                sets.append(prepare_test_set(f"{source} {args.split}", data, detector))
    except (SourceError, ValueError, OSError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for test_set in sets:
        print(f"{test_set.name}: {len(test_set.data.images)} photos, faces found {sum(test_set.found) / max(1, len(test_set.found)):.1%}")
    metric = evaluate.load(METRIC_MODULE)
    rows = []
    for model in args.models:
        rows.append(model_row(model, sets, metric))
        print(f"measured {model}")
    table = markdown_table(rows)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
