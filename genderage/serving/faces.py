"""Face detection (MTCNN, offline) and one crop-and-align function that frames every face like a training chip."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps

# How a UTKFace "aligned & cropped" chip frames the face, in units of the MTCNN box width:
# chip side, and the offset of the chip centre from the box centre. Medians over 400 UTKFace
# chips, measured by `python benchmarks/face_framing.py` (re-run it after changing the detector).
CHIP_SIDE = 1.19
CHIP_OFFSET_X = 0.01
CHIP_OFFSET_Y = 0.07
# Detection runs on the photo inside a black border of this fraction of its longer side: a face that touches
# the photo's edges (a tight crop, like a UTKFace chip) otherwise gets a distorted box or none.
DETECT_BORDER = 0.25
# In the thorough pass, small photos are upscaled to this longer side: MTCNN misses faces under ~20 px.
MIN_DETECT_SIDE = 384
DETECT_BATCH = 16
# Eye-line tilts under this (degrees) are left alone: a plain crop keeps the photo's own pixels.
MIN_ALIGN_DEGREES = 1.0
# Landmarks that say a face is tilted more than this are not trusted for alignment.
MAX_ALIGN_DEGREES = 45.0

Box = tuple[float, float, float, float]
Landmarks = tuple[tuple[float, float], ...]  # MTCNN's five points: eyes, nose, mouth corners (image left to right)


@dataclass
class Detection:
    """One face as the detector saw it: box (x0, y0, x1, y1), confidence, and five landmarks when known."""

    box: Box
    confidence: float
    landmarks: Landmarks | None = None


@dataclass
class Face:
    """A detected face: box (x0, y0, x1, y1) in image pixels, detector confidence, and the model-ready crop."""

    box: tuple[int, int, int, int]
    confidence: float
    crop: Image.Image


def chip_box(box, side_ratio: float = CHIP_SIDE, offset_x: float = CHIP_OFFSET_X, offset_y: float = CHIP_OFFSET_Y):
    """The square region around a detector box that frames the face like a training chip."""
    x0, y0, x1, y1 = box
    width = x1 - x0
    centre_x, centre_y = (x0 + x1) / 2 + offset_x * width, (y0 + y1) / 2 + offset_y * width
    side = round(side_ratio * width)
    x0, y0 = round(centre_x - side / 2), round(centre_y - side / 2)
    return (x0, y0, x0 + side, y0 + side)


def eye_angle(landmarks: Landmarks | None) -> float:
    """The eye line's tilt in degrees (positive: the right-hand eye is lower); 0 without trustworthy landmarks."""
    if landmarks is None:
        return 0.0
    (left_x, left_y), (right_x, right_y) = landmarks[0], landmarks[1]
    angle = math.degrees(math.atan2(right_y - left_y, right_x - left_x))
    return angle if abs(angle) <= MAX_ALIGN_DEGREES else 0.0


def crop_face(image: Image.Image, box, landmarks: Landmarks | None = None) -> Image.Image:
    """Crop and align one face: the chip region of `box`, rotated so the eyes are level when `landmarks` say
    the face is tilted. The region shifts back inside the photo when it fits (a face at the edge of a tight
    crop stays framed by real pixels, like the training chips); only a region larger than the photo, or the
    corners a rotation swings outside it, get black."""
    x0, y0, x1, y1 = chip_box(box)
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


def touches_edge(box: Box, size: tuple[int, int], margin: float = 0.01) -> bool:
    """Whether a box reaches within `margin` (a fraction of the longer side) of the photo's edge."""
    x0, y0, x1, y1 = box
    width, height = size
    slack = margin * max(size)
    return x0 <= slack or y0 <= slack or x1 >= width - slack or y1 >= height - slack


