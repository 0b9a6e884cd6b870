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
    with pytest.raises(FileNotFoundError, match="export_onnx.py"):
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
