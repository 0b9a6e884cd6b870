"""The saved image processor's evaluation transform in PIL + numpy: the same pixels, without torch's per-call cost.

Used with ONNX Runtime (the app, `predict.py`), where the processor's own call costs more than the resize and the
tensors would go back to numpy anyway. Only transforms whose every step is known are taken over (`NumpyPreprocessor.from_processor` returns None
otherwise, and the processor itself is used): a timm wrapper's, and a fixed-size resize like ViTImageProcessor's
(the face-pretrained ResNet's). `from_config` reads the same from a model folder's JSON files, without transformers or
timm (the light serving install). tests/test_preprocess.py checks they agree: exactly for timm's; ViTImageProcessor
resizes with torchvision, which rounds a few pixels differently from PIL, by one grey level at most.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
from PIL import Image

_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class NumpyPreprocessor:
    """Resize the shorter side to `shorter_side` (or, when None, the whole image to `crop`), centre-crop to `crop`
    (height, width), scale to 0-1, normalise."""

    resample: Image.Resampling
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    shorter_side: int | None
    crop: tuple[int, int]

    @classmethod
    def from_processor(cls, processor) -> NumpyPreprocessor | None:
        """The numpy equivalent of a timm wrapper's evaluation transform (PIL resize, centre crop, normalise) or of a
        ViTImageProcessor's (resize to a fixed size, rescale by 1/255, normalise); None for any other processor."""
        if type(processor).__name__ == "ViTImageProcessor":
            return cls._from_fixed_size(processor)
        transforms = getattr(getattr(processor, "val_transforms", None), "transforms", None)
        if transforms is None:
            return None
        steps = [type(t).__name__ for t in transforms]
        if steps not in (["Resize", "CenterCrop", "MaybeToTensor", "Normalize"], ["Resize", "CenterCrop", "ToTensor", "Normalize"]):
            return None
        resize, crop, _, normalize = transforms
        if not isinstance(resize.size, int) and len(resize.size) != 1 or resize.max_size is not None:
            return None
        resample = _RESAMPLE.get(resize.interpolation.value)
        if resample is None:
            return None
        shorter = resize.size if isinstance(resize.size, int) else resize.size[0]
        return cls(resample, tuple(map(float, normalize.mean)), tuple(map(float, normalize.std)), shorter_side=shorter,
                   crop=tuple(crop.size))

    @classmethod
    def from_config(cls, preprocessing: dict, config: dict | None = None) -> NumpyPreprocessor | None:
        """The same from a model folder's preprocessor_config.json (and config.json, where a timm model keeps its
        `pretrained_cfg`), without loading transformers; None for a processor whose steps it does not know."""
        kind = preprocessing.get("image_processor_type")
        if kind == "ViTImageProcessor":
            size = preprocessing.get("size") or {}
            known = all(preprocessing.get(key, True) for key in ("do_resize", "do_rescale", "do_normalize"))
            if not known or abs(preprocessing.get("rescale_factor", 1 / 255) - 1 / 255) > 1e-9 or not (size.get("height") and size.get("width")):
                return None
            return cls(Image.Resampling(int(preprocessing.get("resample", Image.Resampling.BILINEAR))),
                       tuple(map(float, preprocessing.get("image_mean", (0.5,) * 3))), tuple(map(float, preprocessing.get("image_std", (0.5,) * 3))),
                       shorter_side=None, crop=(size["height"], size["width"]))
        if kind == "TimmWrapperImageProcessor":
            return cls._from_timm(preprocessing.get("pretrained_cfg") or (config or {}).get("pretrained_cfg") or {})
        return None

    @classmethod
    def _from_timm(cls, pretrained_cfg: dict) -> NumpyPreprocessor | None:
        """timm's evaluation transform (`transforms_imagenet_eval`, centre mode): the shorter side resized to
        floor(size / crop_pct), a centre crop to the input size, normalised."""
        _, height, width = pretrained_cfg.get("input_size", (3, 224, 224))
        resample = _RESAMPLE.get(pretrained_cfg.get("interpolation", "bilinear"))
        if height != width or pretrained_cfg.get("crop_mode", "center") != "center" or resample is None:
            return None
        crop_pct = pretrained_cfg.get("crop_pct") or 0.875  # timm's DEFAULT_CROP_PCT
        mean, std = pretrained_cfg.get("mean", (0.485, 0.456, 0.406)), pretrained_cfg.get("std", (0.229, 0.224, 0.225))
        return cls(resample, tuple(map(float, mean)), tuple(map(float, std)), shorter_side=math.floor(height / crop_pct),
                   crop=(height, width))

    @classmethod
    def _from_fixed_size(cls, processor) -> NumpyPreprocessor | None:
        height, width = getattr(processor.size, "height", None), getattr(processor.size, "width", None)
        steps_known = processor.do_resize and processor.do_rescale and processor.do_normalize
        if not steps_known or abs(processor.rescale_factor - 1 / 255) > 1e-9 or not (height and width):
            return None
        resample = Image.Resampling(int(processor.resample)) if processor.resample is not None else Image.Resampling.BILINEAR
        return cls(resample, tuple(map(float, processor.image_mean)), tuple(map(float, processor.image_std)),
                   shorter_side=None, crop=(height, width))

    def __call__(self, images: list[Image.Image]) -> np.ndarray:
        """pixel_values (batch, 3, height, width), float32."""
        return np.stack([self._one(image.convert("RGB")) for image in images])

    def _one(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        if self.shorter_side is None:
            size = self.crop[::-1]
        else:
            short, long = min(width, height), max(width, height)
            # torchvision's Resize(int): the shorter side becomes `shorter_side`, the longer one is truncated
            scaled = (self.shorter_side, int(self.shorter_side * long / short))
            size = scaled if width <= height else scaled[::-1]
        if size != image.size:
            image = image.resize(size, self.resample)
        image = _centre_crop(image, self.crop)
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        return ((pixels - np.array(self.mean, dtype=np.float32)) / np.array(self.std, dtype=np.float32)).transpose(2, 0, 1)


def _centre_crop(image: Image.Image, crop: tuple[int, int]) -> Image.Image:
    """torchvision's center_crop: the same rounding, zero padding where the image is smaller than the crop."""
    height, width = crop
    if image.width < width or image.height < height:
        padded = Image.new("RGB", (max(width, image.width), max(height, image.height)))
        left, top = (padded.width - image.width) // 2, (padded.height - image.height) // 2
        padded.paste(image, (left, top))
        image = padded
    top, left = int(round((image.height - height) / 2.0)), int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))
