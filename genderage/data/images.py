"""Decode-verify, normalise and fingerprint one image file (runs in worker processes)."""

from __future__ import annotations

import hashlib
import io
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Photo -> its largest face cropped like a training chip, or None. The serving flow's detector provides one
# (genderage.serving.faces.largest_face_crop); the data flow takes it as a parameter and never imports serving.
FaceCropper = Callable[[Image.Image], "Image.Image | None"]

# Decompression-bomb guard: anything above this many pixels is refused rather than decoded.
MAX_PIXELS = 64_000_000
MAX_FILE_BYTES = 50 * 1024 * 1024
HASH_SIZE = 16  # 16x16 difference hash = 256 bits


@dataclass
class CleaningOptions:
    """How images are checked and normalised."""

    min_side: int = 32
    max_side: int = 0  # 0 keeps the original size; otherwise larger images are downscaled and re-encoded


@dataclass
class ImageInfo:
    """The outcome for one input: either a written, normalised image and its fingerprints, or a reason."""

    index: int
    reason: str | None = None
    output_name: str | None = None
    sha256: str | None = None
    dhash: bytes | None = None
    width: int = 0
    height: int = 0


class ImageRejected(ValueError):
    """An image that is unusable, with a reason meant for people."""


def open_rgb(path: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, bool]:
    """Open, fully decode and normalise an image (a file, or its bytes) to upright RGB.

    Returns the image and whether it differs from the file's own pixels (rotated or converted).
    Raises ImageRejected with a readable reason for anything that is not a usable still image.
    """
    size = len(path) if isinstance(path, bytes) else Path(path).stat().st_size
    if size == 0:
        raise ImageRejected("empty file (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise ImageRejected(f"file too large ({size / 2**20:.0f} MiB > {MAX_FILE_BYTES / 2**20:.0f} MiB)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(path) if isinstance(path, bytes) else path)
            if image.width * image.height > max_pixels:
                raise ImageRejected(f"too many pixels ({image.width}x{image.height}); possible decompression bomb")
            image.load()
    except UnidentifiedImageError:
        raise ImageRejected("not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("too many pixels; possible decompression bomb") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageRejected(f"corrupt or truncated image ({error})") from None
    rotated = image.getexif().get(0x0112, 1) not in (0, 1)  # EXIF orientation other than 'upright'
    upright = ImageOps.exif_transpose(image) if rotated else image
    rgb = to_rgb(upright)
    return rgb, rotated or rgb is not upright


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha is composited on white, 16/32-bit greyscale is rescaled."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        peak = pixels.max() or 1.0
        scaled = (pixels * (255.0 / peak) if peak > 255 else pixels).clip(0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def difference_hash(image: Image.Image, size: int = HASH_SIZE) -> bytes:
    """A perceptual difference hash (size*size bits): robust to re-encoding, resizing and small edits."""
    grey = np.asarray(image.convert("L").resize((size + 1, size), Image.Resampling.BILINEAR), dtype=np.int16)
    return np.packbits(grey[:, 1:] > grey[:, :-1]).tobytes()


def process_image(index: int, source_path: str, output_dir: str, options: CleaningOptions,
                  face_cropper: FaceCropper | None = None) -> ImageInfo:
    """Check one input and write its normalised copy to `output_dir`/<sha256 prefix>_<index>.jpg.

    With `face_cropper` (faces=crop sources) the copy is the largest face's crop, and a photo without one is dropped.
    """
    try:
        data = Path(source_path).read_bytes()
        image, changed = open_rgb(source_path)
    except ImageRejected as error:
        return ImageInfo(index, reason=str(error))
    except OSError as error:
        return ImageInfo(index, reason=f"unreadable file ({error.strerror or error})")
    if face_cropper is not None:
        image, changed = face_cropper(image), True
        if image is None:
            return ImageInfo(index, reason="no face found (faces=crop)")
    if min(image.size) < options.min_side:
        return ImageInfo(index, reason=f"too small ({image.width}x{image.height} < {options.min_side} px)")
    if options.max_side and max(image.size) > options.max_side:
        image.thumbnail((options.max_side, options.max_side), Image.Resampling.LANCZOS)
        changed = True
    sha256 = hashlib.sha256(data).hexdigest()
    output_name = f"{sha256[:16]}_{index}.jpg"  # unique even for byte-identical inputs
    target = Path(output_dir) / output_name
    is_plain_jpeg = data[:3] == b"\xff\xd8\xff" and not changed
    if is_plain_jpeg:
        shutil.copyfile(source_path, target)  # keep the original bytes: no re-encoding loss
    else:
        image.save(target, "JPEG", quality=95)
    return ImageInfo(index, None, output_name, sha256, difference_hash(image), image.width, image.height)
