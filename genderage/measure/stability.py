"""Stability: the same face should get the same answer after a mirror flip, a JPEG re-save or another tool's framing
of the same detection, through the same path."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps

from .accuracy import PathAnswers, predict_path

JPEG_QUALITY = 75


def jpeg_resave(image: Image.Image, quality: int = JPEG_QUALITY) -> Image.Image:
    """The photo saved as a JPEG at `quality` and read back."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


# name → how a photo is changed; the figures are "<name>_p_female_delta_<mean|p95|max>".
VARIANTS: dict[str, Callable[[Image.Image], Image.Image]] = {"mirror": ImageOps.mirror, "jpeg": jpeg_resave}
# Another tool's crop of the same detected face (the photo unchanged): 1.2x as wide, shifted right by a tenth of the
# app's crop. Measured on the detect-and-crop path only.
REFRAME = (1.2, 0.1)
FIGURES = ("mean", "p95", "max")
KEYS = tuple(f"{name}_p_female_delta_{figure}" for name in (*VARIANTS, "reframe") for figure in FIGURES)


def p_female(answers: PathAnswers) -> np.ndarray:
    """P(female) per photo; NaN where no face was found or the model has no gender head."""
    return np.array([p.gender["female"] if found and p.gender is not None else np.nan
                     for p, found in zip(answers.predictions, answers.found)], dtype=np.float64)


def p_female_deltas(classifier, images: list[Image.Image], answers: PathAnswers,
                    variant: Callable[[Image.Image], Image.Image] | None, detector=None, flip: bool = False,
                    batch_size: int = 64, reframe: tuple[float, float] | None = None) -> np.ndarray:
    """|ΔP(female)| per photo between `answers` and the `variant` of each photo (None: the photo itself) through the same
    path, its faces framed by `reframe` if given; NaN where either has no face."""
    if answers.detected != (detector is not None):
        raise ValueError("the variants must go through the same path as `answers` (detector given iff it detected)")
    original = p_female(answers)
    changed = []
    for start in range(0, len(images), batch_size):  # a batch of variants at a time: no second copy of the whole set
        batch = [variant(image) if variant else image for image in images[start : start + batch_size]]
        changed.append(p_female(predict_path(classifier, batch, detector, flip, batch_size, warm_up=False, reframe=reframe)))
    return np.abs(original - np.concatenate(changed)) if changed else np.zeros(0)


def stability(classifier, images: list[Image.Image], answers: PathAnswers | None = None, detector=None,
              flip: bool = False, batch_size: int = 64) -> dict[str, float | None]:
    """Mean, 95th percentile and largest |ΔP(female)| per variant (mirror, JPEG q75, and with a detector the re-framed
    crop), over photos with a face in both versions."""
    if answers is None:
        answers = predict_path(classifier, images, detector, flip, batch_size, warm_up=False)
    variants = [(name, variant, None) for name, variant in VARIANTS.items()]
    variants += [("reframe", None, REFRAME)] if detector is not None else []
    result: dict[str, float | None] = dict.fromkeys(KEYS)
    for name, variant, reframe in variants:
        deltas = p_female_deltas(classifier, images, answers, variant, detector, flip, batch_size, reframe)
        deltas = deltas[~np.isnan(deltas)]
        for figure, summary in zip(FIGURES, (np.mean, lambda d: np.percentile(d, 95), np.max)):
            result[f"{name}_p_female_delta_{figure}"] = float(summary(deltas)) if len(deltas) else None
    return result
