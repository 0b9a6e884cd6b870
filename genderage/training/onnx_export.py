"""Export a saved model folder to ONNX (`model.onnx`: pixel_values -> logits, dynamic batch).

Works on any folder `AutoModelForImageClassification` loads (timm wrapper or transformers); the input size is
whatever the folder's own image processor produces, so re-exporting after a new model is one command.
Int8 quantisation was measured and is not offered: see README ("ONNX Runtime").
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

OPSET = 17
ONNX_FILE = "model.onnx"
# model.onnx records its weights' SHA-256 under this key, so inference can tell a stale export.
FINGERPRINT_KEY = "genderage_weights_sha256"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
logger = logging.getLogger(__name__)


def weights_fingerprint(folder: str | Path) -> str | None:
    """SHA-256 of a model folder's weights file: model.onnx records it, so a stale export is never used."""
    import hashlib

    for name in WEIGHT_FILES:
        path = Path(folder) / name
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    return None


def export_onnx(model_dir: str | Path, model=None, processor=None, output: str | Path | None = None) -> Path:
    """Write `model_dir`/model.onnx (or `output`) from the folder's weights, or from `model`/`processor` if given."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model_dir = Path(model_dir)
    if model is None:
        model = AutoModelForImageClassification.from_pretrained(model_dir, dtype=torch.float32)
    else:  # a copy: training's model may live on a GPU and must stay as it is
        model = copy.deepcopy(model)
    processor = processor if processor is not None else AutoImageProcessor.from_pretrained(model_dir)
    # The dummy batch has the processor's real output shape; batch 2 so the tracer cannot fold the batch axis.
    dummy = processor([Image.new("RGB", (64, 64))] * 2, return_tensors="pt")["pixel_values"].float()
    target = Path(output) if output else model_dir / ONNX_FILE
    wrapped = _logits_only(model.float().cpu().eval())  # training may leave the model on a GPU or in train mode
    with torch.no_grad():
        # The TorchScript exporter: no onnxscript dependency, and stable for these convnets.
        torch.onnx.export(wrapped, (dummy,), str(target), input_names=["pixel_values"], output_names=["logits"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET, dynamo=False)
    fingerprint = weights_fingerprint(model_dir)
    if fingerprint and output is None:  # lets inference notice a model.onnx left behind by older weights
        import onnx

        graph = onnx.load(str(target))
        onnx.helper.set_model_props(graph, {FINGERPRINT_KEY: fingerprint})
        onnx.save(graph, str(target))
    return target


def export_after_training(output_dir: str | Path, model, processor) -> Path | None:
    """Training's last step: export model.onnx, but never lose a finished run to an export problem (warn instead)."""
    try:
        return export_onnx(output_dir, model, processor)
    except Exception as error:  # noqa: BLE001 - the saved weights are what matters; the export can be redone
        logger.warning("ONNX export failed (%s); run `python export_onnx.py %s` to retry", error, output_dir)
        return None


def _logits_only(model: "torch.nn.Module") -> "torch.nn.Module":
    """The model wrapped so the exported graph has one plain tensor output (not a ModelOutput)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
            return self.model(pixel_values=pixel_values).logits

    return Logits()
