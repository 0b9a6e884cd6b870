"""Face detection (MTCNN, offline) and cropping framed like the training faces (UTKFace chips)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
# Small photos are upscaled to this longer side before detection: MTCNN misses faces under ~20 px.
MIN_DETECT_SIDE = 384
DETECT_BATCH = 16


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


def crop_face(image: Image.Image, box) -> Image.Image:
    """Crop the chip region, shifted back inside the photo when it fits (a face at the edge of a tight crop
    stays framed by real pixels, like the training chips); only a region larger than the photo gets black borders."""
    x0, y0, x1, y1 = chip_box(box)
    if x1 - x0 <= min(image.size):
        shift_x = max(0, -x0) - max(0, x1 - image.width)
        shift_y = max(0, -y0) - max(0, y1 - image.height)
        x0, x1, y0, y1 = x0 + shift_x, x1 + shift_x, y0 + shift_y, y1 + shift_y
    return image.crop((x0, y0, x1, y1))


class FaceDetector:
    """MTCNN from facenet-pytorch (its weights ship in the wheel). Faces come largest first."""

    def __init__(self, min_confidence: float = 0.9, min_face_size: int = 20, device: str = "cpu"):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=device)
        self.min_confidence = min_confidence

    def boxes(self, images: list[Image.Image]) -> list[list[tuple[tuple[float, ...], float]]]:
        """(box, confidence) per face per image, in the image's own pixels; images of one size form one batch."""
        results: list = [None] * len(images)
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.size, []).append(index)
        # Bounded batches: MTCNN's memory grows with the batch, and a dataset may hold thousands of one size.
        chunks = [(size, same[start : start + DETECT_BATCH]) for size, same in by_size.items() for start in range(0, len(same), DETECT_BATCH)]
        for size, indices in chunks:
            scale = max(1.0, MIN_DETECT_SIDE / max(size))
            pad = round(DETECT_BORDER * max(size) * scale)
            batch = [ImageOps.expand(self._scaled(images[i], scale), pad, fill=(0, 0, 0)) for i in indices]
            boxes, probabilities = self.mtcnn.detect(batch if len(batch) > 1 else batch[0])
            if len(batch) == 1:
                boxes, probabilities = [boxes], [probabilities]
            for i, image_boxes, image_probabilities in zip(indices, boxes, probabilities):
                results[i] = [(tuple((v - pad) / scale for v in box), p) for box, p in self._keep(image_boxes, image_probabilities)]
        for i, faces in enumerate(results):
            if not faces:  # a second look without the border finds a few faces the bordered pass missed
                scale = max(1.0, MIN_DETECT_SIDE / max(images[i].size))
                found = self._keep(*self.mtcnn.detect(self._scaled(images[i], scale)))
                results[i] = [(tuple(v / scale for v in box), p) for box, p in found]
        return results

    @staticmethod
    def _scaled(image: Image.Image, scale: float) -> Image.Image:
        image = image.convert("RGB")
        if scale == 1.0:
            return image
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)

    def _keep(self, boxes, probabilities) -> list[tuple[tuple[float, ...], float]]:
        if boxes is None:
            return []
        # Under numpy 2 the boxes may come back as an object array: convert explicitly.
        faces = [(tuple(float(v) for v in np.asarray(box, dtype=np.float64)), float(p))
                 for box, p in zip(boxes, probabilities) if p is not None and float(p) >= self.min_confidence]
        return sorted(faces, key=lambda face: -(face[0][2] - face[0][0]) * (face[0][3] - face[0][1]))

    def detect(self, image: Image.Image) -> list[Face]:
        """Every face in `image`, largest first, each with its training-style crop."""
        image = image.convert("RGB")
        return [Face(tuple(round(v) for v in box), confidence, crop_face(image, box)) for box, confidence in self.boxes([image])[0]]
