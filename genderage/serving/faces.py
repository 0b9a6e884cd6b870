"""Face detection (CenterFace first, MTCNN where it finds nothing) and the crop that frames every face like a
training chip, whichever detector found it: a square around the detector's box (the default), or a chip aligned on
the five landmarks like dlib's (`FACE_CHIPS`, for a model whose config.json names `face_chip`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..data.images import to_rgb
from .detectors import CENTERFACE_THRESHOLD, MTCNN, MTCNN_FRAMING, Box, CenterFace, ChipFraming, Detection, Landmarks

# Eye-line tilts under this (degrees) are left alone: a plain crop keeps the photo's own pixels.
MIN_ALIGN_DEGREES = 3.0
# Landmarks that say a face is tilted more than this are not trusted for alignment.
MAX_ALIGN_DEGREES = 45.0


@dataclass
class Face:
    """A detected face: box (x0, y0, x1, y1) in image pixels, detector confidence, and the model-ready crop."""

    box: tuple[int, int, int, int]
    confidence: float
    crop: Image.Image


def chip_box(box: Box, framing: ChipFraming = MTCNN_FRAMING) -> tuple[int, int, int, int]:
    """The square region around a detector box that frames the face like a training chip."""
    x0, y0, x1, y1 = box
    width = x1 - x0
    centre_x, centre_y = (x0 + x1) / 2 + framing.offset_x * width, (y0 + y1) / 2 + framing.offset_y * width
    side = max(1, round(framing.side * width))
    x0, y0 = round(centre_x - side / 2), round(centre_y - side / 2)
    return (x0, y0, x0 + side, y0 + side)


def eye_angle(landmarks: Landmarks | None) -> float:
    """The eye line's tilt in degrees (positive: the right-hand eye is lower); 0 without trustworthy landmarks."""
    if landmarks is None:
        return 0.0
    (left_x, left_y), (right_x, right_y) = landmarks[0], landmarks[1]
    angle = math.degrees(math.atan2(right_y - left_y, right_x - left_x))
    return angle if abs(angle) <= MAX_ALIGN_DEGREES else 0.0


