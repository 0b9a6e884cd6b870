"""Inference on face crops: batched, optional flip test-time augmentation, marginal gender and age-group probabilities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .labels import AGE_GROUP_MIDPOINTS, AGE_GROUPS, GENDERS, split_joint_label

DEFAULT_MODEL = str(Path(__file__).resolve().parents[1] / "models" / "default")


@dataclass
class Prediction:
    """One face's answer: marginal probabilities, the expected age, and every raw label's probability."""

    labels: dict[str, float]
    gender: dict[str, float] | None = None
    age_group: dict[str, float] | None = None
    age: float | None = None

    def to_dict(self) -> dict:
        """The marginals as the app's JSON API returns them."""
        return {"gender": self.gender, "age_group": self.age_group, "age": None if self.age is None else round(self.age, 1)}


def marginals(probabilities: np.ndarray, label_names: list[str]) -> list[Prediction]:
    """Turn per-label probabilities into gender / age-group marginals (sums of joint labels) and an expected age."""
    predictions = []
    for row in probabilities:
        labels = {name: float(p) for name, p in zip(label_names, row)}
        gender = age_group = None
        if all(", " in name for name in label_names):
            gender, age_group = dict.fromkeys(GENDERS, 0.0), dict.fromkeys(AGE_GROUPS, 0.0)
            for name, p in labels.items():
                g, a = split_joint_label(name)
                gender[g] += p
                age_group[a] += p
        elif set(label_names) == set(GENDERS):
            gender = labels
        elif set(label_names) == set(AGE_GROUPS):
            age_group = labels
        age = None if age_group is None else float(sum(age_group[g] * m for g, m in zip(AGE_GROUPS, AGE_GROUP_MIDPOINTS)))
        predictions.append(Prediction(labels, gender, age_group, age))
    return predictions


class GenderAgeClassifier:
    """A saved genderage model (any transformers image classifier with our label names) ready for inference."""

    def __init__(self, model, processor, device: str = "cpu", bf16: bool = False):
        # channels_last is faster for these convolutional networks on CPUs and GPUs alike.
        self.model = model.eval().to(device, memory_format=torch.channels_last)
        self.processor = processor
        self.device = device
        self.bf16 = bf16  # bf16 autocast: about 2.5x faster on recent CPUs, probabilities differ by ~1e-2
        self.label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @classmethod
    def from_pretrained(cls, path_or_id: str = DEFAULT_MODEL, device: str = "cpu", bf16: bool = False) -> "GenderAgeClassifier":
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        model = AutoModelForImageClassification.from_pretrained(path_or_id, dtype=torch.float32)
        return cls(model, AutoImageProcessor.from_pretrained(path_or_id), device, bf16)

    @torch.inference_mode()
    def probabilities(self, images: list[Image.Image], flip: bool = False, batch_size: int = 64) -> np.ndarray:
        """Softmax over the model's labels; with `flip`, averaged with the mirrored image's."""
        rows = []
        for start in range(0, len(images), batch_size):
            batch = [image.convert("RGB") for image in images[start : start + batch_size]]
            probabilities = self._forward(batch)
            if flip:
                probabilities = (probabilities + self._forward([ImageOps.mirror(image) for image in batch])) / 2
            rows.append(probabilities)
        return np.concatenate(rows) if rows else np.zeros((0, len(self.label_names)))

    def _forward(self, images: list[Image.Image]) -> np.ndarray:
        pixels = self.processor(images, return_tensors="pt")["pixel_values"].to(self.device, memory_format=torch.channels_last)
        with torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(pixel_values=pixels).logits
        return logits.float().softmax(-1).cpu().numpy()

    def predict(self, images: list[Image.Image], flip: bool = False, batch_size: int = 64) -> list[Prediction]:
        return marginals(self.probabilities(images, flip, batch_size), self.label_names)
