"""The training flow end to end with a tiny random timm network on generated images."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from conftest import REPO, prepared, random_image
from genderage.labels import AGE_GROUPS, JOINT_LABELS
from genderage.serving.inference import GenderAgeClassifier
from genderage.training.config import parse_config
from genderage.training.linear_probe import L2_GRID
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
    assert config["training_sources"] == ["utkface"]  # cross_dataset.py tells in-domain sets by it
    assert "face_chip" not in config  # faces cut around the detector's box, serving's default


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


def test_a_model_trained_on_recut_chips_tells_serving_to_cut_alike(data_dir, tmp_path):
    recut = tmp_path / "data"
    shutil.copytree(data_dir, recut)
    report = json.loads((recut / "report.json").read_text())
    (recut / "report.json").write_text(json.dumps(report | {"face_chip": "dlib"}))  # as benchmarks/recut_chips.py writes
    train(recut, tmp_path / "model", "--task", "gender")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["face_chip"] == "dlib"
    assert GenderAgeClassifier.from_pretrained(str(tmp_path / "model")).face_chip == "dlib"
    assert 'FaceDetector(chip="dlib")' in (tmp_path / "model" / "README.md").read_text()


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

    assert "× race" in sampling_text(SimpleNamespace(balance_sampling=0.5, balance_by_race=True, sampling_boost=None))
    assert "race" not in sampling_text(SimpleNamespace(balance_sampling=0.5, balance_by_race=False, sampling_boost=None))
    assert sampling_text(SimpleNamespace(balance_sampling=0, balance_by_race=True, sampling_boost=None)) == "natural frequencies"
    boosted = sampling_text(SimpleNamespace(balance_sampling=0.5, balance_by_race=True, sampling_boost="age_group=0-2:2"))
    assert boosted.endswith("then age_group=0-2:2 (group: factor)")


def test_random_framing_zooms_out_with_black_and_shifts():
    import torch

    from genderage.training.transforms import RandomFraming

    white = torch.full((3, 40, 40), 255, dtype=torch.uint8)
    wide = RandomFraming(1.0, scale=(1.4, 1.4), shift=0.0)(white)
    assert wide.shape == white.shape
    assert wide[:, 0, :].max() == 0 and wide[:, :, -1].max() == 0 and wide[:, 20, 20].min() == 255  # padded black around
    assert RandomFraming(1.0, scale=(0.9, 0.9), shift=0.0)(white).min() == 255  # zoomed in: photo only
    torch.manual_seed(0)
    shifted = [RandomFraming(1.0, scale=(1.0, 1.0), shift=0.2)(white) for _ in range(8)]
    assert any(image.min() == 0 for image in shifted)  # off-centre frames reach past an edge
    assert torch.equal(RandomFraming(0.0)(white), white)


def test_symmetric_kl_is_zero_for_equal_answers_and_symmetric():
    import torch

    from genderage.training.trainer import symmetric_kl

    a, b = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.5]])
    assert symmetric_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert symmetric_kl(a, b).item() > 0.1 and symmetric_kl(a, b).item() == pytest.approx(symmetric_kl(b, a).item())


def test_mirror_pairs_come_with_each_training_image():
    from PIL import ImageOps

    from genderage.training.trainer import collate, make_batch_transform

    image = random_image(3, size=32)
    batch = make_batch_transform(lambda im: __import__("torch").tensor(np.asarray(im)), "gender", True, mirror_pairs=True)(
        {"image": [image], "gender": [1], "age_group": [3]})
    assert np.array_equal(batch["pair_pixel_values"][0].numpy(), np.asarray(ImageOps.mirror(image)))
    assert collate([{k: v[0] for k, v in batch.items()}])["pair_pixel_values"].shape == (1, 32, 32, 3)


def test_consistency_and_l2sp_terms_are_in_the_loss(data_dir, tmp_path):
    """The loss with both terms is the cross-entropy plus w × symmetric KL of the two views plus l2sp/2 × the squared
    distance of the backbone from its starting weights (0 until the weights move)."""
    import torch

    from genderage.training.trainer import build_trainer, symmetric_kl

    args = parse_config(["--config", TINY, "--data_dir", str(data_dir), "--output_dir", str(tmp_path), "--consistency_weight", "2",
                         "--l2sp_weight", "0.5", "--framing", "1"])
    trainer = build_trainer(*args)[0]
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["pair_pixel_values"].shape == batch["pixel_values"].shape
    model = trainer.model.train()
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch))
        both = model(pixel_values=torch.cat([batch["pixel_values"], batch["pair_pixel_values"]])).logits
        cross_entropy = torch.nn.functional.cross_entropy(both, batch["labels"].repeat(2))
        assert loss.item() == pytest.approx((cross_entropy + 2 * symmetric_kl(*both.chunk(2))).item(), rel=1e-4)
        name, anchor = next(iter(trainer.l2sp_anchor.items()))
        dict(model.named_parameters())[name].add_(0.1)  # move one backbone tensor by 0.1 everywhere
        moved = trainer.compute_loss(model, dict(batch))
    # The moved tensor also changes the logits; the penalty alone is 0.5 × 0.5 × 0.01 × its size.
    with torch.no_grad():
        both = model(pixel_values=torch.cat([batch["pixel_values"], batch["pair_pixel_values"]])).logits
        expected = torch.nn.functional.cross_entropy(both, batch["labels"].repeat(2)) + 2 * symmetric_kl(*both.chunk(2))
    assert moved.item() == pytest.approx(expected.item() + 0.25 * 0.01 * anchor.numel(), rel=1e-4)


def test_validation_is_reported_per_source_each_epoch(joint_run):
    state = json.loads(next(joint_run.glob("checkpoint-*/trainer_state.json")).read_text())
    evaluations = [entry for entry in state["log_history"] if "eval_gender_accuracy" in entry]
    assert evaluations and "eval_gender_accuracy/source=utkface" in evaluations[-1]
    mirror = [entry for entry in state["log_history"] if "eval_mirror_p_female_delta_p95" in entry]
    assert len(mirror) == len(evaluations) and 0 <= mirror[-1]["eval_mirror_p_female_delta_mean"] <= mirror[-1]["eval_mirror_p_female_delta_p95"] <= 1


def test_linear_probe_run_saves_the_probe_and_fine_tunes_from_it(data_dir, tmp_path):
    # Learning rate 0: the fine-tune leaves the head where the probe put it.
    train(data_dir, tmp_path, "--linear_probe", "true", "--learning_rate", "0", "--layer_decay", "0.5")
    probe_dir = tmp_path / "linear_probe"
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "model.onnx", "probe.json"} <= {p.name for p in probe_dir.iterdir()}
    figures = json.loads((probe_dir / "probe.json").read_text())
    assert figures["probe_l2"] in L2_GRID and 0 <= figures["probe_validation_accuracy"] <= 1
    probe, final = load_file(probe_dir / "model.safetensors"), load_file(tmp_path / "model.safetensors")
    head = [name for name in probe if "classifier" in name]
    assert head and all(torch.equal(probe[name], final[name]) for name in head)
    # A new timm head starts with zero bias; the probe's bias holds the class priors.
    assert probe["timm_model.classifier.bias"].abs().sum() > 0
