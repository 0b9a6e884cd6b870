"""Every script run with no arguments explains itself: its usage and a non-zero exit, or its documented default job."""

import subprocess
import sys

import pytest

from conftest import REPO

# app.py with no arguments serves the demo until stopped (tests/test_browser.py starts it).
USAGE_SCRIPTS = ["prepare_dataset.py", "train.py", "convert_dlib.py", "predict.py", "export_onnx.py"] + sorted(
    f"benchmarks/{path.name}" for path in (REPO / "benchmarks").glob("*.py") if path.name != "app_latency.py"
)


def run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script], cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script", USAGE_SCRIPTS)
def test_script_without_arguments_prints_usage(script):
    result = run(script)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2
    assert "usage" in result.stderr.lower()


@pytest.mark.slow
def test_app_latency_without_arguments_times_the_examples():
    """Its default job: the three example photos at three sizes through the app's function and the bare model."""
    result = run("benchmarks/app_latency.py")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0
    assert "ms/image" in result.stdout and "ratio:" in result.stdout
