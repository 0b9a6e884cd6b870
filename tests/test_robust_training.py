"""Fine-tuning that keeps what the start knew: LP-FT's linear probe, layer-wise learning-rate decay, the card's words for
them, and leave-one-source-out training."""

from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from transformers import ResNetConfig, ResNetForImageClassification

from genderage.training.linear_probe import L2_GRID, fit_linear_head, head_linear, probe_head
from genderage.training.model_card import robustness_text
from genderage.labels import JOINT_LABELS
from genderage.training.modeling import layer_ranks, learning_rate_scales
from genderage.training.trainer import only_sources, p_female


def clusters(n: int = 300, classes: int = 3, dim: int = 8, spread: float = 0.3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    centres = torch.randn(classes, dim, generator=generator) * 3
    return centres[labels] + spread * torch.randn(n, dim, generator=generator), labels


def test_fit_linear_head_converges_on_separable_features():
    features, labels = clusters()
    weight, bias = fit_linear_head(features, labels, 3, l2=1e-3)
    assert ((features @ weight.T + bias).argmax(-1) == labels).all()
    # At convergence the objective's gradient vanishes.
    weight.requires_grad_(True), bias.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(features @ weight.T + bias, labels) + 0.5e-3 * weight.pow(2).sum()
    loss.backward()
    assert weight.grad.abs().max() < 1e-3 and bias.grad.abs().max() < 1e-3


def test_sample_weights_pull_the_probe_towards_heavy_examples():
    features, labels = clusters(classes=2, spread=4.0)  # overlapping classes
    plain, _ = fit_linear_head(features, labels, 2, l2=1e-3), None
    heavy = torch.where(labels == 1, 10.0, 1.0)
    weighted, _ = fit_linear_head(features, labels, 2, l2=1e-3, sample_weights=heavy), None

    def ones(head):
        return ((features @ head[0].T + head[1]).argmax(-1) == 1).sum()

    assert ones(weighted) > ones(plain)


def tiny_resnet(labels: int = 3) -> ResNetForImageClassification:
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=labels)
    return ResNetForImageClassification(config)


def test_probe_head_writes_the_best_head_into_the_model():
    model = tiny_resnet()
    features, labels = clusters(dim=16)
    figures = probe_head(model, features[:200], labels[:200], features[200:], labels[200:])
    assert figures["probe_l2"] in L2_GRID
    linear = head_linear(model)
    with torch.no_grad():
        accuracy = (linear(features[200:]).argmax(-1) == labels[200:]).float().mean().item()
    assert accuracy == pytest.approx(figures["probe_validation_accuracy"]) and accuracy == 1.0


def test_layer_ranks_count_stages_from_the_input():
    names = [name for name, _ in tiny_resnet().named_parameters() if not name.startswith("classifier")]
    ranks = dict(zip(names, layer_ranks(names)))
    assert {ranks[n] for n in names if "embedder" in n} == {0}
    assert {ranks[n] for n in names if "stages.0." in n} == {1} and {ranks[n] for n in names if "stages.1." in n} == {2}
    timm_names = ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer4.1.bn2.bias", "norm.weight"]
    assert layer_ranks(timm_names) == [0, 0, 1, 2, 2]


def test_learning_rate_scales_decay_towards_the_input():
    model = tiny_resnet()
    scales = {id(p): scale for scale, params in learning_rate_scales(model, 0.5, 0.1) for p in params}
    parameters = dict(model.named_parameters())
    assert scales[id(parameters["classifier.1.weight"])] == 1.0
    assert scales[id(parameters["resnet.encoder.stages.1.layers.0.layer.0.convolution.weight"])] == pytest.approx(0.5)
    assert scales[id(parameters["resnet.encoder.stages.0.layers.0.layer.0.convolution.weight"])] == pytest.approx(0.05)
    assert scales[id(parameters["resnet.embedder.embedder.convolution.weight"])] == pytest.approx(0.005)
    assert len(scales) == len(parameters)


def test_card_names_the_robust_fine_tuning_options():
    plain = SimpleNamespace(linear_probe=False, layer_decay=1.0, consistency_weight=0.0, l2sp_weight=0.0)
    assert robustness_text(plain) == "none"
    text = robustness_text(SimpleNamespace(linear_probe=True, layer_decay=0.7, consistency_weight=0.0, l2sp_weight=0.01))
    assert "LP-FT" in text and "decay 0.7" in text and "L2-SP" in text and "consistency" not in text


def test_train_sources_keep_only_the_named_sources():
    split = Dataset.from_dict({"source": ["utkface", "aaf", "utkface", "mw"], "gender": [0, 1, 1, 0]})
    assert only_sources(split, "utkface")["gender"] == [0, 1]
    assert sorted(only_sources(split, "aaf, mw")["source"]) == ["aaf", "mw"]
    with pytest.raises(ValueError, match="no source named"):
        only_sources(split, "fairface")


def test_p_female_sums_the_female_joint_labels():
    logits = torch.full((2, len(JOINT_LABELS)), -20.0)
    logits[0, JOINT_LABELS.index("female, 20-29")] = 5.0
    logits[1, JOINT_LABELS.index("male, 3-9")] = 5.0
    assert p_female(logits.numpy(), JOINT_LABELS) == pytest.approx([1.0, 0.0], abs=1e-6)
