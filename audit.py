"""Audit a photo collection: who is in it (share of women, age groups, gender × age), with 95% intervals.

Usage:
    python audit.py PHOTOS... --output DIR [--by COLUMN] [--engine local|ray] [--workers N] [--model DIR]
    python audit.py photos.csv --path-column file --by year --output DIR
    python audit.py --dataset NAME --image-column image --split train --output DIR
    python audit.py PHOTOS... --output DIR --labelled csv=sample.csv,gender_col=gender,age_col=age

PHOTOS are folders (searched recursively; their sub-folder is the column "folder"), globs, list files (.txt), or CSV /
Parquet tables with a column of photo paths (--path-column) and any other columns to group by.
Every face is answered through the app's path; the share of women is then adjusted for the model's measured errors
(PACC: the model's mean probabilities per true class, from labelled photos), not counted, since counting each face's
likelier answer is biased whenever the collection's shares differ from those the model was measured on. Age groups are
the mean of the probabilities (PCC) by default: with nine classes, no adjustment measured better (docs/audit.md). The error rates come
from the model folder's quantification.json (its test sets), or better from --labelled, a labelled sample of the same
collection (KIND=PATH[,options], as accuracy.py --source). Intervals resample the photos and the labelled photos.

Writes DIR/faces.parquet (one row per face; a photo without one, or an unusable file, one row with the reason),
DIR/summary.json, DIR/report.md and DIR/composition.png. Rows are written in shards (DIR/shards): --resume skips the
finished ones. --engine ray runs the same predictor in a Ray Data actor pool (pip install "ray[data]"), on a local Ray
runtime, or on a running cluster with --address.
"""

import argparse
import os
import sys


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", metavar="PHOTOS", help="folders, globs, list files, CSV or Parquet tables")
    parser.add_argument("--output", required=True, metavar="DIR", help="the folder for faces.parquet, summary.json, report.md, composition.png")
    parser.add_argument("--by", metavar="COLUMN", help="also give the composition per value of this column (e.g. folder, year)")
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: models/default)")
    parser.add_argument("--labelled", metavar="KIND=PATH", help="a labelled sample of the collection for the error rates (default: the model's test sets)")
    parser.add_argument("--labelled-limit", type=int, metavar="N", help="use at most N photos of --labelled")
    parser.add_argument("--path-column", default="path", help="the column of photo paths in CSV / Parquet inputs (default: path)")
    parser.add_argument("--dataset", metavar="NAME", help="audit a datasets dataset (a saved folder or a Hub id) instead of photos")
    parser.add_argument("--image-column", default="image", help="the dataset's image column (default: image)")
    parser.add_argument("--split", default="train", help="the dataset's split (default: train)")
    parser.add_argument("--engine", default="local", choices=["local", "ray"], help="local worker processes (default) or a Ray Data actor pool")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes or Ray actors, one core each (default: all cores)")
    parser.add_argument("--address", help="--engine ray: join a running Ray cluster ('auto' on one of its nodes; default: start a local runtime)")
    parser.add_argument("--resume", action="store_true", help="keep the finished shards of an interrupted run in DIR")
    parser.add_argument("--estimator", default="pacc", choices=["cc", "pcc", "acc", "pacc", "sld"], help="how the share of women is estimated (default: pacc)")
    parser.add_argument("--age-estimator", default="pcc", choices=["cc", "pcc", "acc", "pacc", "sld"],
                        help="how the age-group and gender × age shares are estimated (default: pcc; see docs/audit.md)")
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap rounds for the intervals (default: 200)")
    parser.add_argument("--chunk", type=int, default=16, help="photos per batch (their faces are classified together)")
    parser.add_argument("--shard-photos", type=int, default=1000, help="photos per output shard (default: 1000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from genderage.cli import ensure_output_file
    from genderage.data.sources import SourceError
    from genderage.measure.audit import model_rates, predict_collection, sample_rates, summarise, write_summary
    from genderage.measure.collection import read_collection
    from genderage.serving.inference import DEFAULT_MODEL, check_model

    model = args.model or DEFAULT_MODEL
    try:
        collection = read_collection(args.inputs, args.path_column, args.dataset, args.image_column, args.split)
        if args.by is not None and args.by not in collection.table.columns.drop("photo"):
            columns = ", ".join(collection.table.columns.drop("photo")) or "none"
            raise ValueError(f"--by {args.by}: the collection has no such column (its columns: {columns})")
        check_model(model)
        ensure_output_file(os.path.join(args.output, "summary.json"), "--output")
        own = model_rates(model)
        rates = sample_rates(model, args.labelled, args.labelled_limit) if args.labelled else own
        print(f"{len(collection.table)} photos; error rates from {rates.described if rates else 'nowhere (unadjusted)'}", file=sys.stderr)
        faces = predict_collection(collection, args.output, model, args.engine, args.workers, args.resume, args.chunk,
                                   args.shard_photos, args.address)
        estimators = {"gender": args.estimator, "age_group": args.age_estimator, "joint": args.age_estimator}
        summary = summarise(faces, rates, args.by, estimators, args.rounds, model, own.measured if own else None)
        write_summary(summary, args.output)
    except (SourceError, ValueError, OSError, RuntimeError) as error:  # RuntimeError: WorkerDied, an unfinished engine
        print(f"error: {error}", file=sys.stderr)
        return 2
    overall = summary["overall"]
    women = overall["share_female"]
    if women is None:
        print(f"no faces found in {overall['n_photos']} photos; see {args.output}/faces.parquet for each photo's reason")
        return 0
    interval = "" if women["low"] is None else f" [{women['low']:.1%}–{women['high']:.1%}]"
    ages = ", ".join(f"{name} {value['estimate']:.0%}" for name, value in overall["age_group"].items())
    print(f"{overall['n_faces']} faces in {overall['n_photos']} photos. Women: {women['estimate']:.1%}{interval} "
          f"(argmax count: {overall['share_female_argmax']:.1%}). Age groups: {ages}.\n-> {args.output}/report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
