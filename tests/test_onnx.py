"""ONNX export and ONNX Runtime inference: the same probabilities as PyTorch, and never a stale export."""

import numpy as np
import pytest
import torch

from conftest import random_image
from genderage.labels import JOINT_LABELS
from genderage.serving.inference import ONNX_FILE, GenderAgeClassifier
from genderage.training.modeling import build_timm_model, save_model
from genderage.training.onnx_export import export_onnx

pytest.importorskip("onnxruntime")


@pytest.fixture
def timm_folder(tmp_path):
    """A tiny random timm network with the 18 joint labels, saved and exported like a trained model."""
    torch.manual_seed(0)
    model, processor = build_timm_model("test_efficientnet", JOINT_LABELS, 32)
    save_model(model, processor, tmp_path)
    export_onnx(tmp_path)
    return tmp_path


def test_onnx_runtime_matches_pytorch(timm_folder):
    images = [random_image(i, size=40 + 7 * i) for i in range(5)]  # mixed sizes: the processor resizes them
    onnx, torch_ = GenderAgeClassifier.from_pretrained(str(timm_folder)), GenderAgeClassifier.from_pretrained(str(timm_folder), backend="torch")
    assert (onnx.backend, torch_.backend) == ("onnxruntime", "torch")
    for batch_size in (1, 2, 64):  # dynamic batch axis, including a ragged last batch
        assert np.abs(onnx.probabilities(images, batch_size=batch_size) - torch_.probabilities(images)).max() < 1e-4
    assert np.abs(onnx.probabilities(images, flip=True) - torch_.probabilities(images, flip=True)).max() < 1e-4
    ours, theirs = onnx.predict(images[:1])[0], torch_.predict(images[:1])[0]
    assert ours.labels.keys() == theirs.labels.keys() and abs(ours.age - theirs.age) < 1e-3


def test_bf16_or_explicit_torch_use_pytorch(timm_folder):
    assert GenderAgeClassifier.from_pretrained(str(timm_folder), bf16=True).backend == "torch"
    assert GenderAgeClassifier.from_pretrained(str(timm_folder), backend="torch").model is not None


def test_folder_without_onnx_uses_pytorch(timm_folder):
    (timm_folder / ONNX_FILE).unlink()
    assert GenderAgeClassifier.from_pretrained(str(timm_folder)).backend == "torch"
    with pytest.raises(OSError, match="export_onnx.py"):
        GenderAgeClassifier.from_pretrained(str(timm_folder), backend="onnx")


def test_export_from_older_weights_is_not_used(timm_folder):
    """New weights saved over the folder without re-exporting: PyTorch answers, with a warning saying what to run."""
    model, processor = build_timm_model("test_efficientnet", JOINT_LABELS, 32)  # different random weights
    save_model(model, processor, timm_folder)
    with pytest.warns(UserWarning, match="export_onnx.py"):
        classifier = GenderAgeClassifier.from_pretrained(str(timm_folder))
    assert classifier.backend == "torch"
    export_onnx(timm_folder)  # re-exporting is one call
    assert GenderAgeClassifier.from_pretrained(str(timm_folder)).backend == "onnxruntime"


def test_transformers_folder_exports_too(tmp_path):
    """Not only timm: a transformers ResNet folder with its own processor and input size."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                          id2label=dict(enumerate(JOINT_LABELS)), label2id={k: i for i, k in enumerate(JOINT_LABELS)})
    ResNetForImageClassification(config).save_pretrained(tmp_path)
    ConvNextImageProcessor(size={"shortest_edge": 40}, crop_pct=0.875).save_pretrained(tmp_path)
    export_onnx(tmp_path)
    images = [random_image(i, size=50) for i in range(3)]
    onnx, torch_ = GenderAgeClassifier.from_pretrained(str(tmp_path)), GenderAgeClassifier.from_pretrained(str(tmp_path), backend="torch")
    assert onnx.backend == "onnxruntime"
    assert np.abs(onnx.probabilities(images) - torch_.probabilities(images)).max() < 1e-4


def test_onnx_runtime_uses_torch_thread_count(timm_folder):
    """A benchmark's `torch.set_num_threads(1)` must bind ONNX Runtime too."""
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        session = GenderAgeClassifier.from_pretrained(str(timm_folder)).session
        assert session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def resnet_folder(tmp_path):
    """A small random transformers ResNet (basic blocks, like the face-pretrained one), saved and exported."""
    from transformers import ResNetConfig, ResNetForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic",
                          id2label=dict(enumerate(JOINT_LABELS)), label2id={k: i for i, k in enumerate(JOINT_LABELS)})
    model = ResNetForImageClassification(config)
    with torch.no_grad():  # logits that differ between images, so quantisation error is measurable against them
        model.classifier[1].weight.mul_(20)
    model.save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 48, "width": 48}).save_pretrained(tmp_path)
    export_onnx(tmp_path)
    return tmp_path


def test_int8_export_keeps_stem_and_head_fp32_and_follows_fp32(resnet_folder):
    import onnx

    from genderage.training.onnx_export import QUANTIZATION_KEY, quantize_onnx

    images = [random_image(i, size=60) for i in range(12)]
    fp32 = GenderAgeClassifier.from_pretrained(str(resnet_folder)).session
    pixels = np.concatenate([fp32_input(resnet_folder, image) for image in images])
    reference = fp32.run(None, {"pixel_values": pixels})[0]
    quantize_onnx(resnet_folder, images[:8])

    graph = onnx.load(str(resnet_folder / ONNX_FILE))
    assert QUANTIZATION_KEY in {p.key for p in graph.metadata_props}
    producers = {output: node.op_type for node in graph.graph.node for output in node.output}
    convolutions = [node for node in graph.graph.node if node.op_type == "Conv"]
    head = next(node for node in graph.graph.node if node.op_type in ("Gemm", "MatMul"))
    assert producers.get(convolutions[0].input[1]) != "DequantizeLinear"  # the stem's weights stay fp32
    assert producers.get(head.input[1]) != "DequantizeLinear"
    assert all(producers.get(conv.input[1]) == "DequantizeLinear" for conv in convolutions[1:])  # the rest is int8

    classifier = GenderAgeClassifier.from_pretrained(str(resnet_folder))
    assert classifier.backend == "onnxruntime"  # the fingerprint survived: not taken for a stale export
    quantized = classifier.session.run(None, {"pixel_values": pixels})[0]
    spread = np.abs(reference - reference.mean(0)).mean()
    assert np.abs(quantized - reference).mean() < 0.2 * spread
    with pytest.raises(ValueError, match="already int8"):
        quantize_onnx(resnet_folder, images)


def fp32_input(folder, image) -> np.ndarray:
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(folder)(image, return_tensors="np")["pixel_values"].astype(np.float32)


def test_int8_cli_needs_a_prepared_dataset(resnet_folder, tmp_path, capsys):
    import export_onnx as cli

    assert cli.main([str(resnet_folder), "--int8", str(tmp_path / "missing")]) == 2
    assert "not a prepared dataset" in capsys.readouterr().err


def test_int8_cli_calibrates_on_the_train_split(resnet_folder, tmp_path, utkface_dir):
    import onnx

    import export_onnx as cli
    from conftest import prepared
    from genderage.training.onnx_export import QUANTIZATION_KEY

    data = prepared(tmp_path, f"utkface={utkface_dir}")
    assert cli.main([str(resnet_folder), "--int8", str(data), "--calibration_images", "5"]) == 0
    properties = {p.key: p.value for p in onnx.load(str(resnet_folder / ONNX_FILE)).metadata_props}
    assert "5 calibration images" in properties[QUANTIZATION_KEY]
