"""Publishing, with HfApi replaced at the network boundary."""

import pytest

from genderage.training import hub


class FakeHfApi:
    """Records what would cross the network."""

    def __init__(self, *args, **kwargs):
        self.calls = []
        FakeHfApi.last = self

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["repo_id"], kwargs))


def test_training_pushes_the_model_folder_without_checkpoints(tmp_path, monkeypatch, capsys):
    from test_training import train

    from conftest import prepared, random_image

    root = tmp_path / "utk"
    root.mkdir()
    for i in range(30):
        random_image(i).save(root / f"{20 + i}_{i % 2}_0_20170101000000{i:03d}.jpg.chip.jpg")
    data = prepared(tmp_path, f"utkface={root}")
    monkeypatch.setattr(hub, "HfApi", FakeHfApi)
    monkeypatch.setenv("HF_TOKEN", "hf_supersecret_token_123")
    out = tmp_path / "model"
    train(data, out, "--push_to_hub", "true", "--hub_model_id", "me/genderage-tiny")
    create, upload = FakeHfApi.last.calls
    assert create[:2] == ("create_repo", "me/genderage-tiny") and create[2]["repo_type"] == "model"
    assert upload[2]["folder_path"] == str(out) and "checkpoint-*" in upload[2]["ignore_patterns"]
    sent = hub.files_to_upload(out)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "metrics.json"} <= set(sent)
    assert not any(name.startswith("checkpoint-") for name in sent)
    captured = capsys.readouterr()
    assert "hf_supersecret_token_123" not in captured.out + captured.err
    for path in out.rglob("*"):
        if path.is_file():
            assert b"hf_supersecret_token_123" not in path.read_bytes(), path


def test_dry_run_sends_nothing(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "checkpoint-5").mkdir()
    (tmp_path / "checkpoint-5" / "optimizer.pt").write_text("x")
    monkeypatch.setattr(hub, "HfApi", None)  # any network use would fail
    message = hub.upload_folder(tmp_path, "me/x", "model", dry_run=True)
    assert "would upload 1 files" in message and "config.json" in message and "optimizer" not in message


def test_push_needs_a_repo_id(tmp_path):
    with pytest.raises(ValueError, match="repo id"):
        hub.upload_folder(tmp_path, None, "model", dry_run=True)
