"""On-the-fly preprocessing: torchvision v2 augmentation for training, the model's own image processor for evaluation."""

from __future__ import annotations

from typing import Callable

import torch
from torchvision.transforms import v2

from .config import DataArguments


def processor_settings(processor) -> dict:
    """Size, mean and std that the image processor applies, whatever its class."""
    if hasattr(processor, "data_config"):  # timm wrapper
        config = processor.data_config
        return {"size": config["input_size"][-1], "mean": list(config["mean"]), "std": list(config["std"])}
    crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    size = crop or processor.size
    side = size.get("height") or size.get("shortest_edge")
    return {"size": side, "mean": list(processor.image_mean), "std": list(processor.image_std)}


class RandomDownscale(torch.nn.Module):
    """Shrink to a random 25-75% of the side and back: the soft, low-resolution faces of small or distant subjects."""

    def __init__(self, p: float, smallest: float = 0.25, largest: float = 0.75):
        super().__init__()
        self.p, self.smallest, self.largest = p, smallest, largest

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        height, width = image.shape[-2:]
        factor = self.smallest + (self.largest - self.smallest) * float(torch.rand(()))
        small = v2.functional.resize(image, [max(8, round(height * factor)), max(8, round(width * factor))], antialias=True)
        return v2.functional.resize(small, [height, width], antialias=True)


class RandomFraming(torch.nn.Module):
    """A crop framed as another tool might frame the face: `scale` times the chip's side (above 1 the frame reaches past
    the photo and is filled black, as people who pad photos to a square do), shifted by up to `shift` of the side,
    resized back to the chip's size."""

    def __init__(self, p: float, scale: tuple[float, float] = (0.9, 1.4), shift: float = 0.1):
        super().__init__()
        self.p, self.scale, self.shift = p, scale, shift

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return image
        height, width = image.shape[-2:]
        scale = self.scale[0] + (self.scale[1] - self.scale[0]) * float(torch.rand(()))
        shift_x, shift_y = (self.shift * (2 * torch.rand(2) - 1)).tolist()
        crop_h, crop_w = max(1, round(height * scale)), max(1, round(width * scale))
        top = round((height - crop_h) / 2 + shift_y * height)
        left = round((width - crop_w) / 2 + shift_x * width)
        # torchvision's crop fills what lies outside the image with zeros (black).
        framed = v2.functional.crop(image, top, left, crop_h, crop_w)
        return v2.functional.resize(framed, [height, width], antialias=True)


def build_train_transform(processor, args: DataArguments) -> Callable:
    """Augmentation stages (each off at strength 0), then tensor conversion and the processor's normalisation."""
    settings = processor_settings(processor)
    ratio = (1 - args.aspect_jitter, 1 / (1 - args.aspect_jitter))
    stages = [RandomFraming(args.framing, (0.9, args.framing_scale), args.framing_shift)] if args.framing > 0 else []
    stages += [v2.RandomResizedCrop(settings["size"], scale=(args.scale_min, 1.0), ratio=ratio, antialias=True)]
    if args.hflip > 0:
        stages.append(v2.RandomHorizontalFlip(p=args.hflip))
    if args.rotation > 0 or args.translate > 0:
        stages.append(v2.RandomAffine(degrees=args.rotation, translate=(args.translate, args.translate) if args.translate else None))
    if args.perspective > 0:
        stages.append(v2.RandomPerspective(distortion_scale=args.perspective, p=0.3))
    if args.color_jitter > 0:
        stages.append(v2.ColorJitter(args.color_jitter, args.color_jitter, args.color_jitter))
    if args.grayscale > 0:
        stages.append(v2.RandomGrayscale(p=args.grayscale))
    if args.blur > 0:
        stages.append(v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=(0.1, 1.5))], p=args.blur))
    if args.downscale > 0:
        stages.append(RandomDownscale(args.downscale))
    if args.jpeg > 0:
        stages.append(v2.RandomApply([v2.JPEG(quality=(30, 90))], p=args.jpeg))
    final = [v2.ToDtype(torch.float32, scale=True)]
    if args.erase > 0:
        final.append(v2.RandomErasing(p=args.erase, scale=(0.02, 0.15), value=0))
    final.append(v2.Normalize(settings["mean"], settings["std"]))
    # Augment uint8 tensors (cheaper than PIL or float; JPEG needs them), convert once at the end.
    return v2.Compose([v2.ToImage()] + stages + final)


def build_eval_transform(processor) -> Callable[[list], torch.Tensor]:
    """Evaluation uses the image processor itself, so it equals inference (pipeline, app) exactly."""

    def transform(images: list) -> torch.Tensor:
        return processor([image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"]

    return transform
