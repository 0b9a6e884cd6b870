"""The training flow end to end with a tiny random timm network on generated images."""

import json
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard

from conftest import REPO, prepared, random_image
from genderage.labels import AGE_GROUPS, JOINT_LABELS
from genderage.training.config import parse_config
from genderage.training.trainer import run_training

TINY = str(REPO / "configs" / "tiny.yaml")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("data")
    root = tmp_path / "utk"
    root.mkdir()
    for i in range(60):
        age, gender = [1, 5, 15, 25, 35, 45, 55, 65, 80, 22][i % 10], i % 2
        random_image(i, tint=gender).save(root / f"{age}_{gender}_{i % 5}_20170101000000{i:03d}.jpg.chip.jpg")
    return prepared(tmp_path, f"utkface={root}")


def train(data_dir: Path, output_dir: Path, *overrides: str) -> dict:
    args = parse_config(["--config", TINY, "--data_dir", str(data_dir), "--output_dir", str(output_dir), *overrides])
    return run_training(*args)


@pytest.fixture(scope="module")
def joint_run(data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("joint")
    train(data_dir, out)
    return out


def test_output_is_a_standard_model_folder(joint_run):
    names = {p.name for p in joint_run.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "metrics.json",
            "training_curves.png", "confusion_matrix.png", "accuracy_by_age_group.png"} <= names
    config = json.loads((joint_run / "config.json").read_text())
    labels = config.get("id2label") or dict(enumerate(config["label_names"]))
    assert list(labels.values()) == JOINT_LABELS


def test_metrics_json_is_flat_numbers_per_split(joint_run):
    metrics = json.loads((joint_run / "metrics.json").read_text())
    assert set(metrics) == {"validation", "test"}
    for split in metrics.values():
        assert {"gender_accuracy", "age_group_accuracy", "age_group_one_off_accuracy", "age_mae", "joint_accuracy"} <= set(split)
        assert all(isinstance(v, (int, float)) for v in split.values())
        assert "gender_accuracy/race=White" in split


def test_model_card_yaml_parses_back(joint_run):
    card = ModelCard.load(joint_run / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "image-classification"
    assert "base_model" not in data and data["license"] == "other"  # random init: nothing to name
    results = data["model-index"][0]["results"][0]
    assert {m["type"] for m in results["metrics"]} >= {"gender_accuracy", "age_group_accuracy"}
    assert "research" in card.text and "not identity" in card.text.replace("not anyone's identity", "not identity")


def test_pipeline_agrees_with_project_inference(joint_run):
    from transformers import pipeline

    from genderage.serving.inference import GenderAgeClassifier

    images = [random_image(500 + i, size=64 + 10 * i) for i in range(3)]
    classifier = pipeline("image-classification", model=str(joint_run))
    ours = GenderAgeClassifier.from_pretrained(str(joint_run)).predict(images)
    for image, prediction in zip(images, ours):
        theirs = {r["label"]: r["score"] for r in classifier(image, top_k=len(JOINT_LABELS))}
        assert set(theirs) == set(JOINT_LABELS)
        assert np.allclose([theirs[k] for k in JOINT_LABELS], [prediction.labels[k] for k in JOINT_LABELS], atol=1e-5)
        assert sum(prediction.gender.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.gender["female"] == pytest.approx(sum(theirs[f"female, {a}"] for a in AGE_GROUPS), abs=1e-5)


@pytest.mark.parametrize("task,key,absent", [("gender", "gender_accuracy", "age_group_accuracy"), ("age", "age_group_accuracy", "gender_accuracy")])
def test_single_tasks(data_dir, tmp_path, task, key, absent):
    metrics = train(data_dir, tmp_path, "--task", task)
    assert key in metrics["test"] and absent not in metrics["test"]
    labels = json.loads((tmp_path / "config.json").read_text())
    names = list((labels.get("id2label") or dict(enumerate(labels["label_names"]))).values())
    assert names == (["female", "male"] if task == "gender" else AGE_GROUPS)


def test_two_stage_class_weights_and_backbone_lr_run(data_dir, tmp_path):
    metrics = train(data_dir, tmp_path, "--num_train_epochs", "2", "--freeze_backbone_epochs", "1",
                    "--class_weights", "true", "--backbone_lr_scale", "0.1", "--label_smoothing_factor", "0.1")
    assert 0 <= metrics["test"]["gender_accuracy"] <= 1


def test_resume_continues_from_the_last_checkpoint(data_dir, tmp_path):
    train(data_dir, tmp_path, "--num_train_epochs", "1", "--save_total_limit", "3", "--load_best_model_at_end", "false")
    steps_one_epoch = int(next(tmp_path.glob("checkpoint-*")).name.split("-")[1])
    train(data_dir, tmp_path, "--num_train_epochs", "2", "--resume", "true", "--save_total_limit", "3", "--load_best_model_at_end", "false")
    checkpoints = sorted(int(p.name.split("-")[1]) for p in tmp_path.glob("checkpoint-*"))
    assert checkpoints == [steps_one_epoch, 2 * steps_one_epoch]
    state = json.loads((tmp_path / f"checkpoint-{2 * steps_one_epoch}" / "trainer_state.json").read_text())
    first_epoch_losses = [e for e in state["log_history"] if e.get("epoch", 0) <= 1 and "loss" in e]
    assert first_epoch_losses, "the resumed run kept the first run's history"


def test_learning_happens_on_a_learnable_signal(data_dir, tmp_path):
    # Genders differ by a tinted colour channel: even the tiny network must beat chance clearly.
    metrics = train(data_dir, tmp_path, "--task", "gender", "--num_train_epochs", "8", "--learning_rate", "0.01", "--rotation", "0")
    assert metrics["validation"]["gender_accuracy"] >= 0.8


def test_card_names_the_sampling_strata():
    from types import SimpleNamespace

    from genderage.training.model_card import sampling_text

    assert "× race" in sampling_text(SimpleNamespace(balance_sampling=0.5, balance_by_race=True))
    assert "race" not in sampling_text(SimpleNamespace(balance_sampling=0.5, balance_by_race=False))
    assert sampling_text(SimpleNamespace(balance_sampling=0, balance_by_race=True)) == "natural frequencies"
