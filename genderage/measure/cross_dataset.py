"""The cross-dataset report: one model on several test sets, one row each (accuracy, fairness slices, stability, mistakes)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

PREPARED = "prepared:"  # a source's rows of the prepared split, as prepare cut them (chips)
ORIGINALS = "originals:"  # the same rows' original photos (through the detect path as a user's photo would go)
FAIRNESS_COLUMNS = ("race", "age_group")  # the slices a row carries gender accuracy for
MIN_GROUP_SIZE = 20  # a smaller slice is shown but never named the worst group: too noisy


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
    if args.data_dir and not any(spec.startswith((PREPARED, ORIGINALS)) for _, spec in tests):
        from ..data.imagefolder import load_prepared

        sources = sorted(set(load_prepared(args.data_dir)[args.split]["source"]))
        tests = [(f"{source} ({args.split} split)", PREPARED + source) for source in sources] + tests
    return tests


def load_test_set(spec: str, args: argparse.Namespace):
    """(data, source name) for one spec."""
    from ..data.labelled import from_prepared, from_source, originals_of_prepared
    from ..data.sources import parse_source_spec

    if spec.startswith((PREPARED, ORIGINALS)):
        if not args.data_dir:
            raise ValueError(f"{spec}: needs --data-dir")
        if spec.startswith(ORIGINALS):
            source = spec.removeprefix(ORIGINALS)
            return originals_of_prepared(args.data_dir, args.split, source, args.limit), source
        source = spec.removeprefix(PREPARED)
        return from_prepared(args.data_dir, args.split, args.limit, source=source), source
    return from_source(spec, args.limit), parse_source_spec(spec).name


def fairness_slices(metrics: dict) -> dict[str, float | int]:
    """Gender accuracy and n per race and per age group, where the set has those labels (not only "unknown")."""
    slices = {}
    for column in FAIRNESS_COLUMNS:
        values = {key.split("=", 1)[1] for key in metrics if key.startswith(f"gender_accuracy/{column}=")}
        if values <= {"unknown"}:
            continue
        for value in sorted(values):
            for name in ("gender_accuracy", "n"):
                if f"{name}/{column}={value}" in metrics:
                    slices[f"{name}/{column}={value}"] = metrics[f"{name}/{column}={value}"]
    return slices


CHILDREN = ("0-2", "3-9", "10-19")


def age_detail(metrics: dict, min_size: int = MIN_GROUP_SIZE) -> dict:
    """Age-group accuracy overall, one-off, for children (0-19 together), per race and the worst race (of at least
    `min_size` photos): the FairFace-style check, where only the age is known."""
    if "age_group_accuracy" not in metrics:
        return {}

    def pooled(keys: list[str]) -> float | None:
        sizes = [metrics.get(f"n/{key}", 0) for key in keys]
        scores = [metrics.get(f"age_group_accuracy/{key}") for key in keys]
        known = [(score, n) for score, n in zip(scores, sizes) if score is not None and n]
        return sum(score * n for score, n in known) / sum(n for _, n in known) if known else None

    races = sorted(key.split("race=", 1)[1] for key in metrics
                   if key.startswith("age_group_accuracy/race=") and not key.endswith("=unknown"))
    by_race = {race: metrics[f"age_group_accuracy/race={race}"] for race in races}
    judged = {race: score for race, score in by_race.items() if metrics.get(f"n/race={race}", 0) >= min_size}
    worst = min(judged, key=judged.get) if judged else None
    return {"age_group_accuracy": metrics["age_group_accuracy"],
            "age_group_one_off_accuracy": metrics.get("age_group_one_off_accuracy"),
            "children_age_group_accuracy": pooled([f"age_group={group}" for group in CHILDREN]),
            "age_group_accuracy_by_race": by_race, "worst_race": worst,
            "worst_race_age_group_accuracy": judged.get(worst)}


def worst_group(slices: dict, min_size: int = MIN_GROUP_SIZE) -> str | None:
    """The known race or age-group slice with the lowest gender accuracy among those of at least `min_size` photos."""
    candidates = [(score, key.split("/", 1)[1]) for key, score in slices.items()
                  if key.startswith("gender_accuracy/") and not key.endswith("=unknown")
                  and slices.get("n/" + key.split("/", 1)[1], 0) >= min_size]
    return min(candidates)[1] if candidates else None


def sheet_file_name(name: str) -> str:
    """A safe file name for a test set's mistakes sheet, e.g. "men_women_mistakes.png"."""
    return (re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("._") or "test_set") + "_mistakes.png"


