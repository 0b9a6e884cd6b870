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


def build_train_transform(processor, args: DataArguments) -> Callable:
    """Augmentation stages (each off at strength 0), then tensor conversion and the processor's normalisation."""
    settings = processor_settings(processor)
    primary = [v2.RandomResizedCrop(settings["size"], scale=(args.scale_min, 1.0), antialias=True)]
    if args.hflip > 0:
        primary.append(v2.RandomHorizontalFlip(p=args.hflip))
    secondary = []
    if args.rotation > 0 or args.translate > 0:
        secondary.append(v2.RandomAffine(degrees=args.rotation, translate=(args.translate, args.translate) if args.translate else None))
    if args.color_jitter > 0:
        secondary.append(v2.ColorJitter(args.color_jitter, args.color_jitter, args.color_jitter))
    final = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(settings["mean"], settings["std"])]
    # Augment uint8 tensors (cheaper than PIL or float), convert once at the end.
    return v2.Compose([v2.ToImage()] + primary + secondary + final)


def build_eval_transform(processor) -> Callable[[list], torch.Tensor]:
    """Evaluation uses the image processor itself, so it equals inference (pipeline, app) exactly."""

    def transform(images: list) -> torch.Tensor:
        return processor([image.convert("RGB") for image in images], return_tensors="pt")["pixel_values"]

    return transform
