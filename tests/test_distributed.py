"""Two training processes on the CPU (gloo): the same script that accelerate launches on GPUs."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, prepared, random_image


@pytest.mark.slow
def test_two_process_ddp_training(tmp_path):
    root = tmp_path / "utk"
    root.mkdir()
    for i in range(64):
        random_image(i, tint=i % 2).save(root / f"{20 + i}_{i % 2}_0_20170101000000{i:03d}.jpg.chip.jpg")
    data = prepared(tmp_path, f"utkface={root}", extra=["--split-ratios", "75/12.5/12.5"])
    train_size = sum(1 for _ in (data / "train" / "metadata.jsonl").open())
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", str(REPO / "train.py"),
        "--config", str(REPO / "configs" / "tiny.yaml"), "--data_dir", str(data), "--output_dir", str(out),
    ]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # Each process sees half of every batch of 8, so one epoch takes ceil(train / 16) steps, not ceil(train / 8).
    steps = int(next(out.glob("checkpoint-*")).name.split("-")[1])
    assert steps == -(-train_size // 16)
    assert set(json.loads((out / "metrics.json").read_text())) == {"validation", "test"}
