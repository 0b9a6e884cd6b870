"""Measure a saved model on labelled images: whole image or through the app's detect-and-crop path."""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
from PIL import Image

from ..data.labelled import LabelledImages
from ..labels import AGE_GROUPS, GENDERS, Prediction
from ..training.calibration import expected_calibration_error

SLICES = ("age_group", "race", "source")
# The figures a results JSON carries at its top level (the stable interface checks read), besides "metrics".
HEADLINE = ("gender_accuracy", "age_group_accuracy", "age_mae", "faces_found_rate", "gender_ece", "age_group_ece")


def face_crops(detector, images: list[Image.Image], reframe: tuple[float, float] | None = None) -> tuple[list[Image.Image], list[bool]]:
    """The app's detect-and-crop path: the largest face's crop per image (the whole image if none) and whether one was
    found; `reframe=(scale, shift)` frames each face as another tool might."""
    crops = detector.largest_crops(images, reframe=reframe)
    return [image if crop is None else crop for image, crop in zip(images, crops)], [crop is not None for crop in crops]


class PathAnswers(NamedTuple):
    """What the model answered on some photos through one path: the inputs it saw, faces found, its predictions."""

    inputs: list[Image.Image]  # the crops (or whole images) fed to the model
    found: list[bool]  # whether a face was found (all True on the whole-image path)
    predictions: list[Prediction]
    detected: bool  # whether the path detected and cropped faces
    seconds: float  # the batched inference alone, after a warm-up when one was asked for


def predict_path(classifier, images: list[Image.Image], detector=None, flip: bool = False, batch_size: int = 64,
                 warm_up: bool = True, reframe: tuple[float, float] | None = None) -> PathAnswers:
    """Run `images` through the path once (detect-and-crop with `detector`, whole images without) and time the inference."""
    inputs, found = (images, [True] * len(images)) if detector is None else face_crops(detector, images, reframe)
    if warm_up:
        classifier.probabilities(inputs[:batch_size], flip=flip, batch_size=batch_size)
    started = time.perf_counter()
    predictions = classifier.predict(inputs, flip=flip, batch_size=batch_size)
    return PathAnswers(inputs, found, predictions, detector is not None, time.perf_counter() - started)


def headline(result: dict) -> dict:
    """The top-level figures of a `measure` result."""
    return {name: result["metrics"][name] for name in HEADLINE if name in result["metrics"]}


def measure(classifier, data: LabelledImages, metric, detector=None, flip: bool = False, batch_size: int = 64,
            answers: PathAnswers | None = None) -> dict:
    """Metrics (flat), worst slices, faces-found rate, calibration error and inference speed for one model on `data`.

    `answers` (from `predict_path` on `data.images`) reuses a run already made; the model then does not run again."""
    if answers is None:
        answers = predict_path(classifier, data.images, detector, flip, batch_size)
    inputs, found, predictions = answers.inputs, answers.found, answers.predictions
    if len(predictions) != len(data.rows):
        raise ValueError(f"{len(predictions)} answers for {len(data.rows)} labelled images")

    result = {"images": len(inputs), "inference_images_per_second": len(inputs) / max(answers.seconds, 1e-9)}
    if answers.detected:
        result["faces_found_rate"] = float(np.mean(found))
    details = {}
    for task, key, names in (("gender", "gender", GENDERS), ("age", "age_group", AGE_GROUPS)):
        keep = [i for i, row in enumerate(data.rows) if row[key] is not None and getattr(predictions[i], key) is not None]
        if not keep:
            continue
        references = np.array([names.index(data.rows[i][key]) for i in keep])
        probabilities = np.array([[getattr(predictions[i], key)[n] for n in names] for i in keep])
        # ECE judges the model's own probabilities, so only over images where a face was found (computed before
        # the no-face rows below become certain wrong answers; the metric module's ECE would count those).
        with_face = np.array([found[i] for i in keep])
        ece = expected_calibration_error(probabilities[with_face], references[with_face])
        # No face found counts as wrong: the prediction becomes a class far from the truth.
        for row, i in enumerate(keep):
            if not found[i]:
                probabilities[row] = np.eye(len(names))[(references[row] + len(names) // 2) % len(names)]
        ages = [data.rows[i]["age"] if found[i] and data.rows[i]["age"] is not None else -1 for i in keep]
        slices = {column: [data.rows[i][column] for i in keep] for column in SLICES}
        answer = metric.compute(predictions=probabilities, references=references, task=task, ages=ages, slices=slices)
        result.update({k: v for k, v in answer.items() if isinstance(v, (int, float))})
        result[f"{key}_ece"] = ece
        details.update({k: v for k, v in answer.items() if not isinstance(v, (int, float))})
    return {"metrics": result, "details": details}
