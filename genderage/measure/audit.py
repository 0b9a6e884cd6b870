"""Audit a photo collection: every face's answer, then the collection's composition with honest error bars.

1. Predict: every photo through the app's detect-and-classify path, on local worker processes or on Ray; rows land in
   shards of `shard_photos` photos (DIR/shards/part-NNNNN.parquet, each written whole), so `resume` skips finished
   shards and a crash loses at most the shards in flight. The shards joined are DIR/faces.parquet.
2. Estimate: the share of women, of each age group and of each gender × age class, overall and per `by` group,
   adjusted for the model's measured errors (genderage.measure.quantify), with a bootstrap interval over photos and
   over the labelled photos behind the rates.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..labels import AGE_GROUPS, GENDERS, JOINT_LABELS
from ..serving.predict import NO_FACE_REASON, TOO_SMALL_REASON
from .collection import Collection
from .labelled_faces import QUANTIFICATION_FILE, SAMPLE_PREFIX, LabelledFaces, marginal_probabilities, read_quantification
from .quantify import ESTIMATORS, bootstrap_interval, estimate

# Chosen by the simulations in docs/audit.md: for gender, PACC keeps the mean error within 3 points from 10% to 70%
# women; for the nine age groups (and the 18 gender × age classes) no adjustment beat the plain mean of the
# probabilities with about a thousand labelled faces: their rate matrices are too ill-conditioned.
DEFAULT_ESTIMATORS = {"gender": "pacc", "age_group": "pcc", "joint": "pcc"}
UNCERTAIN_BELOW = 0.6  # the app's default: a face whose likelier gender has less than this is "uncertain"
ENGINES = ("local", "ray")


def face_records(position: int, rows: list[dict]) -> list[dict]:
    """faces.parquet's records for one photo's rows (as PhotoPredictor gives them)."""
    records = []
    for row in rows:
        box = row["box"] or [None] * 4
        record = {"position": position, "photo": row["file"], "face": row["face"],
                  **dict(zip(["x0", "y0", "x1", "y1"], box)), "detector_confidence": row["detector_confidence"]}
        record.update({f"p_{g}": (row["gender"] or {}).get(g) for g in GENDERS})
        record.update({f"p_{a}": (row["age_group"] or {}).get(a) for a in AGE_GROUPS})
        record.update({"expected_age": row["age"], "p_joint": row.get("joint"), "reason": row["reason"]})
        records.append(record)
    return records


def engine_rows(collection: Collection, positions: list[int], engine: str, workers: int, model: str, chunk: int = 16,
                address: str | None = None, backend: str = "auto", flip: bool = False) -> Iterator[tuple[int, list[dict]]]:
    """(position, PhotoPredictor rows) for the photos at `positions`, from the local workers or the Ray actors."""
    photos = collection.table["photo"].tolist()
    if engine == "ray":
        from ..serving.ray_engine import predict_on_ray

        def items():
            for start in range(0, len(positions), chunk):
                part = positions[start : start + chunk]
                contents = collection.contents(part) or [None] * len(part)
                yield from ((p, photos[p], c) for p, c in zip(part, contents))

        yield from predict_on_ray(items(), model, workers, backend, flip, joint=True, chunk=chunk, address=address)
        return
    from ..serving.predict import predict_chunks

    parts = [positions[start : start + chunk] for start in range(0, len(positions), chunk)]
    chunks = (([photos[p] for p in part], collection.contents(part)) for part in parts)
    for part, (_, per_photo) in zip(parts, predict_chunks(chunks, model, min(workers, max(1, len(parts))), backend, flip, joint=True)):
        yield from zip(part, per_photo)


def _fingerprint(collection: Collection, model: str, flip: bool, shard_photos: int) -> str:
    digest = hashlib.sha256("\n".join(collection.table["photo"]).encode())
    digest.update(json.dumps([str(model), flip, shard_photos]).encode())
    return digest.hexdigest()


def predict_collection(collection: Collection, output: str | Path, model: str, engine: str = "local", workers: int = 1,
                       resume: bool = False, chunk: int = 16, shard_photos: int = 1000, address: str | None = None,
                       backend: str = "auto", flip: bool = False, progress: bool = True) -> pd.DataFrame:
    """Every face of the collection (one row per face; a photo without one, or an unusable file, one row with the
    reason), with the collection's columns, written to OUTPUT/faces.parquet; returned as a DataFrame."""
    from tqdm import tqdm

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    shards = Path(output) / "shards"
    manifest = shards / "manifest.json"
    fingerprint = _fingerprint(collection, model, flip, shard_photos)
    if resume and manifest.is_file() and json.loads(manifest.read_text())["fingerprint"] != fingerprint:
        raise ValueError(f"{output} holds shards of another collection, model or settings; use a new --output, or drop --resume to start over")
    if not resume and shards.exists():
        shutil.rmtree(shards)
    shards.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"fingerprint": fingerprint, "photos": len(collection.table), "shard_photos": shard_photos}))

    n = len(collection.table)
    shard_files = [shards / f"part-{i:05d}.parquet" for i in range((n + shard_photos - 1) // shard_photos)]
    todo = [p for i, file in enumerate(shard_files) if not file.is_file() for p in range(i * shard_photos, min(n, (i + 1) * shard_photos))]
    waiting: dict[int, dict[int, list[dict]]] = {}  # shard -> position -> records, until the shard is whole
    with tqdm(total=n, initial=n - len(todo), unit="photo", disable=not progress, file=sys.stderr) as bar:
        for position, rows in engine_rows(collection, todo, engine, workers, model, chunk, address, backend, flip):
            shard = position // shard_photos
            if shard_files[shard].is_file():
                continue  # a late repeat of a photo whose shard is written
            waiting.setdefault(shard, {})[position] = face_records(position, rows)  # keyed: a retried batch cannot duplicate
            bar.update(1)
            if len(waiting[shard]) == min(n, (shard + 1) * shard_photos) - shard * shard_photos:
                finished = waiting.pop(shard)
                _write_shard(shard_files[shard], [record for p in sorted(finished) for record in finished[p]])
    if waiting:
        raise RuntimeError(f"the engine ended with {sum(map(len, waiting.values()))} photos of unfinished shards; rerun with --resume")
    faces = pd.concat([pd.read_parquet(file) for file in shard_files], ignore_index=True)
    columns = collection.table.drop(columns="photo")
    faces = faces.join(columns, on="position").drop(columns="position")
    faces.to_parquet(Path(output) / "faces.parquet", index=False)
    return faces


def _write_shard(file: Path, records: list[dict]) -> None:
    """A shard is written to a temporary name and renamed: it is on disk whole or not at all."""
    partial = file.with_suffix(".partial")
    pd.DataFrame.from_records(records).to_parquet(partial, index=False)
    os.replace(partial, file)


def model_rates(model: str) -> LabelledFaces | None:
    """The labelled faces the model folder (or Hub repo) keeps in quantification.json, pooled; None without one."""
    from ..serving.inference import model_file

    path = model_file(model, QUANTIFICATION_FILE)
    return LabelledFaces.pooled(read_quantification(path)) if path else None


def sample_rates(model: str, spec: str, limit: int | None = None) -> LabelledFaces:
    """A labelled sample (`KIND=PATH[,options]`, as accuracy.py --source) through the same path: its largest faces."""
    from ..data.labelled import from_source
    from ..data.sources import parse_source_spec
    from ..serving.faces import FaceDetector
    from ..serving.inference import GenderAgeClassifier
    from .accuracy import predict_path

    data = from_source(spec, limit)
    if not data.images:
        raise ValueError(f"--labelled {spec}: no usable labelled photos")
    classifier = GenderAgeClassifier.from_pretrained(model)
    answers = predict_path(classifier, data.images, FaceDetector(chip=classifier.face_chip), warm_up=False)
    if not any(answers.found):
        raise ValueError(f"--labelled {spec}: no face found in any of its {len(data.rows)} photos")
    return LabelledFaces.from_answers(f"{SAMPLE_PREFIX} {parse_source_spec(spec).name}", [str(i) for i in range(len(data.rows))],
                                      data.rows, answers.predictions, answers.found)


def _interval(point: float, low: float, high: float) -> dict:
    """An estimate with its interval (None for both ends where there is none)."""
    bounds = (None, None) if np.isnan(low) else (round(float(low), 4), round(float(high), 4))
    return {"estimate": round(float(point), 4), "low": bounds[0], "high": bounds[1]}


def composition(faces: pd.DataFrame, rates: LabelledFaces | None, estimators: dict[str, str] = DEFAULT_ESTIMATORS,
                rounds: int = 200, seed: int = 0) -> dict:
    """The composition of one set of rows of faces.parquet (photos without a face included, for the counts), each
    task by its estimator in `estimators` (gender, age_group, joint)."""
    found = faces[faces["face"].notna()]
    photos = faces["photo"].nunique()
    reasons = faces.loc[faces["face"].isna(), "reason"].fillna("")
    no_face = int(reasons.isin([NO_FACE_REASON, TOO_SMALL_REASON]).sum())
    result = {"n_photos": int(photos), "n_faces": int(len(found)), "photos_without_face": no_face,
              "unusable_files": int(len(reasons) - no_face), "faces_per_photo": round(len(found) / max(1, photos - (len(reasons) - no_face)), 3)}
    if found.empty:
        return {**result, "share_female": None, "share_female_argmax": None, "age_group": None, "age_group_argmax": None, "joint": None}
    joint = np.stack(found["p_joint"].to_numpy())
    photo_ids = found["photo"].to_numpy()
    result["uncertain_share"] = round(float((found[[f"p_{g}" for g in GENDERS]].max(axis=1) < UNCERTAIN_BELOW).mean()), 4)
    result["estimators"] = {}
    for task in ("gender", "age_group", "joint"):
        probabilities = marginal_probabilities(joint, task)
        labelled = rates.task(task) if rates is not None else None
        if labelled is None or len(labelled[1]) == 0:  # no labelled faces for this task: no adjustment is possible
            result["estimators"][task] = "pcc"
            point = estimate(probabilities, None, "pcc")
            low = high = np.full(len(point), np.nan)
        else:
            result["estimators"][task] = estimators[task]
            point, low, high = bootstrap_interval(probabilities, photo_ids, labelled[0], labelled[1], estimators[task], rounds,
                                                  seed, labelled_groups=labelled[2])
        argmax = estimate(probabilities, None, "cc")
        names = {"gender": GENDERS, "age_group": AGE_GROUPS, "joint": JOINT_LABELS}[task]
        shares = {name: _interval(point[i], low[i], high[i]) for i, name in enumerate(names)}
        if task == "gender":
            result["share_female"], result["share_male"] = shares["female"], shares["male"]
            result["share_female_argmax"] = round(float(argmax[GENDERS.index("female")]), 4)
        else:
            result[task] = shares
            result[f"{task}_argmax"] = {name: round(float(argmax[i]), 4) for i, name in enumerate(names)}
    return result


def summarise(faces: pd.DataFrame, rates: LabelledFaces | None, by: str | None = None,
              estimators: dict[str, str] = DEFAULT_ESTIMATORS, rounds: int = 200, model: str = "",
              model_measured: dict | None = None) -> dict:
    """summary.json: the composition overall and per `by` group, where the rates came from, and the model's own
    measured figures per test set (`model_measured`, for the report)."""
    unknown = sorted(set(estimators.values()) - set(ESTIMATORS))
    if unknown:
        raise ValueError(f"unknown estimator {unknown[0]!r}; choose one of {', '.join(ESTIMATORS)}")
    summary = {"model": str(model), "estimator": estimators["gender"] if rates is not None else "pcc", "uncertain_below": UNCERTAIN_BELOW,
               "model_measured": model_measured or {},
               "rates_from": rates.described if rates is not None else None,
               "labelled_faces": 0 if rates is None else int(len(rates.photo)),
               "by": by, "overall": composition(faces, rates, estimators, rounds)}
    if by is not None:
        summary["groups"] = {str(value): composition(group, rates, estimators, rounds)
                             for value, group in faces.groupby(by, sort=True, dropna=False)}
    return summary


def write_summary(summary: dict, output: str | Path) -> None:
    """OUTPUT/summary.json, report.md and composition.png."""
    from .audit_report import write_report

    (Path(output) / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(summary, output)
