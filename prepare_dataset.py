r"""Merge labelled photo collections into one clean Hugging Face ImageFolder with gender and age labels.

Usage:
    python prepare_dataset.py --source utkface=../shared/data/utkface \
        --source folders=../shared/data/men_women_classification_128px --output data/prepared

Source kinds (repeat --source; options follow after commas):
    utkface=DIR                    labels in UTKFace file names
    folders=DIR[,map=NAME:male]    one folder per class (men/ women/, 20-29/, nested)
    csv=FILE[,root=DIR,file_col=..,gender_col=..,age_col=..,race_col=..]   FairFace-style annotations
    pattern=DIR,regex=(?P<gender>..)-(?P<age>..)                             labels in file names
    feedback=DIR                   corrections saved by app.py
Every source also takes name=NAME, license=TEXT, faces=crop for photos that are not face crops
(detect the largest face and crop it the way the training faces are framed; no face = dropped), and
train_labels=age (or gender) for a source whose other labels must not be learnt (a one-gender source):
they are withheld, as unknown.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", required=True, metavar="KIND=PATH[,key=value]", help="a labelled collection; repeatable")
    parser.add_argument("--output", required=True, type=Path, help="folder to write the ImageFolder to (must be empty)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split assignment")
    parser.add_argument("--split-ratios", default="80/10/10", help="train/validation/test percentages")
    parser.add_argument("--test-source", help="hold this source (by name) out as the whole test set")
    parser.add_argument("--hold-out", action="append", default=[], metavar="NAME=N",
                        help="set N photos of source NAME aside (stratified by race × age group), listed in "
                             "OUT/holdout/NAME.csv for measuring; repeatable")
    parser.add_argument("--min-side", type=int, default=32, help="drop images whose shorter side is smaller (px)")
    parser.add_argument("--max-side", type=int, default=0, help="downscale larger images to this side (px); 0 keeps sizes")
    parser.add_argument("--near-duplicate-distance", type=int, default=12, help="max Hamming distance of 256-bit dHashes; -1 disables")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing prepared dataset in --output")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="publish the result as a Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="make the Hub dataset private")
    parser.add_argument("--dry-run", action="store_true", help="with --push-to-hub: build the upload folder, send nothing")
    return parser.parse_args(argv)


def _face_cropper():
    """The app's own detect-align-crop, so training faces are framed like the faces the app will see."""
    from genderage.serving.faces import largest_face_crop

    return largest_face_crop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from genderage.data.dataset_card import format_summary
    from genderage.data.imagefolder import PrepareConfig, prepare_dataset
    from genderage.data.images import CleaningOptions
    from genderage.data.sources import SourceError, parse_source_spec

    try:
        ratios = tuple(float(p) / 100 for p in args.split_ratios.split("/"))
        sources = [parse_source_spec(text) for text in args.source]
        holdout = {}
        for text in args.hold_out:
            name, _, size = text.partition("=")
            if not size.isdigit():
                raise ValueError(f"--hold-out {text!r}: use NAME=N, e.g. --hold-out fairface=3000")
            holdout[name] = int(size)
        config = PrepareConfig(
            sources=sources,
            output_dir=args.output,
            seed=args.seed,
            ratios=ratios,
            cleaning=CleaningOptions(min_side=args.min_side, max_side=args.max_side),
            near_duplicate_distance=args.near_duplicate_distance,
            test_source=args.test_source,
            holdout=holdout,
            overwrite=args.overwrite,
            face_cropper=_face_cropper() if any(spec.crop_faces for spec in sources) else None,
            **({"workers": args.workers} if args.workers else {}),
        )
        report = prepare_dataset(config)
    except (SourceError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_summary(report))
    if args.push_to_hub:
        from genderage.training.hub import push_dataset

        print(push_dataset(args.output, args.push_to_hub, private=args.private, dry_run=args.dry_run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
