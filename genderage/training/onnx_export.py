"""Export a saved model folder to ONNX (`model.onnx`: pixel_values -> logits, dynamic batch).

Works on any folder `AutoModelForImageClassification` loads (timm wrapper or transformers); the input size is
whatever the folder's own image processor produces, so re-exporting after a new model is one command.
`quantize_onnx` then rewrites it as int8 (static, calibrated on faces): for the face-pretrained ResNet that measured
1.5-1.8x faster on a CPU at a small cost; for EfficientNet-Lite0 (depthwise) int8 was slower and less accurate
(docs/experiments.md).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..model_files import FINGERPRINT_KEY, ONNX_FILE, weights_fingerprint

if TYPE_CHECKING:
    import torch

OPSET = 17
# An int8 model.onnx says so (and how it was calibrated) under this key.
QUANTIZATION_KEY = "genderage_quantization"
logger = logging.getLogger(__name__)


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


def quantize_onnx(model_dir: str | Path, images: list, output: str | Path | None = None) -> Path:
    """Rewrite `model_dir`/model.onnx (or write `output`) as int8: static QDQ, per-channel weights, activation
    ranges from `images` (PIL faces as the model will see them; a few hundred suffice).

    The stem convolution (raw pixels) and the classifier (the logits) stay fp32, with percentile ranges that ignore
    the rare extreme activation: every layer int8 with min-max ranges changed 3% of the gender answers, this 0.1-1%,
    and quantising the stem as well was no faster (docs/experiments.md).
    """
    import tempfile

    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from transformers import AutoImageProcessor

    model_dir = Path(model_dir)
    source = model_dir / ONNX_FILE
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: run `python export_onnx.py {model_dir}` first")
    if not images:
        raise ValueError("int8 calibration needs at least one image")
    if QUANTIZATION_KEY in {p.key for p in onnx.load(str(source), load_external_data=False).metadata_props}:
        raise ValueError(f"{source} is already int8: re-export it first (python export_onnx.py {model_dir})")
    processor = AutoImageProcessor.from_pretrained(model_dir)

    class Faces(CalibrationDataReader):
        def __init__(self):
            self.remaining = iter(images)

        def get_next(self):
            image = next(self.remaining, None)
            if image is None:
                return None
            return {"pixel_values": np.asarray(processor(image.convert("RGB"), return_tensors="np")["pixel_values"], dtype=np.float32)}

    target = Path(output) if output else source
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))  # shape inference and folding, as the quantiser expects
        graph = onnx.load(str(prepared))
        stem = next(node.name for node in graph.graph.node if node.op_type == "Conv")
        heads = [node.name for node in graph.graph.node if node.op_type in ("Gemm", "MatMul")]
        quantize_static(str(prepared), str(target), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=[stem, *heads])
    fingerprint = weights_fingerprint(model_dir)
    properties = {QUANTIZATION_KEY: f"int8 static QDQ, per-channel, {len(images)} calibration images"}
    if fingerprint:
        properties[FINGERPRINT_KEY] = fingerprint
    quantized = onnx.load(str(target))
    onnx.helper.set_model_props(quantized, properties)
    onnx.save(quantized, str(target))
    return target


# MTCNN's networks (facenet-pytorch's weights): input sizes are PNet any (fully convolutional), RNet 24, ONet 48 px.
MTCNN_NETWORKS = {"pnet": None, "rnet": 24, "onet": 48}


def export_mtcnn(folder: str | Path) -> list[Path]:
    """Write MTCNN's three networks from facenet-pytorch (MIT; its weights ship in the wheel) to `folder` as
    pnet.onnx, rnet.onnx and onet.onnx (input "images", float NCHW already scaled to about -1..1; outputs in the
    networks' own order: box regression, then landmarks for ONet, then face probabilities). Serving runs them on
    ONNX Runtime, so it needs no torch."""
    import torch
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, network in (("pnet", PNet), ("rnet", RNet), ("onet", ONet)):
        model = network(pretrained=True).eval()
        side = MTCNN_NETWORKS[name] or 31
        outputs = ["regression", "landmarks", "probabilities"] if name == "onet" else ["regression", "probabilities"]
        axes = {"images": {0: "batch", 2: "height", 3: "width"} if name == "pnet" else {0: "batch"}}
        axes |= {output: {0: "batch", 2: "h", 3: "w"} if name == "pnet" else {0: "batch"} for output in outputs}
        path = folder / f"{name}.onnx"
        with torch.no_grad():
            torch.onnx.export(model, (torch.zeros(2, 3, side, side),), str(path), input_names=["images"], output_names=outputs,
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        paths.append(path)
    return paths


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
