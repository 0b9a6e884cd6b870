"""The Space folder: built offline, YAML parsed back, app importable from the folder alone, upload mocked."""

import subprocess
import sys

import yaml

from conftest import REPO
from genderage import hub
from genderage.labels import JOINT_LABELS
from test_hub import FakeHfApi


def tiny_model(folder):
    from genderage.modeling import build_timm_model, save_model

    model, processor = build_timm_model("test_efficientnet", JOINT_LABELS, 32)
    save_model(model, processor, folder)
    return folder


def test_space_folder_is_self_contained(tmp_path):
    from genderage.space import build_space

    space = build_space(tmp_path / "space", tiny_model(tmp_path / "model"), model_id="me/genderage")
    metadata = yaml.safe_load((space / "README.md").read_text().split("---\n")[1])
    gradio_pin = next(line.split("==")[1] for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("gradio=="))
    assert metadata["sdk"] == "gradio" and metadata["sdk_version"] == gradio_pin
    assert metadata["app_file"] == "app.py" and metadata["python_version"] == "3.11"
    assert metadata["models"] == ["me/genderage"] and metadata["license"] == "other"
    assert (space / "models" / "default" / "model.safetensors").is_file()
    assert (space / "facenet_pytorch" / "data" / "onet.pt").is_file()
    # Import the app and build it from the folder alone (no repo on the path), as the Space would.
    code = "import app; demo = app.create_app(app.parse_args([])); print(type(demo).__name__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=space, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("Blocks")


def test_space_upload_is_a_gradio_space_repo(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "space"))
    import build

    monkeypatch.setattr(hub, "HfApi", FakeHfApi)
    assert build.main(["--output", str(tmp_path / "space"), "--model", str(tiny_model(tmp_path / "model")), "--push", "me/demo"]) == 0
    (create, upload) = FakeHfApi.last.calls
    assert create[2]["repo_type"] == "space" and create[2]["space_sdk"] == "gradio"
    assert upload[2]["folder_path"] == str(tmp_path / "space")


def test_space_build_refuses_a_non_model_folder(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "space"))
    import build

    assert build.main(["--output", str(tmp_path / "space"), "--model", str(tmp_path)]) == 2
    assert "is not a model folder" in capsys.readouterr().err
