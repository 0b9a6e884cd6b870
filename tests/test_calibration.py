"""Calibration: ECE by hand, temperature fitting on synthetic over-confident logits, and T folded into a model's head."""

import json

import evaluate
import numpy as np
import pytest
import torch

from conftest import REPO, prepared, random_image
from genderage.labels import JOINT_LABELS
from genderage.training.calibration import (
    calibrate_model_folder,
    classifier_head,
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
)
from genderage.training.modeling import build_timm_model, save_model


def softmax(logits):
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def test_ece_by_hand():
    # Two in bin (0.8667, 0.9333] with mean confidence 0.9, one right (gap 0.4); one in (0.6, 0.6667], right (gap 0.35).
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.35, 0.65]])
    references = np.array([0, 0, 1])
    assert expected_calibration_error(probabilities, references) == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.35)
    assert expected_calibration_error(np.eye(2), np.array([0, 1])) == 0.0  # certain and right


def test_metric_module_reports_the_same_ece():
    rng = np.random.default_rng(0)
    probabilities = softmax(rng.normal(size=(200, 18)) * 3)
    references = rng.integers(0, 18, 200)
    result = evaluate.load(str(REPO / "genderage" / "genderage_metric")).compute(
        predictions=probabilities, references=references, task="gender_age")
    gender = probabilities.reshape(200, 2, 9).sum(2)
    assert result["gender_ece"] == pytest.approx(expected_calibration_error(gender, references // 9))
    assert 0.0 <= result["age_group_ece"] <= 1.0


def test_temperature_fitted_on_over_confident_logits_is_above_one_and_lowers_ece():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(size=(3000, 18)) * 2
    references = np.array([rng.choice(18, p=p) for p in softmax(true_logits)])  # labels drawn from the true probabilities
    over_confident = true_logits * 3  # what an over-fitted network outputs
    temperature = fit_temperature(over_confident, references)
    assert temperature == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(softmax(over_confident), references)
    after = expected_calibration_error(softmax(over_confident / temperature), references)
    assert after < before / 2


@pytest.fixture
def tiny_transformers_model():
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=18)
    return ResNetForImageClassification(config).eval()


@pytest.mark.parametrize("kind", ["timm", "transformers"])
def test_folding_t_gives_softmax_of_logits_over_t(kind, tiny_transformers_model):
    model = build_timm_model("test_efficientnet", JOINT_LABELS, 32)[0].eval() if kind == "timm" else tiny_transformers_model
    torch.nn.init.normal_(classifier_head(model).bias)  # a non-zero bias must be scaled too
    pixels = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = torch.softmax(model(pixel_values=pixels).logits / 2.5, -1)
        fold_temperature(model, 2.5)
        folded = torch.softmax(model(pixel_values=pixels).logits, -1)
    assert torch.allclose(folded, expected, atol=1e-5)
    assert model.config.calibration_temperature == 2.5


def test_calibrated_folder_serves_calibrated_probabilities_through_pipeline(utkface_dir, tmp_path):
    from transformers import pipeline

    data_dir = prepared(tmp_path, f"utkface={utkface_dir}")
    model, processor = build_timm_model("test_efficientnet", JOINT_LABELS, 32)
    save_model(model, processor, tmp_path / "model")
    (tmp_path / "model" / "README.md").write_text("# tiny\n\n## Results\n\nx\n\n## Limitations and bias\n- y\n")
    image = random_image(7)
    with torch.no_grad():
        logits = model.eval()(pixel_values=processor([image], return_tensors="pt")["pixel_values"]).logits[0]

    result = calibrate_model_folder(tmp_path / "model", data_dir, "validation", output_dir=tmp_path / "calibrated")
    temperature = result["temperature"]
    config = json.loads((tmp_path / "calibrated" / "config.json").read_text())
    assert config["calibration_temperature"] == pytest.approx(temperature)
    assert config["calibration"]["images"] == result["images"] > 0
    assert {"gender_ece", "age_group_ece", "nll"} <= set(config["calibration"]["before"])
    assert result["after"]["nll"] <= result["before"]["nll"] + 1e-9  # T minimises the NLL; T = 1 was a candidate
    assert (tmp_path / "calibrated" / "README.md").is_file()  # the rest of the folder came along

    answer = pipeline("image-classification", model=str(tmp_path / "calibrated"))(image, top_k=18)
    got = {a["label"]: a["score"] for a in answer}
    expected = torch.softmax(logits / temperature, -1)
    assert all(got[label] == pytest.approx(float(expected[i]), abs=1e-5) for i, label in enumerate(JOINT_LABELS))


def test_calibrate_cli_in_place_updates_the_card(utkface_dir, tmp_path, capsys):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import calibrate

    data_dir = prepared(tmp_path, f"utkface={utkface_dir}")
    save_model(*build_timm_model("test_efficientnet", JOINT_LABELS, 32), tmp_path / "model")
    (tmp_path / "model" / "README.md").write_text("# tiny\n\n## Limitations and bias\n- y\n")
    assert calibrate.main(["--model", str(tmp_path / "model"), "--data-dir", str(data_dir)]) == 0
    assert "temperature T =" in capsys.readouterr().out
    card = (tmp_path / "model" / "README.md").read_text()
    assert card.count("## Calibration") == 1 and card.index("## Calibration") < card.index("## Limitations")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert "calibration_temperature" in config
    # The figures are the calibrated model's: metrics.json, the card's Results and its model-index agree.
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"} and "gender_ece" in metrics["test"]
    assert f"T = {config['calibration_temperature']:.3f} folded into the head" in card
    assert f"| gender_accuracy | {metrics['validation']['gender_accuracy']:.4f} | {metrics['test']['gender_accuracy']:.4f} |" in card
    from huggingface_hub import ModelCard

    index = {r.metric_type: r.metric_value for r in ModelCard.load(tmp_path / "model" / "README.md").data.eval_results}
    assert index["gender_accuracy"] == round(metrics["test"]["gender_accuracy"], 4)


def test_class_bias_undoes_a_prior_the_sampling_taught():
    """Logits that favour class 0 by +1 over the truth (as boosted sampling would teach): the fitted biases take it back."""
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 18))
    references = np.array([rng.choice(18, p=np.exp(row) / np.exp(row).sum()) for row in true_logits])
    shifted = true_logits.copy()
    shifted[:, 0] += 1.0
    temperature, bias = fit_temperature(shifted, references, class_bias=True)
    assert temperature == pytest.approx(1.0, abs=0.1)
    assert bias[0] - bias[1:].mean() == pytest.approx(-1.0, abs=0.25)
    assert fit_temperature(shifted, references) == pytest.approx(temperature, abs=0.2)  # the plain fit: T alone
