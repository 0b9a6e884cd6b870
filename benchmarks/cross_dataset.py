"""Cross-dataset report: one model on several test sets, one row each, through the app's detect-and-crop path.

Usage:
    python benchmarks/cross_dataset.py --model models/default --data-dir data/prepared \\
        --test men_women=folders=../shared/data/men_women_classification_128px \\
        --test all_age_faces=csv=../shared/data/all_age_faces/labels.csv,gender_col=gender,age_col=age \\
        --limit 300 --json cross.json --markdown cross.md [--update-card] [--sheets DIR] [--no-stability]

Test sets:
    --data-dir PREPARED     every source's held-out rows of the prepared split (--split, default test) become a row
    --test NAME=prepared:SOURCE   only that source's rows of the prepared split (then no automatic rows)
    --test NAME=originals:SOURCE  the original photos behind those rows (their source_path), through the detect path
    --test NAME=KIND=PATH[,options]   a whole raw source, as prepare_dataset.py's --source
Whether the model trained on each set comes from the model folder (config.json `training_sources`, else the
sources in metrics.json, else the card's datasets); "unknown" when none says.
Each row also has gender accuracy per race and per age group where the set has those labels ("slices", and
"worst_group": the lowest slice of at least 20 photos), and stability: mean, 95th percentile and largest
|ΔP(female)| between each photo and its mirror image, its JPEG re-save at quality 75 and (detecting) the same face
cropped 1.2x wider and shifted by a tenth, as another tool might, through the same path (--no-stability skips it:
it quadruples the work). --sheets DIR writes a contact sheet per set of the most confident
gender mistakes (DIR/NAME_mistakes.png); the card links the sheets written inside the model folder (e.g. --sheets
MODEL/cross_dataset). Sheets show the test photos: mind their licence before publishing a model folder with them.
--update-card writes the tables (and the calibration, if any) into the model folder's README.md.
--rates writes MODEL/quantification.json: each set's labels and answers (the largest face per photo), from which
audit.py learns the model's errors per true class to adjust a collection's shares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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
    parser.add_argument("--stability", action=argparse.BooleanOptionalAction, default=True,
                        help="measure |ΔP(female)| under mirroring, re-framing and JPEG re-save (default); --no-stability skips it")
    parser.add_argument("--sheets", metavar="DIR", help="write each set's contact sheet of confident gender mistakes here")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--markdown", help="write the markdown table here")
    parser.add_argument("--update-card", action="store_true", help="insert/replace the section in MODEL/README.md")
    parser.add_argument("--rates", action="store_true", help="write MODEL/quantification.json for audit.py's adjusted shares")
    args = parser.parse_args(argv)
    if not args.test and not args.data_dir:
        parser.error("give --test NAME=SPEC and/or --data-dir")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from genderage.data.sources import SourceError
    from genderage.measure.cross_dataset import run
    from genderage.training.model_card import cross_dataset_markdown, update_card_sections

    from genderage.cli import ensure_output_file
    from genderage.serving.inference import check_model

    try:
        check_model(args.model)
        for option, path in (("--json", args.json), ("--markdown", args.markdown)):
            if path:
                ensure_output_file(path, option)
        report = run(args)
    except (SourceError, ValueError, OSError, KeyError) as error:
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
