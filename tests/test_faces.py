"""The crop-and-align function, on drawn landmarks and on a real rotated photo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from genderage.serving.faces import FACE_CHIPS, MAX_ALIGN_DEGREES, FaceDetector, align_chip, chip_box, crop_face, eye_angle


def two_eyes(angle: float, size: int = 200) -> tuple[Image.Image, tuple, tuple]:
    """A grey photo with two white 'eyes' 60 px apart on a line tilted by `angle` degrees around the centre."""
    image = Image.new("RGB", (size, size), (90, 90, 90))
    draw = ImageDraw.Draw(image)
    centre, half = size / 2, 30
    dx, dy = half * math.cos(math.radians(angle)), half * math.sin(math.radians(angle))
    eyes = ((centre - dx, centre - dy), (centre + dx, centre + dy))
    for x, y in eyes:
        draw.ellipse((x - 6, y - 6, x + 6, y + 6), fill=(255, 255, 255))
    landmarks = eyes + ((centre, centre + 20), (centre - 20, centre + 40), (centre + 20, centre + 40))
    box = (centre - 50, centre - 60, centre + 50, centre + 60)
    return image, box, landmarks


def blob_centres(crop: Image.Image) -> list[tuple[float, float]]:
    """Centres of mass of the bright pixels in the left and right halves."""
    bright = np.array(crop.convert("L")) > 200
    ys, xs = np.nonzero(bright)
    middle = crop.width / 2
    return [(xs[side].mean(), ys[side].mean()) for side in (xs < middle, xs >= middle)]


@pytest.mark.parametrize("angle", [-25.0, 12.0, 30.0])
def test_tilted_eyes_come_out_level(angle):
    image, box, landmarks = two_eyes(angle)
    assert eye_angle(landmarks) == pytest.approx(angle, abs=1e-6)
    (left_x, left_y), (right_x, right_y) = blob_centres(crop_face(image, box, landmarks))
    assert abs(left_y - right_y) < 1.5  # level within a pixel or so (before: 2 × 30 × sin(angle) px apart)
    assert right_x - left_x == pytest.approx(60, abs=2)  # rotation only: the eyes keep their distance


def test_without_landmarks_the_crop_is_the_plain_chip_region():
    image, box, _ = two_eyes(20.0)
    plain = crop_face(image, box)
    assert np.array_equal(np.array(plain), np.array(image.crop(chip_box(box))))
    (_, left_y), (_, right_y) = blob_centres(plain)
    assert abs(left_y - right_y) > 15  # still tilted


def test_implausible_landmarks_are_not_trusted():
    image, box, landmarks = two_eyes(MAX_ALIGN_DEGREES + 20)
    assert eye_angle(landmarks) == 0.0
    assert np.array_equal(np.array(crop_face(image, box, landmarks)), np.array(crop_face(image, box)))


@pytest.mark.parametrize("first", ["centerface", "mtcnn"])
def test_a_rotated_real_photo_is_levelled(first):
    """The astronaut photo (scikit-image, public domain) turned by 20°: the aligned crop's eyes are level again, as
    MTCNN's landmarks (the steadier judge of tilt) see them, whichever detector's landmarks did the levelling."""
    data = pytest.importorskip("skimage.data")
    from genderage.serving.detectors import MTCNN
    from genderage.serving.faces import FaceDetector

    detector, judge = FaceDetector(first=first), MTCNN()
    rotated = Image.fromarray(data.astronaut()).rotate(20, resample=Image.Resampling.BICUBIC)
    found = detector.detections([rotated])[0][0]
    assert abs(eye_angle(found.landmarks)) > 12
    crop = detector.largest_crops([rotated])[0]
    assert abs(eye_angle(judge.detections([crop])[0][0].landmarks)) < 4
    assert detector.detect(rotated)[0].crop.size == crop.size


def test_touches_edge():
    from genderage.serving.detectors import touches_edge

    assert touches_edge((0, 50, 100, 150), (200, 200))
    assert touches_edge((50, 50, 199, 150), (200, 200))
    assert not touches_edge((20, 20, 180, 180), (200, 200))


def test_a_tight_chip_is_framed_like_the_thorough_pass():
    """MTCNN: a chip whose face touches its edges (like UTKFace's) takes the cheap bordered second look; its box must
    agree with the slow thorough pass (upscaled, bordered) that calibrated the chip framing."""
    data = pytest.importorskip("skimage.data")
    from genderage.serving.detectors import DETECT_BORDER, MIN_DETECT_SIDE, MTCNN, touches_edge
    from genderage.serving.faces import FaceDetector

    detector = MTCNN()
    chip = FaceDetector(first="mtcnn").largest_crops([Image.fromarray(data.astronaut())])[0]
    native = detector._pass([chip])[0]
    assert native and touches_edge(native[0].box, chip.size)  # the case the second look is for
    fast = detector.detections([chip])[0][0].box
    thorough = detector._pass([chip], MIN_DETECT_SIDE, DETECT_BORDER)[0][0].box
    width = thorough[2] - thorough[0]
    assert max(abs(a - b) for a, b in zip(fast, thorough)) < 0.1 * width


def box_iou(a, b) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    overlap = width * height
    return overlap / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap)


def test_centerface_maps_decode_to_the_box_and_landmarks_they_encode():
    """One heatmap peak at cell (row 10, col 20) of a 4-px grid, a 40 x 48 px face, landmarks at known fractions."""
    from genderage.serving.detectors import decode_centerface

    heatmap, scale, offset, landmarks = np.zeros((1, 32, 32)), np.zeros((2, 32, 32)), np.zeros((2, 32, 32)), np.zeros((10, 32, 32))
    heatmap[0, 10, 20] = 0.9
    heatmap[0, 10, 21] = 0.6  # a weaker neighbour: the same face, suppressed
    scale[:, 10, 20] = np.log(np.array([48, 40]) / 4)  # height, width in cells of 4 px
    scale[:, 10, 21] = np.log(np.array([48, 40]) / 4)
    offset[:, 10, 20] = (0.25, 0.5)  # y, x in cells
    fractions = [(0.3, 0.35), (0.7, 0.35), (0.5, 0.55), (0.35, 0.75), (0.65, 0.75)]  # (x, y) within the box
    for j, (fx, fy) in enumerate(fractions):
        landmarks[2 * j, 10, 20], landmarks[2 * j + 1, 10, 20] = fy, fx
    (box, score, points), = decode_centerface(heatmap, scale, offset, landmarks, threshold=0.5)
    centre_x, centre_y = (20 + 0.5 + 0.5) * 4, (10 + 0.25 + 0.5) * 4
    assert box == pytest.approx((centre_x - 20, centre_y - 24, centre_x + 20, centre_y + 24))
    assert score == pytest.approx(0.9)
    np.testing.assert_allclose(points, [(box[0] + fx * 40, box[1] + fy * 48) for fx, fy in fractions])
    assert decode_centerface(heatmap, scale, offset, landmarks, threshold=0.95) == []


def test_non_maximum_suppression_keeps_the_best_of_overlapping_boxes():
    from genderage.serving.detectors import non_maximum_suppression

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=float)
    assert non_maximum_suppression(boxes, np.array([0.6, 0.9, 0.7]), 0.3) == [1, 2]
    # A small box inside a large one: little of their union, all of the smaller box (MTCNN's last suppression).
    nested = np.array([[0, 0, 99, 99], [10, 10, 29, 29]], dtype=float)
    assert non_maximum_suppression(nested, np.array([0.9, 0.8]), 0.7) == [0, 1]
    assert non_maximum_suppression(nested, np.array([0.9, 0.8]), 0.7, overlap="smaller") == [0]


@pytest.mark.parametrize("size,target", [((37, 53), (20, 29)), ((12, 12), (24, 24)), ((100, 61), (71, 43)), ((5, 9), (5, 9))])
def test_area_resampling_equals_torch(size, target):
    """MTCNN's resampling in numpy is torch's interpolate(mode="area"), down and up."""
    torch = pytest.importorskip("torch")
    from genderage.serving.detectors import _area_resize

    pixels = np.random.default_rng(0).uniform(0, 255, (2, 3, *size)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(pixels), size=target, mode="area").numpy()
    np.testing.assert_allclose(_area_resize(pixels, target), expected, atol=1e-3)


def test_mtcnn_on_onnx_runtime_finds_what_facenet_pytorch_finds(astronaut):
    """The ONNX networks and the numpy cascade against facenet-pytorch's own detect_face (the full install has it):
    the same faces, boxes and landmarks within a pixel, the same probabilities; on real and on face-free photos."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("facenet_pytorch")
    from facenet_pytorch import MTCNN as FacenetMTCNN
    from facenet_pytorch.models.utils.detect_face import detect_face

    from genderage.serving.demo import EXAMPLES
    from genderage.serving.detectors import MTCNNCascade

    reference, cascade = FacenetMTCNN(), MTCNNCascade()
    group = Image.new("RGB", (700, 420), (90, 90, 90))
    group.paste(astronaut.resize((400, 400)), (10, 10))
    group.paste(astronaut.resize((150, 150)).rotate(15), (480, 200))
    photos = [astronaut, Image.open(EXAMPLES / "grace_hopper.jpg").convert("RGB"), group, Image.open(EXAMPLES / "coffee.png").convert("RGB")]
    found = 0
    for photo, min_face in zip(photos, (20, 20, 30, 20)):
        pixels = np.asarray(photo)
        with torch.inference_mode():
            boxes, points = detect_face(pixels[None], min_face, reference.pnet, reference.rnet, reference.onet,
                                        reference.thresholds, reference.factor, "cpu")
        expected_boxes, expected_points = np.asarray(boxes[0], np.float64).reshape(-1, 5), np.asarray(points[0], np.float64).reshape(-1, 5, 2)
        ours_boxes, ours_points = cascade.detect(pixels, min_face)
        assert len(ours_boxes) == len(expected_boxes)
        np.testing.assert_allclose(ours_boxes[:, :4], expected_boxes[:, :4], atol=1.0)
        np.testing.assert_allclose(ours_boxes[:, 4], expected_boxes[:, 4], atol=1e-3)
        np.testing.assert_allclose(ours_points, expected_points, atol=1.0)
        found += len(ours_boxes)
    assert found >= 4  # the astronaut, Grace Hopper and the two faces of the group; none in the coffee cup


@pytest.fixture(scope="module")
def astronaut():
    data = pytest.importorskip("skimage.data")
    return Image.fromarray(data.astronaut())


def test_centerface_and_mtcnn_agree_on_a_real_face(astronaut):
    """Both detectors give the same face: boxes overlap, landmarks within a fifth of the eye distance, and the chips
    their calibrated framings cut overlap almost entirely (the classifier sees the same crop either way)."""
    from genderage.serving.detectors import MTCNN, CenterFace

    fast, thorough = CenterFace()(astronaut), MTCNN().detections([astronaut])[0]
    assert len(fast) == len(thorough) == 1
    assert box_iou(fast[0].box, thorough[0].box) > 0.6
    reference = np.array(thorough[0].landmarks)
    eye_distance = np.linalg.norm(reference[0] - reference[1])
    assert np.linalg.norm(np.array(fast[0].landmarks) - reference, axis=1).max() < 0.2 * eye_distance
    assert box_iou(chip_box(fast[0].box, fast[0].framing), chip_box(thorough[0].box, thorough[0].framing)) > 0.85


def test_mtcnn_is_asked_only_where_centerface_finds_nothing(astronaut, monkeypatch):
    from genderage.serving.faces import FaceDetector

    detector = FaceDetector()
    asked = []
    monkeypatch.setattr(type(detector.mtcnn), "detections", lambda self, images: asked.extend(images) or [[] for _ in images])
    blank = Image.new("RGB", (300, 200), (120, 120, 120))
    faces = detector.detections([astronaut, blank])
    assert len(faces[0]) == 1 and faces[1] == []
    assert len(asked) == 1 and asked[0].size == blank.size


def test_mtcnn_boxes_outside_the_photo_get_empty_answers():
    """A later stage whose every box lies outside the photo answers nothing instead of failing on an empty batch."""
    from genderage.serving.detectors import MTCNNCascade

    cascade = MTCNNCascade()
    image = np.zeros((1, 3, 40, 40), np.float32)
    outside = np.array([[50.0, 50.0, 70.0, 70.0, 0.9], [-30.0, 10.0, -5.0, 30.0, 0.8]])
    for network, side, widths in ((cascade.rnet, 24, [4, 2]), (cascade.onet, 48, [4, 10, 2])):
        boxes, outputs = cascade._run(network, image, outside, side)
        assert boxes.shape == (0, 5) and [o.shape for o in outputs] == [(0, w) for w in widths]


def test_live_frames_skip_the_thorough_detector(astronaut, monkeypatch):
    """fallback=False (the app's live video): a frame without a face costs CenterFace's pass only."""
    from genderage.serving.faces import FaceDetector

    detector = FaceDetector()
    asked = []
    monkeypatch.setattr(type(detector.mtcnn), "detections", lambda self, images: asked.extend(images) or [[] for _ in images])
    blank = Image.new("RGB", (640, 480), (120, 120, 120))
    assert detector.detections([blank], fallback=False) == [[]] and asked == []
    assert len(detector.detect(astronaut, fallback=False)) == 1
    assert detector.detections([blank]) == [[]] and len(asked) == 1  # the default still looks again


@pytest.mark.parametrize("first", ["centerface", "mtcnn"])
@pytest.mark.parametrize("size", [(1, 1), (5, 5), (11, 11), (1, 400), (400, 2), (19, 300)])
def test_images_too_small_for_a_face_have_none(first, size):
    from genderage.serving.faces import FaceDetector

    detector = FaceDetector(first=first)
    image = Image.new("RGB", size, (200, 150, 120))
    assert detector.too_small(image)
    assert detector.detections([image]) == [[]]
    assert detector.detect(image) == [] and detector.largest_crops([image]) == [None]


@pytest.mark.parametrize("size", [(20, 20), (24, 600), (600, 21), (64, 48)])
def test_small_but_possible_images_are_searched_without_error(size):
    from genderage.serving.faces import FaceDetector

    image = Image.new("RGB", size, (200, 150, 120))
    assert FaceDetector().detections([image]) == [[]]  # searched by both detectors; a flat colour has no face


def test_a_face_cut_by_the_edge_is_reported_inside_the_photo(astronaut):
    """A tight chip: CenterFace's box runs past the photo's edge (kept for framing), the reported box does not."""
    from genderage.serving.faces import FaceDetector

    chip = astronaut.crop((190, 80, 290, 190))  # the face, cut at the forehead and the left cheek
    detector = FaceDetector()
    (found,), (face,) = detector.detections([chip])[0], detector.detect(chip)
    assert found.box[0] < 0 or found.box[1] < 0 or found.box[2] > chip.width or found.box[3] > chip.height
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= chip.width and 0 <= y0 < y1 <= chip.height


def dlib_chip_photo(angle: float, scale: float) -> tuple[Image.Image, tuple]:
    """A grey photo with five white dots where a face tilted by `angle` on a chip `scale` times 150 px would have its
    landmarks, so the dlib chip must bring them back exactly onto the template."""
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    landmarks = tuple((70 + scale * 150 * (cos * x - sin * y), 40 + scale * 150 * (sin * x + cos * y)) for x, y in FACE_CHIPS["dlib"].points)
    image = Image.new("RGB", (300, 300), (90, 90, 90))
    draw = ImageDraw.Draw(image)
    for x, y in landmarks:
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=(255, 255, 255))
    return image, landmarks


