"""Every script explains itself: no arguments print its usage (or run its documented default job), `--help` prints
its usage and exits 0, and an unknown option is a one-line error with exit 2 — never a traceback."""

import subprocess
import sys

import pytest

from conftest import REPO

# With no arguments, app.py serves the demo until stopped (tests/test_browser.py starts it) and two benchmarks run
# their default job (below, and tests/test_browser.py drives the live mode the way live_webcam.py does).
DEFAULT_JOB_SCRIPTS = ["app.py", "benchmarks/app_latency.py", "benchmarks/live_webcam.py"]
USAGE_SCRIPTS = ["prepare_dataset.py", "train.py", "convert_dlib.py", "predict.py", "audit.py", "export_onnx.py", "wise_ft.py"] + sorted(
    f"benchmarks/{path.name}" for path in (REPO / "benchmarks").glob("*.py") if f"benchmarks/{path.name}" not in DEFAULT_JOB_SCRIPTS
)
ALL_SCRIPTS = USAGE_SCRIPTS + DEFAULT_JOB_SCRIPTS
# Scripts that pass their options on to HfArgumentParser list the training arguments too.
TRAINING_SCRIPTS = ["train.py", "convert_dlib.py", "benchmarks/train_throughput.py"]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_every_script_is_covered():
    scripts = {path.name for path in REPO.glob("*.py")} | {f"benchmarks/{path.name}" for path in (REPO / "benchmarks").glob("*.py")}
    assert scripts == set(ALL_SCRIPTS)


@pytest.mark.parametrize("script", USAGE_SCRIPTS)
def test_script_without_arguments_prints_usage(script):
    result = run(script)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2
    assert "usage" in result.stderr.lower()


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_script_help_prints_usage_and_exits_0(script):
    result = run(script, "--help")
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()
    if script in TRAINING_SCRIPTS:  # the project's own options, the recipe flag and transformers' training arguments
        for option in ("--config", "--data_dir", "--learning_rate", "--output_dir"):
            assert option in result.stdout


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_script_unknown_option_is_a_one_line_error(script):
    result = run(script, "--no-such-option")
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert result.returncode == 2
    assert "error" in result.stderr.strip().splitlines()[-1].lower()


@pytest.mark.slow
def test_app_latency_without_arguments_times_the_examples():
    """Its default job: the three example photos at three sizes through the app's function and the bare model."""
    result = run("benchmarks/app_latency.py")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0
    assert "ms/image" in result.stdout and "ratio:" in result.stdout


@pytest.mark.parametrize("script", ALL_SCRIPTS)
def test_usage_keeps_multi_line_commands_as_typed(script):
    """A backslash at a line's end inside a normal docstring joins the lines: --help would show one long line with
    runs of spaces. The docstring must keep every line-ending backslash of its source."""
    import ast

    source = (REPO / script).read_text()
    node = ast.parse(source).body[0].value
    written = ast.get_source_segment(source, node).count("\\\n")
    assert node.value.count("\\\n") == written, f"{script}: make its docstring raw (r\"\"\"...) or escape the backslashes"


def test_make_demo_uses_the_light_install_and_make_test_the_full_one(tmp_path):
    """make demo builds only the serving venv (no torch) and runs the app with it; make test only the full one."""
    dry = {target: subprocess.run(["make", "-n", target, f"VENV={tmp_path}/full", f"SERVE_VENV={tmp_path}/light"], cwd=REPO,
                                  capture_output=True, text=True, timeout=60).stdout for target in ("demo", "test")}
    assert "-r requirements-serve.txt" in dry["demo"] and f"{tmp_path}/light/bin/python app.py" in dry["demo"]
    assert "-r requirements.txt" not in dry["demo"] and f"{tmp_path}/full" not in dry["demo"]
    assert "-r requirements.txt" in dry["test"] and "requirements-serve" not in dry["test"] and f"{tmp_path}/light" not in dry["test"]
    pins = [line.split("==")[0] for line in (REPO / "requirements-serve.txt").read_text().splitlines() if "==" in line]
    assert pins and not {"torch", "torchvision", "transformers"} & set(pins)
