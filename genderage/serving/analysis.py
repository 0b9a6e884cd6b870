"""What the app does with one photo: validate the upload, find faces, classify each, store consented feedback."""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from ..data.images import ImageRejected, open_rgb
from ..data.sources import FEEDBACK_COLUMNS, FEEDBACK_FILE
from .inference import GenderAgeClassifier, Prediction

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
NO_FACE_MESSAGE = ("No face found, so no gender or age is given. Try a closer, well-lit photo of a face; if the image "
                   "already is a cropped face, ask for the whole image as one face ('Whole image is one face' in the page, "
                   "whole_image=True in the API).")


class UploadError(ValueError):
    """An upload we cannot analyse, with a message for the person who sent it."""


def load_upload(path: str | Path | None) -> tuple[Image.Image, str]:
    """Open an uploaded file as upright RGB; returns the image and a note (e.g. 'first frame used')."""
    if path is None:
        raise UploadError("No image was given.")
    path = Path(path)
    if not path.is_file():
        raise UploadError("The upload did not arrive; please try again.")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise UploadError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB; please upload a smaller image.")
    try:
        image, _ = open_rgb(path, max_pixels=MAX_UPLOAD_PIXELS)
    except ImageRejected as error:
        raise UploadError(f"This file cannot be used as a photo: {error}.") from None
    with Image.open(path) as original:
        frames = getattr(original, "n_frames", 1)
    return image, "Animated image: the first frame was analysed. " if frames > 1 else ""


@dataclass
class AnalysedFace:
    box: list[int]
    detector_confidence: float | None
    prediction: Prediction
    crop: Image.Image

    def to_dict(self) -> dict:
        return {"box": self.box, "detector_confidence": self.detector_confidence, **self.prediction.to_dict()}


class FaceAnalyzer:
    """The detector and the classifier, loaded once and shared by every request."""

    def __init__(self, classifier: GenderAgeClassifier, detector, flip: bool = False):
        self.classifier = classifier
        self.detector = detector
        self.flip = flip

    def analyse(self, image: Image.Image, whole_image: bool = False, flip: bool | None = None,
                thorough: bool = True) -> tuple[list[AnalysedFace], dict]:
        """Faces with predictions, and the JSON answer of the API ({"faces": [...], "message": ...}).
        `thorough=False` (live video frames) skips the slow second detector where the fast one finds no face."""
        flip = self.flip if flip is None else flip
        if whole_image:
            faces = [AnalysedFace([0, 0, image.width, image.height], None, self.classifier.predict([image], flip)[0], image)]
            return faces, {"faces": [f.to_dict() for f in faces], "message": "Whole image treated as one face."}
        if self.detector.too_small(image):
            return [], {"faces": [], "message": too_small_message(image, self.detector.min_face_size)}
        detected = self.detector.detect(image, fallback=thorough)
        predictions = self.classifier.predict([face.crop for face in detected], flip) if detected else []
        faces = [AnalysedFace(list(face.box), round(face.confidence, 4), prediction, face.crop)
                 for face, prediction in zip(detected, predictions)]
        # No face, no answer: a gender and an age for a coffee cup would be made up. Whole image only on request.
        message = f"{len(faces)} face{'s' if len(faces) > 1 else ''} found." if faces else NO_FACE_MESSAGE
        return faces, {"faces": [f.to_dict() for f in faces], "message": message}


def too_small_message(image: Image.Image, min_face_size: int) -> str:
    """The answer for an image smaller than the smallest face the detector looks for."""
    return (f"The image ({image.width}x{image.height} px) is too small to contain a face: the smallest face looked for is "
            f"{min_face_size} px. No gender or age is given.")


def save_feedback(folder: str | Path, crop: Image.Image, gender: str, age_group: str, predicted: Prediction, consent: bool) -> Path | None:
    """Store one correction in the format `prepare_dataset.py --source feedback=FOLDER` reads — only with consent.

    Only the face crop (under a random name) and the labels are kept: no file names, no user text.
    """
    if not consent:
        return None
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    name = f"images/{uuid.uuid4().hex}.jpg"
    crop.convert("RGB").save(folder / name, "JPEG", quality=95)
    table = folder / FEEDBACK_FILE
    is_new = not table.exists()
    with table.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FEEDBACK_COLUMNS)
        if is_new:
            writer.writeheader()
        writer.writerow({
            "file_name": name, "gender": gender, "age_group": age_group,
            "predicted_gender": max(predicted.gender, key=predicted.gender.get) if predicted.gender else "",
            "predicted_age_group": max(predicted.age_group, key=predicted.age_group.get) if predicted.age_group else "",
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
    return folder / name


def analyse_file(analyzer: FaceAnalyzer, path: str | Path | None, whole_image: bool = False, flip: bool | None = None):
    """The app's prediction function: (image or None, faces, JSON answer); bad files become a message."""
    try:
        image, note = load_upload(path)
    except UploadError as error:
        return None, [], {"faces": [], "message": str(error)}
    faces, answer = analyzer.analyse(image, whole_image, flip)
    answer["message"] = note + answer["message"]
    return image, faces, answer
