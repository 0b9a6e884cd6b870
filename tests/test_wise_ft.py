"""WiSE-FT: two tiny models of one architecture mixed into a normal model folder."""

import json

import pytest
import torch
from safetensors.torch import load_file

from genderage.labels import GENDERS, JOINT_LABELS


def tiny(folder, seed: int, labels=JOINT_LABELS):
    from genderage.training.modeling import build_timm_model, save_model

    torch.manual_seed(seed)
    save_model(*build_timm_model("test_efficientnet", labels, 32), folder)
    return folder


def test_alpha_mixes_the_weights_and_the_folder_serves(tmp_path):
    from genderage.serving.inference import GenderAgeClassifier
    from genderage.training.wise_ft import wise_ft

    start, finetuned = tiny(tmp_path / "start", 0), tiny(tmp_path / "finetuned", 1)
    a, b = load_file(start / "model.safetensors"), load_file(finetuned / "model.safetensors")
    for alpha in (0.0, 0.3, 1.0):
        out = wise_ft(start, finetuned, alpha, tmp_path / f"mix_{alpha}")
        mixed = load_file(out / "model.safetensors")
        name = next(n for n, t in b.items() if t.is_floating_point() and not torch.equal(a[n], t))
        assert torch.allclose(mixed[name], (1 - alpha) * a[name] + alpha * b[name], atol=1e-6)
        assert all(torch.equal(mixed[n], b[n]) for n, t in b.items() if not t.is_floating_point())
    assert "α = 0.3" in (tmp_path / "mix_0.3" / "README.md").read_text()
    classifier = GenderAgeClassifier.from_pretrained(str(tmp_path / "mix_0.3"))
    assert classifier.backend == "onnxruntime" and len(classifier.label_names) == len(JOINT_LABELS)


def test_models_that_cannot_be_mixed_are_refused(tmp_path):
    from genderage.training.wise_ft import wise_ft

    start, other_labels = tiny(tmp_path / "start", 0), tiny(tmp_path / "gender", 1, GENDERS)
    with pytest.raises(ValueError, match="different labels"):
        wise_ft(start, other_labels, 0.5, tmp_path / "out")
    with pytest.raises(ValueError, match="alpha"):
        wise_ft(start, start, 1.5, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        wise_ft(start, tmp_path, 0.5, tmp_path / "out")


def test_cli_sweeps_alphas_into_subfolders(tmp_path, capsys):
    import wise_ft

    start, finetuned = tiny(tmp_path / "start", 0), tiny(tmp_path / "finetuned", 1)
    assert wise_ft.main([str(start), str(finetuned), "--alpha", "0.25", "0.75", "--output", str(tmp_path / "sweep")]) == 0
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["alpha_0.25", "alpha_0.75"]
    assert json.loads((tmp_path / "sweep" / "alpha_0.75" / "config.json").read_text())["label_names"] == JOINT_LABELS