@pytest.mark.parametrize("angle, scale", [(0.0, 1.0), (15.0, 1.3), (-30.0, 0.7)])
def test_a_dlib_chip_puts_the_landmarks_on_the_template(angle, scale):
    image, landmarks = dlib_chip_photo(angle, scale)
    chip = align_chip(image, landmarks, FACE_CHIPS["dlib"])
    assert chip.width == chip.height == round(scale * 150)  # the photo's own resolution
    bright = np.array(chip.convert("L")) > 170
    labelled = [(x * chip.width, y * chip.height) for x, y in FACE_CHIPS["dlib"].points]
    for x, y in labelled:  # every dot's pixels sit around its template point
        ys, xs = np.nonzero(bright[max(0, int(y) - 8): int(y) + 9, max(0, int(x) - 8): int(x) + 9])
        assert len(xs) > 5
        assert abs(xs.mean() + max(0, int(x) - 8) - x) < 1.5 and abs(ys.mean() + max(0, int(y) - 8) - y) < 1.5


def test_the_dlib_chip_of_a_mirrored_face_is_the_mirrored_chip():
    image, landmarks = dlib_chip_photo(10.0, 1.0)
    gradient = Image.linear_gradient("L").resize(image.size).convert("RGB")
    image = Image.blend(image, gradient, 0.3)
    width = image.width
    # A mirror swaps the eyes and the mouth corners: their order stays image left to right.
    mirrored = tuple((width - x, y) for x, y in (landmarks[1], landmarks[0], landmarks[2], landmarks[4], landmarks[3]))
    chip = align_chip(image, landmarks, FACE_CHIPS["dlib"])
    mirrored_chip = align_chip(ImageOps.mirror(image), mirrored, FACE_CHIPS["dlib"])
    difference = np.abs(np.asarray(ImageOps.mirror(chip), dtype=float) - np.asarray(mirrored_chip, dtype=float))
    assert difference.mean() < 3.0


def test_a_reframed_chip_is_wider_and_shifted():
    chip = FACE_CHIPS["dlib"]
    assert chip.reframed(1.0, 0.0) == chip
    wider = chip.reframed(1.25, 0.1)
    eye_gap = chip.points[1][0] - chip.points[0][0]
    assert wider.points[1][0] - wider.points[0][0] == pytest.approx(eye_gap / 1.25)
    assert sum(x for x, _ in wider.points) / 5 < sum(x for x, _ in chip.points) / 5  # the frame moved right: the face left


def test_an_unknown_chip_is_refused():
    with pytest.raises(ValueError, match="dlib"):
        FaceDetector(chip="arcface")


def test_the_detector_cuts_dlib_chips_of_a_real_face():
    data = pytest.importorskip("skimage.data")
    photo = Image.fromarray(data.astronaut())
    (box_face,), (chip_face,) = FaceDetector().detect(photo), FaceDetector(chip="dlib").detect(photo)
    assert box_face.box == chip_face.box  # the same detection, cut two ways
    assert chip_face.crop.width == chip_face.crop.height
    assert chip_face.crop.size != box_face.crop.size
