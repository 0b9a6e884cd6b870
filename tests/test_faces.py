"""The crop-and-align function, on drawn landmarks and on a real rotated photo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from genderage.serving.faces import MAX_ALIGN_DEGREES, chip_box, crop_face, eye_angle


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


def test_a_rotated_real_photo_is_levelled():
    """The astronaut photo (scikit-image, public domain) turned by 20°: the aligned crop's eyes are level again."""
    data = pytest.importorskip("skimage.data")
    pytest.importorskip("facenet_pytorch")
    from genderage.serving.faces import FaceDetector

    detector = FaceDetector()
    rotated = Image.fromarray(data.astronaut()).rotate(20, resample=Image.Resampling.BICUBIC)
    found = detector.detections([rotated])[0][0]
    assert abs(eye_angle(found.landmarks)) > 12
    crop = detector.largest_crops([rotated])[0]
    again = detector.detections([crop])[0][0]
    assert abs(eye_angle(again.landmarks)) < 4
    assert detector.detect(rotated)[0].crop.size == crop.size


def test_touches_edge():
    from genderage.serving.faces import touches_edge

    assert touches_edge((0, 50, 100, 150), (200, 200))
    assert touches_edge((50, 50, 199, 150), (200, 200))
    assert not touches_edge((20, 20, 180, 180), (200, 200))


def test_a_tight_chip_is_framed_like_the_thorough_pass():
    """A chip whose face touches its edges (like UTKFace's) takes the cheap bordered second look; its box must
    agree with the slow thorough pass (upscaled, bordered) that calibrated the chip framing."""
    data = pytest.importorskip("skimage.data")
    pytest.importorskip("facenet_pytorch")
    from genderage.serving.faces import DETECT_BORDER, MIN_DETECT_SIDE, FaceDetector, touches_edge

    detector = FaceDetector()
    chip = detector.largest_crops([Image.fromarray(data.astronaut())])[0]
    native = detector._pass([chip])[0]
    assert native and touches_edge(native[0].box, chip.size)  # the case the second look is for
    fast = detector.detections([chip])[0][0].box
    thorough = detector._pass([chip], MIN_DETECT_SIDE, DETECT_BORDER)[0][0].box
    width = thorough[2] - thorough[0]
    assert max(abs(a - b) for a, b in zip(fast, thorough)) < 0.1 * width
