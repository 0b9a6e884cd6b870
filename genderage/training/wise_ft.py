"""WiSE-FT (Wortsman et al., CVPR 2022): a model whose weights mix two models of one architecture,
θ = (1 − α) θ_start + α θ_finetuned. Between a face network's linear probe (or any earlier model) and its fine-tuned
version, it keeps much of what the start knew beyond the fine-tuning data, at no inference cost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..model_files import ONNX_FILE
from .onnx_export import export_onnx

WEIGHTS_FILE = "model.safetensors"
# Files of the fine-tuned folder that describe it and hold for the mix too (labels, preprocessing); the figures do not.
KEPT_FILES = ("config.json", "preprocessor_config.json")


def interpolate_weights(start: dict[str, torch.Tensor], finetuned: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """(1 − alpha) start + alpha finetuned for every floating-point tensor; counters (BatchNorm's num_batches_tracked)
    come from `finetuned`. The two must hold the same tensors with the same shapes."""
    if start.keys() != finetuned.keys():
        missing = sorted(start.keys() ^ finetuned.keys())[:5]
        raise ValueError(f"the two models hold different tensors (e.g. {missing}): not one architecture")
    mixed = {}
    for name, tensor in finetuned.items():
        if start[name].shape != tensor.shape:
            raise ValueError(f"{name}: shape {tuple(start[name].shape)} against {tuple(tensor.shape)}: not one architecture")
        mixed[name] = torch.lerp(start[name].float(), tensor.float(), alpha).to(tensor.dtype) if tensor.is_floating_point() else tensor.clone()
    return mixed


def wise_ft(start_dir: str | Path, finetuned_dir: str | Path, alpha: float, output_dir: str | Path) -> Path:
    """Write a normal model folder (weights, config, processor, model.onnx, a card saying how it was made) with the
    weights mixed at `alpha` (0 = `start_dir`, 1 = `finetuned_dir`)."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    start_dir, finetuned_dir, output_dir = Path(start_dir), Path(finetuned_dir), Path(output_dir)
    for folder in (start_dir, finetuned_dir):
        if not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{folder} has no {WEIGHTS_FILE}: not a model folder")
    labels = [_labels(json.loads((folder / "config.json").read_text())) for folder in (start_dir, finetuned_dir)]
    if labels[0] != labels[1]:
        raise ValueError(f"{start_dir} and {finetuned_dir} have different labels: their heads cannot be mixed")
    mixed = interpolate_weights(load_file(start_dir / WEIGHTS_FILE), load_file(finetuned_dir / WEIGHTS_FILE), alpha)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in KEPT_FILES:
        shutil.copy(finetuned_dir / name, output_dir / name)
    (output_dir / ONNX_FILE).unlink(missing_ok=True)
    save_file(mixed, output_dir / WEIGHTS_FILE, metadata={"format": "pt"})
    (output_dir / "README.md").write_text(_card(start_dir, finetuned_dir, alpha))
    export_onnx(output_dir)
    return output_dir


def _labels(config: dict) -> list[str] | None:
    """A model's label names: transformers keeps id2label, a timm wrapper label_names."""
    if "id2label" in config:
        return [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    return config.get("label_names")


def _card(start_dir: Path, finetuned_dir: Path, alpha: float) -> str:
    return f"""---
library_name: transformers
pipeline_tag: image-classification
license: other
tags:
- image-classification
- gender
- age
- genderage
- wise-ft
---

# WiSE-FT mix, α = {alpha:g}

Weights = {1 - alpha:g} × `{start_dir.name}` + {alpha:g} × `{finetuned_dir.name}` (WiSE-FT, Wortsman et al. 2022), made by
`python wise_ft.py {start_dir} {finetuned_dir} --alpha {alpha:g}`. Labels and preprocessing are the fine-tuned
model's. Its accuracy is not the fine-tuned model's: measure it (`benchmarks/compare_models.py`). It inherits the
licences and the research-only restriction of both models' training data.
"""
