import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import random_image
from genderage.data.images import CleaningOptions, ImageRejected, difference_hash, open_rgb, process_image


def write(path: Path, image: Image.Image, **save) -> Path:
    image.save(path, **save)
    return path


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "empty file"), (b"this is a text file", "not an image"), (b"\xff\xd8\xff\xe0garbage", "not an image|corrupt")],
)
def test_unusable_bytes_are_rejected_with_a_reason(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageRejected, match=reason):
        open_rgb(path)


def test_truncated_jpeg_is_rejected(tmp_path: Path):
    buffer = io.BytesIO()
    random_image(0, size=128).save(buffer, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageRejected, match="corrupt or truncated"):
        open_rgb(path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path):
    path = write(tmp_path / "big.png", Image.new("L", (9000, 8000)))
    with pytest.raises(ImageRejected, match="decompression bomb"):
        open_rgb(path)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "I;16", "1"])
def test_every_mode_becomes_rgb(tmp_path: Path, mode: str):
    image = random_image(1).convert(mode) if mode != "I;16" else Image.fromarray((np.arange(48 * 48).reshape(48, 48) * 20).astype(np.uint16))
    suffix = "jpg" if mode == "CMYK" else "png" if mode != "I;16" else "tif"
    rgb, _ = open_rgb(write(tmp_path / f"x.{suffix}", image))
    assert rgb.mode == "RGB" and rgb.size == (48, 48)
    if mode == "I;16":  # 16-bit values are rescaled, not clipped to white
        assert 0 < np.asarray(rgb).mean() < 255


def test_transparent_pixels_become_white(tmp_path: Path):
    image = Image.new("RGBA", (40, 40), (255, 0, 0, 0))
    rgb, _ = open_rgb(write(tmp_path / "t.png", image))
    assert rgb.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path: Path):
    image = random_image(2, size=40).resize((60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    rgb, changed = open_rgb(write(tmp_path / "r.jpg", image, exif=exif))
    assert rgb.size == (40, 60) and changed


def test_process_image_drops_small_and_downscales_large(tmp_path: Path):
    small = write(tmp_path / "small.png", random_image(3, size=20))
    large = write(tmp_path / "large.png", random_image(4, size=300))
    assert "too small (20x20 < 32 px)" == process_image(0, str(small), str(tmp_path), CleaningOptions()).reason
    info = process_image(1, str(large), str(tmp_path), CleaningOptions(max_side=100))
    assert info.reason is None and (info.width, info.height) == (100, 100)
    assert Image.open(tmp_path / info.output_name).size == (100, 100)


def test_plain_jpeg_is_copied_byte_for_byte(tmp_path: Path):
    source = write(tmp_path / "a.jpg", random_image(5), quality=80)
    (tmp_path / "out").mkdir()
    info = process_image(0, str(source), str(tmp_path / "out"), CleaningOptions())
    assert (tmp_path / "out" / info.output_name).read_bytes() == source.read_bytes()


def test_difference_hash_survives_reencoding_but_separates_images():
    image = random_image(6, size=12).resize((120, 120), Image.Resampling.BICUBIC)  # photo-like smoothness
    buffer = io.BytesIO()
    image.resize((100, 100)).save(buffer, "JPEG", quality=60)
    reencoded = Image.open(buffer)

    def distance(a, b):
        return int(np.unpackbits(np.frombuffer(bytes(x ^ y for x, y in zip(a, b)), dtype=np.uint8)).sum())

    assert distance(difference_hash(image), difference_hash(reencoded)) <= 12
    assert distance(difference_hash(image), difference_hash(random_image(7, size=12).resize((120, 120)))) > 60
