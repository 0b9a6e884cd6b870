"""A newcomer's mistakes: each gets one line naming what is wrong, a non-zero exit, no traceback, no output file, and
no minutes spent waiting for a Hub that cannot be reached."""

import socket
import subprocess
import sys

import pytest

from conftest import REPO, prepared

# Generous: these answer in about a second here; minutes mean the Hub was retried.
QUICK_S = 30


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=QUICK_S)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture
def photo(tmp_path):
    from skimage import data
    from PIL import Image

    path = tmp_path / "face.jpg"
    Image.fromarray(data.astronaut()).resize((128, 128)).save(path)
    return path


@pytest.mark.parametrize("inputs, words", [
    (["nope.jpg"], "no such file or folder: nope.jpg"),
    (["missing_folder/"], "no such file or folder: missing_folder/"),
    (["EMPTY"], "no photos in folder"),
    (["EMPTY/*.jpg"], "no files match"),
])
def test_predict_names_inputs_with_no_photos(tmp_path, inputs, words):
    (tmp_path / "empty").mkdir()
    output = tmp_path / "out" / "faces.jsonl"
    line = one_line_error(run("predict.py", *[i.replace("EMPTY", str(tmp_path / "empty")) for i in inputs], "--output", str(output)))
    assert words in line
    assert not output.exists() and not output.parent.exists()


def test_a_file_that_is_not_a_photo_keeps_its_row_with_a_command_line_reason(tmp_path, photo):
    import json

    (tmp_path / "notes.jpg").write_text("not a photo")
    output = tmp_path / "faces.jsonl"
    result = run("predict.py", str(tmp_path / "notes.jpg"), "--output", str(output), "--workers", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    [row] = [json.loads(line) for line in output.read_text().splitlines()]
    assert row["reason"].startswith("not a usable photo") and "upload" not in row["reason"]


@pytest.mark.parametrize("script", ["predict.py", "app.py", "benchmarks/accuracy.py"])
def test_a_mistyped_model_folder_is_answered_at_once(script, photo, tmp_path):
    args = {"predict.py": [str(photo), "--output", str(tmp_path / "a.jsonl")], "app.py": ["--port", "7951"],
            "benchmarks/accuracy.py": ["--source", f"folders={tmp_path}"]}[script]
    line = one_line_error(run(script, *args, "--model", "models/defualt"))
    assert "no model folder at models/defualt; did you mean models/default?" in line


def test_a_hub_id_that_cannot_be_had_fails_in_one_line(photo, tmp_path):
    line = one_line_error(run("predict.py", str(photo), "--output", str(tmp_path / "a.jsonl"), "--model", "nobody/no-such-genderage-model"))
    assert "nobody/no-such-genderage-model" in line and not (tmp_path / "a.jsonl").exists()


def test_a_folder_without_onnx_is_told_to_export_only_when_it_exists(tmp_path):
    from genderage.serving.inference import check_model

    with pytest.raises(OSError, match="not a model folder"):
        check_model(str(tmp_path))  # a folder without config.json
    with pytest.raises(OSError, match="no model folder at"):
        check_model(str(tmp_path / "missing"))


def test_accuracy_checks_its_json_path_before_the_work(tmp_path):
    (tmp_path / "a_file").write_text("")
    line = one_line_error(run("benchmarks/accuracy.py", "--source", f"folders={tmp_path}", "--json", str(tmp_path / "a_file" / "acc.json")))
    assert "--json" in line


def test_ensure_output_file_creates_missing_folders(tmp_path):
    from genderage.cli import ensure_output_file

    assert ensure_output_file(tmp_path / "new" / "deeper" / "acc.json").parent.is_dir()
    with pytest.raises(OSError, match="is a folder"):
        ensure_output_file(tmp_path)


def test_a_split_that_is_not_there_lists_the_splits(utkface_dir, tmp_path):
    data_dir = prepared(tmp_path, f"utkface={utkface_dir}")
    line = one_line_error(run("benchmarks/accuracy.py", "--data-dir", str(data_dir), "--split", "tset"))
    assert "no split 'tset'" in line and all(split in line for split in ("train", "validation", "test"))


def test_app_on_a_busy_port_names_the_option():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line_error(run("app.py", "--port", str(port)))
    assert f"port {port}" in line and "--port" in line and "PORT=" in line