def crop_face(image: Image.Image, box: Box, landmarks: Landmarks | None = None, framing: ChipFraming = MTCNN_FRAMING) -> Image.Image:
    """Crop and align one face: the chip region of `box`, rotated so the eyes are level when `landmarks` say
    the face is tilted. The region shifts back inside the photo when it fits (a face at the edge of a tight
    crop stays framed by real pixels, like the training chips); only a region larger than the photo, or the
    corners a rotation swings outside it, get black."""
    x0, y0, x1, y1 = chip_box(box, framing)
    side = x1 - x0
    if side <= min(image.size):
        shift_x = max(0, -x0) - max(0, x1 - image.width)
        shift_y = max(0, -y0) - max(0, y1 - image.height)
        x0, x1, y0, y1 = x0 + shift_x, x1 + shift_x, y0 + shift_y, y1 + shift_y
    angle = eye_angle(landmarks)
    if abs(angle) < MIN_ALIGN_DEGREES:
        return image.crop((x0, y0, x1, y1))
    # Sample the square along the eye line's axes: output (u, v) comes from centre + R(angle) (u - side/2, v - side/2).
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    centre_x, centre_y, half = (x0 + x1) / 2, (y0 + y1) / 2, side / 2
    coefficients = (cos, -sin, centre_x - cos * half + sin * half, sin, cos, centre_y - sin * half - cos * half)
    return image.transform((side, side), Image.Transform.AFFINE, coefficients, Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


@dataclass(frozen=True)
class LandmarkChip:
    """A chip aligned on the five landmarks (eyes, nose, mouth corners): `points` says where they land, in units of
    the chip's side (the model's processor resizes the chip to its input size)."""

    points: Landmarks

    @classmethod
    def dlib(cls, padding: float, template: Landmarks) -> LandmarkChip:
        """dlib's `get_face_chip(image, shape, size, padding)` framing, from the landmarks' place in its unit face frame."""
        return cls(tuple(((padding + x) / (1 + 2 * padding), (padding + y) / (1 + 2 * padding)) for x, y in template))

    def reframed(self, scale: float, shift: float) -> LandmarkChip:
        """The same face as another tool might crop it: `scale` times as wide, moved right by `shift` of this side."""
        return LandmarkChip(tuple(((x - 0.5 - shift) / scale + 0.5, (y - 0.5) / scale + 0.5) for x, y in self.points))


# Where CenterFace's landmarks sit in dlib's unit face frame: medians over the 774 of 800 UTKFace and All-Age-Faces
# faces that dlib's own 5-point predictor also landmarked, made mirror-symmetric (benchmarks/face_framing.py
# --dlib-python; MTCNN's differ by at most 0.015, so MTCNN's faces use them too). With 25% padding, resized to 150 px,
# this is the chip dlib's face network was trained on.
DLIB_CHIP_TEMPLATE = ((0.231, 0.217), (0.769, 0.217), (0.500, 0.522), (0.282, 0.773), (0.718, 0.773))
FACE_CHIPS = {"dlib": LandmarkChip.dlib(0.25, DLIB_CHIP_TEMPLATE)}


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity (scale, rotation, shift) taking `source` points onto `target`, as a 2x3 matrix."""
    source_c, target_c = source[:, 0] + 1j * source[:, 1], target[:, 0] + 1j * target[:, 1]
    mean_s, mean_t = source_c.mean(), target_c.mean()
    a = np.vdot(source_c - mean_s, target_c - mean_t) / np.vdot(source_c - mean_s, source_c - mean_s)
    shift = mean_t - a * mean_s
    return np.array([[a.real, -a.imag, shift.real], [a.imag, a.real, shift.imag]])


def align_chip(image: Image.Image, landmarks: Landmarks, chip: LandmarkChip) -> Image.Image:
    """The face warped so that its landmarks land on the chip's points, at the photo's own resolution (the model's
    processor resizes it, with antialiasing, as it does every crop); black beyond the photo. Like `crop_face`, a
    tilt under MIN_ALIGN_DEGREES is left alone."""
    to_photo = similarity(np.array(chip.points, dtype=float), np.array(landmarks, dtype=float))  # chip units → photo px
    side = max(1, round(float(np.hypot(*to_photo[:, 0]))))
    if abs(math.degrees(math.atan2(to_photo[1, 0], to_photo[0, 0]))) < MIN_ALIGN_DEGREES:
        # A face this upright is a plain square crop (black beyond the photo): a quarter of the warp's time.
        x0, y0 = round(to_photo[0, 2]), round(to_photo[1, 2])
        return image.crop((x0, y0, x0 + side, y0 + side))
    (a, b, c), (d, e, f) = to_photo / [side, side, 1]
    return image.transform((side, side), Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BICUBIC, fillcolor=(0, 0, 0))


def cut_face(image: Image.Image, detection: Detection, chip: LandmarkChip | None = None,
             reframe: tuple[float, float] | None = None) -> Image.Image:
    """A detected face's crop: aligned on its landmarks with `chip`, else around its box (`crop_face`);
    `reframe=(scale, shift)` frames it as another tool might."""
    if chip is not None and detection.landmarks is not None:
        return align_chip(image, detection.landmarks, chip.reframed(*reframe) if reframe else chip)
    return crop_face(image, detection.box, detection.landmarks, detection.framing.reframed(*reframe) if reframe else detection.framing)


class FaceDetector:
    """Faces, largest first: CenterFace (ONNX Runtime, a few ms a photo) first; MTCNN's thorough passes only for
    photos where CenterFace finds nothing. `first="mtcnn"` makes MTCNN the only detector (its earlier behaviour)."""

    def __init__(self, min_confidence: float = 0.9, min_face_size: int = 20, first: str = "centerface",
                 centerface_threshold: float = CENTERFACE_THRESHOLD, threads: int | None = None, chip: str | None = None):
        """
        Args:
            min_confidence: MTCNN's face probability needed to report a face (0-1).
            min_face_size: the smallest face looked for, in pixels; a smaller image is answered 'no face' at once.
            first: "centerface" (default) or "mtcnn" (MTCNN alone: slower, the detector of earlier releases).
            centerface_threshold: CenterFace's heatmap peak needed to report a face (0-1).
            threads: CPU threads for both detectors (default: `inference.default_threads()`); 1 in worker processes.
            chip: how crops are cut: None (a square around the detector's box) or a name in `FACE_CHIPS` ("dlib":
                aligned on the five landmarks); a model says which in config.json (`GenderAgeClassifier.face_chip`).
        """
        if first not in ("centerface", "mtcnn"):
            raise ValueError(f"first={first!r}: use 'centerface' or 'mtcnn'")
        if chip is not None and chip not in FACE_CHIPS:
            raise ValueError(f"chip={chip!r}: use None (the detector's box) or one of {sorted(FACE_CHIPS)}")
        self.chip = FACE_CHIPS.get(chip)
        self.min_confidence = min_confidence
        self.min_face_size = min_face_size
        self.threads = threads
        self.centerface = CenterFace(min_face_size, centerface_threshold, threads) if first == "centerface" else None
        self._mtcnn: MTCNN | None = None

    @property
    def mtcnn(self) -> MTCNN:
        """Loaded on first need: most photos never need it."""
        if self._mtcnn is None:
            self._mtcnn = MTCNN(self.min_confidence, self.min_face_size, self.threads)
        return self._mtcnn

    def too_small(self, image: Image.Image) -> bool:
        """Whether the photo is smaller than the smallest face looked for, so it cannot hold one."""
        return min(image.size) < self.min_face_size

    def detections(self, images: list[Image.Image], fallback: bool = True) -> list[list[Detection]]:
        """Every face per image, in the image's own pixels, largest first; none in an image too small to hold one.
        `fallback=False` skips MTCNN's thorough look where CenterFace finds nothing (live video: the next frame is near)."""
        images = [to_rgb(image) for image in images]
        results = [[] if self.too_small(image) or self.centerface is None else self.centerface(image) for image in images]
        missing = [i for i, image in enumerate(images) if not results[i] and not self.too_small(image)
                   and (fallback or self.centerface is None)]
        for i, faces in zip(missing, self.mtcnn.detections([images[i] for i in missing]) if missing else []):
            results[i] = faces
        return results

    def boxes(self, images: list[Image.Image]) -> list[list[tuple[Box, float]]]:
        """(box, confidence) per face per image, largest first."""
        return [[(d.box, d.confidence) for d in faces] for faces in self.detections(images)]

    def detect(self, image: Image.Image, fallback: bool = True) -> list[Face]:
        """Every face in `image`, largest first, each with its aligned training-style crop. The box reported is
        clipped to the photo (a face cut by the edge keeps its whole extent for the crop's framing)."""
        image = to_rgb(image)
        width, height = image.size
        return [Face((max(0, round(d.box[0])), max(0, round(d.box[1])), min(width, round(d.box[2])), min(height, round(d.box[3]))),
                     d.confidence, self.crop(image, d))
                for d in self.detections([image], fallback)[0]]

    def crop(self, image: Image.Image, detection: Detection, reframe: tuple[float, float] | None = None) -> Image.Image:
        """The face's training-style crop; `reframe=(scale, shift)` frames it as another tool might."""
        return cut_face(image, detection, self.chip, reframe)

    def largest_crops(self, images: list[Image.Image], reframe: tuple[float, float] | None = None) -> list[Image.Image | None]:
        """The aligned crop of each image's largest face (None where none is found): training data and benchmarks.
        `reframe=(scale, shift)` frames the same face as another tool might (ChipFraming.reframed)."""
        return [self.crop(to_rgb(image), faces[0], reframe) if faces else None
                for image, faces in zip(images, self.detections(images))]


_shared_detectors: dict[str | None, FaceDetector] = {}


def largest_face_crop(image: Image.Image, chip: str | None = None) -> Image.Image | None:
    """The largest face, aligned and framed like a training chip; None if there is none (prepare's faces=crop).

    The detector loads once per process, on one thread: prepare_dataset runs this in one worker process per core.
    """
    if chip not in _shared_detectors:
        _shared_detectors[chip] = FaceDetector(threads=1, chip=chip)
    return _shared_detectors[chip].largest_crops([image])[0]