class FaceDetector:
    """MTCNN from facenet-pytorch (its weights ship in the wheel). Faces come largest first."""

    def __init__(self, min_confidence: float = 0.9, min_face_size: int = 20, device: str = "cpu"):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=device)
        self.min_confidence = min_confidence
        self.min_face_size = min_face_size

    def detections(self, images: list[Image.Image]) -> list[list[Detection]]:
        """Every face per image, in the image's own pixels, largest first.

        A fast pass at the photo's own size first. Where the largest face touches the photo's edge (a tight crop
        like a UTKFace chip), its box is cut off and would frame the face unlike the calibrated chip: a second pass
        inside a black border looks again, for faces at least half that size only (cheap). Only photos where the
        fast pass found nothing get the slow, thorough pass (upscaled, inside a border, then without it)."""
        results = self._pass(images)
        for i, faces in enumerate(results):
            if faces and touches_edge(faces[0].box, images[i].size):
                width = faces[0].box[2] - faces[0].box[0]
                bordered = self._pass([images[i]], border=DETECT_BORDER, min_face=max(self.min_face_size, width / 2))[0]
                results[i] = bordered or faces
        missing = [i for i, faces in enumerate(results) if not faces]
        thorough = self._pass([images[i] for i in missing], MIN_DETECT_SIDE, DETECT_BORDER) if missing else []
        for i, faces in zip(missing, thorough):
            # A last look, upscaled without the border, finds a few faces both passes missed.
            results[i] = faces or self._pass([images[i]], MIN_DETECT_SIDE)[0]
        return results

    def _pass(self, images: list[Image.Image], min_side: int = 0, border: float = 0.0, min_face: float | None = None) -> list[list[Detection]]:
        """One MTCNN pass: photos upscaled to `min_side`, framed by a black `border`, looking for faces of at least
        `min_face` px (the pyramid, and so the cost, shrinks with it); same-size photos share a batch."""
        from facenet_pytorch.models.utils.detect_face import detect_face

        results: list = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.size, []).append(index)
        # Bounded batches: MTCNN's memory grows with the batch, and a dataset may hold thousands of one size.
        chunks = [(size, same[start : start + DETECT_BATCH]) for size, same in by_size.items() for start in range(0, len(same), DETECT_BATCH)]
        for size, indices in chunks:
            scale = max(1.0, min_side / max(size))
            pad = round(border * max(size) * scale)
            batch = [np.asarray(self._bordered(images[i], scale, pad)) for i in indices]
            # The smallest face looked for, in the detection image's pixels: upscaling exists to find faces under it.
            minimum = min_face * scale if min_face else self.min_face_size
            with torch.inference_mode():
                boxes, points = detect_face(np.stack(batch), minimum, self.mtcnn.pnet, self.mtcnn.rnet,
                                            self.mtcnn.onet, self.mtcnn.thresholds, self.mtcnn.factor, self.mtcnn.device)
            for i, image_boxes, image_points in zip(indices, boxes, points):
                results[i] = self._keep(image_boxes, image_points, offset=pad, scale=scale)
        return results

    def boxes(self, images: list[Image.Image]) -> list[list[tuple[Box, float]]]:
        """(box, confidence) per face per image, largest first."""
        return [[(d.box, d.confidence) for d in faces] for faces in self.detections(images)]

    @staticmethod
    def _bordered(image: Image.Image, scale: float, pad: int) -> Image.Image:
        image = image.convert("RGB")
        if scale != 1.0:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
        return ImageOps.expand(image, pad, fill=(0, 0, 0)) if pad else image

    def _keep(self, boxes, points, offset: float, scale: float) -> list[Detection]:
        """Confident faces in the image's own pixels, largest first."""
        faces = []
        for row, five in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 5), np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)):
            if row[4] >= self.min_confidence:
                box = tuple(float(v - offset) / scale for v in row[:4])
                faces.append(Detection(box, float(row[4]), tuple((float(x - offset) / scale, float(y - offset) / scale) for x, y in five)))
        return sorted(faces, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))

    def detect(self, image: Image.Image) -> list[Face]:
        """Every face in `image`, largest first, each with its aligned training-style crop."""
        image = image.convert("RGB")
        return [Face(tuple(round(v) for v in d.box), d.confidence, crop_face(image, d.box, d.landmarks)) for d in self.detections([image])[0]]

    def largest_crops(self, images: list[Image.Image]) -> list[Image.Image | None]:
        """The aligned crop of each image's largest face (None where none is found): training data and benchmarks."""
        return [crop_face(image.convert("RGB"), faces[0].box, faces[0].landmarks) if faces else None
                for image, faces in zip(images, self.detections(images))]


_shared_detector: FaceDetector | None = None


def largest_face_crop(image: Image.Image) -> Image.Image | None:
    """The largest face, aligned and framed like a training chip; None if there is none (prepare's faces=crop).

    The detector loads once per process: prepare_dataset runs this in worker processes.
    """
    global _shared_detector
    _shared_detector = _shared_detector or FaceDetector()
    return _shared_detector.largest_crops([image])[0]
