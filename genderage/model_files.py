"""What a model folder holds, by name, and its weights' fingerprint: shared by training (which writes the folder and
its ONNX export) and serving (which reads them), so serving needs nothing from training."""

from __future__ import annotations

import hashlib
from pathlib import Path

ONNX_FILE = "model.onnx"
# model.onnx records its weights' SHA-256 under this key, so inference can tell a stale export.
FINGERPRINT_KEY = "genderage_weights_sha256"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def weights_fingerprint(folder: str | Path) -> str | None:
    """SHA-256 of a model folder's weights file: model.onnx records it, so a stale export is never used."""
    for name in WEIGHT_FILES:
        path = Path(folder) / name
        if path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
    return None
