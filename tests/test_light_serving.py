"""Serving without torch (requirements-serve.txt): the serving path runs in a subprocess where importing torch, or
anything that only the full install has, fails; it answers as the full install does, and a model it cannot run is
a clear message. CI also resolves requirements-serve.txt and checks that torch is not in it."""

import csv
import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO
from genderage.serving.demo import EXAMPLES

# Only the full install has these: a light process that imports one of them fails (sys.modules[name] = None).
FULL_INSTALL_ONLY = ["torch", "torchvision", "transformers", "timm", "facenet_pytorch", "datasets", "accelerate", "evaluate",
                     "skimage", "matplotlib", "cv2"]
BLOCK = f"import sys; sys.modules.update(dict.fromkeys({FULL_INSTALL_ONLY!r}))\n"


def run_light(code: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HOME": str(cwd)})


def run_script_light(script: str, *args: str) -> subprocess.CompletedProcess:
    return run_light(f"import runpy; sys.argv = {[script, *args]!r}; runpy.run_path({script!r}, run_name='__main__')")


def test_the_block_works():
    result = run_light("import torch")
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut.png", "grace_hopper.jpg", "coffee.png"):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return folder


def read_rows(path) -> dict[str, dict]:
    with open(path, newline="") as handle:
        return {row["file"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}


def test_predict_runs_without_torch_and_answers_as_the_full_install(photos, tmp_path):
    from genderage.serving.predict import predict_photos

    light = run_script_light("predict.py", str(photos), "--output", str(tmp_path / "light.csv"), "--workers", "1")
    assert light.returncode == 0, light.stderr[-3000:]
    predict_photos([str(photos)], tmp_path / "full.csv", str(REPO / "models" / "default"), progress=False)
    light_rows, full_rows = read_rows(tmp_path / "light.csv"), read_rows(tmp_path / "full.csv")
    assert light_rows.keys() == full_rows.keys() == {"astronaut.png", "grace_hopper.jpg", "coffee.png", "corrupt.jpg"}
    assert light_rows["coffee.png"]["reason"] and light_rows["corrupt.jpg"]["reason"].startswith("not a usable photo")
    for name in ("astronaut.png", "grace_hopper.jpg"):
        assert float(light_rows[name]["p_female"]) > 0.5  # the two example women
        for column in [c for c in light_rows[name] if c.startswith("p_") or c in ("x0", "y0", "x1", "y1")]:
            assert abs(float(light_rows[name][column]) - float(full_rows[name][column])) <= 0.02, (name, column)


def test_both_detectors_and_the_app_work_without_torch(photos):
    """MTCNN (ONNX Runtime) finds the astronaut alone, the analyser answers, the app's Blocks build with its examples."""
    code = f"""
from PIL import Image
from genderage.serving.analysis import FaceAnalyzer
from genderage.serving.faces import FaceDetector
from genderage.serving.inference import GenderAgeClassifier
import app
photo = Image.open({str(photos / "astronaut.png")!r})
assert len(FaceDetector(first="mtcnn").detect(photo)) == 1
classifier = GenderAgeClassifier.from_pretrained()
assert classifier.backend == "onnxruntime" and classifier.processor is None
faces, answer = FaceAnalyzer(classifier, FaceDetector()).analyse(photo)
assert len(faces) == 1 and answer["faces"][0]["gender"]["female"] > 0.5, answer
demo = app.create_app(app.parse_args([]))
print(type(demo).__name__, sorted(name for name, module in sys.modules.items() if module is not None and name.split(".")[0] in {FULL_INSTALL_ONLY!r}))
"""
    result = run_light(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "Blocks []"


@pytest.mark.parametrize("script,args", [("predict.py", ["PHOTOS", "--output", "OUT"]), ("app.py", [])])
def test_a_model_without_onnx_is_a_clear_message_without_torch(photos, tmp_path, script, args):
    model = tmp_path / "model"
    shutil.copytree(REPO / "models" / "default", model, ignore=shutil.ignore_patterns("model.onnx", "*.png"))
    args = [str(photos) if a == "PHOTOS" else str(tmp_path / "out.csv") if a == "OUT" else a for a in args]
    result = run_script_light(script, *args, "--model", str(model))
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2
    assert "export_onnx.py" in result.stderr and "requirements.txt" in result.stderr


def pins(path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.lower().split("==") for line in lines if line)


def test_serving_requirements_are_the_projects_pins_without_torch():
    project = pins(REPO / "requirements.txt") | pins(REPO / "requirements-nodeps.txt")
    for name in ("requirements-serve.txt", "requirements-serve-nodeps.txt", "space/requirements.txt"):
        serve = pins(REPO / name)
        assert {n: v for n, v in serve.items() if project.get(n) != v} == {}, f"{name} pins what the project pins"
        assert not set(serve) & {"torch", "torchvision", "transformers", "timm", "facenet-pytorch"}


@pytest.mark.slow
def test_serving_requirements_resolve_without_torch(tmp_path):
    """What pip would install from requirements-serve.txt into an empty environment (resolved, nothing installed)."""
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report",
                             str(report), "-r", str(REPO / "requirements-serve.txt")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert {"onnxruntime", "gradio", "numpy", "pillow"} <= names
    heavy = {name for name in names if name in {"torch", "torchvision", "transformers", "timm", "triton"} or name.startswith("nvidia-")}
    assert heavy == set()