def sheet_reference(path: Path, model_dir: str | Path) -> str:
    """How the report names a sheet: relative to the model folder when inside it (the card links those), else absolute."""
    try:
        return path.resolve().relative_to(Path(model_dir).resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def run(args: argparse.Namespace) -> dict:
    """Measure the model on every test set of `args` (benchmarks/cross_dataset.py's options): the report."""
    import evaluate

    from .. import METRIC_MODULE
    from ..serving.inference import GenderAgeClassifier
    from .accuracy import headline, measure, predict_path
    from .contact_sheet import write_mistakes_sheet
    from .stability import KEYS as STABILITY_KEYS
    from .stability import stability

    classifier = GenderAgeClassifier.from_pretrained(args.model)
    metric = evaluate.load(METRIC_MODULE)
    detector = None
    if args.detect:
        from ..serving.faces import FaceDetector

        detector = FaceDetector(chip=classifier.face_chip)
    trained = training_sources(args.model)
    sheets = Path(args.sheets) if args.sheets else None  # only on request: a sheet shows the test photos themselves
    rows, sheet_names, labelled = [], set(), []
    for name, spec in test_sets(args):
        data, source = load_test_set(spec, args)
        if not data.images:
            raise ValueError(f"test set {name} ({spec}) has no usable images")
        # One run of the path per set, shared by the metrics, the stability baseline and the mistakes sheet.
        answers = predict_path(classifier, data.images, detector, batch_size=args.batch_size)
        result = measure(classifier, data, metric, answers=answers)
        metrics = result["metrics"]
        # A prepared split's rows are held out even from a source the model trained on; a whole raw source is not.
        trained_on = None if trained is None else source in trained
        row = {"name": name, "data": spec, "source": source, "trained_on": trained_on,
               "held_out_split": spec.startswith((PREPARED, ORIGINALS)), "n": metrics["images"], "skipped": len(data.skipped),
               **headline(result)}
        if "age_group_one_off_accuracy" in metrics:
            row["age_group_one_off_accuracy"] = metrics["age_group_one_off_accuracy"]
        row["slices"] = fairness_slices(metrics)
        row["worst_group"] = worst_group(row["slices"])
        row["age"] = age_detail(metrics)
        row.update(stability(classifier, data.images, answers, detector, batch_size=args.batch_size)
                   if args.stability else dict.fromkeys(STABILITY_KEYS))
        row["mistakes_sheet"] = None
        if sheets is not None:
            file_name, copy = sheet_file_name(name), 1
            while file_name in sheet_names:  # two sets with the same safe name keep a sheet each
                copy += 1
                file_name = sheet_file_name(f"{name}_{copy}")
            sheet_names.add(file_name)
            write_mistakes_sheet(data.rows, answers, sheets / file_name, name)
            row["mistakes_sheet"] = sheet_reference(sheets / file_name, args.model)
        rows.append(row)
        if args.rates:
            from .labelled_faces import LabelledFaces

            measured = {key: row.get(key) for key in ("gender_accuracy", "age_group_accuracy", "gender_ece", "faces_found_rate", "worst_group")}
            measured["worst_group_gender_accuracy"] = row["slices"].get(f"gender_accuracy/{row['worst_group']}")
            labelled.append(LabelledFaces.from_answers(name, [str(i) for i in range(len(data.rows))], data.rows,
                                                       answers.predictions, answers.found, measured))
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k not in ('name', 'data', 'slices')})}", flush=True)
    if labelled:
        from .labelled_faces import write_quantification

        print(f"wrote {write_quantification(args.model, labelled)}")
    return {"model": args.model, "path": "detect" if args.detect else "whole image", "training_sources": trained,
            "limit": args.limit, "split": args.split if args.data_dir else None, "rows": rows}
