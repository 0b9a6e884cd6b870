"""Measure a saved model on labelled images: whole image or through the app's detect-and-crop path."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from ..data.labelled import LabelledImages
from ..labels import AGE_GROUPS, GENDERS
from ..training.calibration import expected_calibration_error

SLICES = ("age_group", "race", "source")
# The figures a results JSON carries at its top level (the stable interface checks read), besides "metrics".
HEADLINE = ("gender_accuracy", "age_group_accuracy", "age_mae", "faces_found_rate", "gender_ece", "age_group_ece")


def face_crops(detector, images: list[Image.Image]) -> tuple[list[Image.Image], list[bool]]:
    """The app's detect-and-crop path: the largest face's crop per image (the whole image if none) and whether one was found."""
    crops = detector.largest_crops(images)
    return [image if crop is None else crop for image, crop in zip(images, crops)], [crop is not None for crop in crops]


def headline(result: dict) -> dict:
    """The top-level figures of a `measure` result."""
    return {name: result["metrics"][name] for name in HEADLINE if name in result["metrics"]}


def measure(classifier, data: LabelledImages, metric, detector=None, flip: bool = False, batch_size: int = 64) -> dict:
    """Metrics (flat), worst slices, faces-found rate, calibration error and inference speed for one model on `data`."""
    inputs, found = data.images, [True] * len(data.images)
    if detector is not None:
        inputs, found = face_crops(detector, data.images)
    classifier.probabilities(inputs[:batch_size], flip=flip, batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    predictions = classifier.predict(inputs, flip=flip, batch_size=batch_size)
    seconds = time.perf_counter() - started

    result = {"images": len(inputs), "inference_images_per_second": len(inputs) / seconds}
    if detector is not None:
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
