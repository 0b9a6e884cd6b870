"""audit.py --engine ray: the same rows as the local engine, and an actor killed mid-run loses and repeats nothing;
the local engine after a killed worker: one line, then --resume finishes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image


pytest.importorskip("ray")
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """240 photos with one face each (the astronaut at several sizes), a faceless one and a broken file."""
    from skimage import data

    root = tmp_path_factory.mktemp("collection")
    face = Image.fromarray(data.astronaut())
    for i in range(240):
        face.resize((320 + i % 7 * 16, 320 + i % 7 * 16)).save(root / f"{i:03d}.jpg", quality=90)
    Image.new("RGB", (200, 200), "grey").save(root / "zz_blank.png")
    (root / "zz_broken.jpg").write_bytes(b"\xff\xd8 not really")
    return root


def audit(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "audit.py"), *args, "--rounds", "20", "--chunk", "4"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def actor_pids() -> list[int]:
    """Processes whose title names the audit's Ray actor class."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"PhotoPredictorActor" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_ray_gives_the_local_rows_and_survives_a_killed_actor(collection, tiny_model, tmp_path):
    local = audit(str(collection), "--output", str(tmp_path / "local"), "--model", tiny_model, "--workers", "2")
    assert local.wait(timeout=600) == 0, local.stdout.read()

    run = audit(str(collection), "--output", str(tmp_path / "ray"), "--model", tiny_model, "--workers", "2",
                "--engine", "ray", "--shard-photos", "10")
    shards = tmp_path / "ray" / "shards"
    killed, shards_at_kill = None, None
    deadline = time.time() + 300
    while run.poll() is None and time.time() < deadline and killed is None:
        pids = actor_pids()
        if pids and len(list(shards.glob("part-*.parquet"))) >= 1:
            shards_at_kill = len(list(shards.glob("part-*.parquet")))
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    output = run.communicate(timeout=600)[0]
    assert killed is not None and shards_at_kill < 25, "the run ended before an actor could be killed mid-run"
    assert run.returncode == 0, output

    ray_rows = pd.read_parquet(tmp_path / "ray" / "faces.parquet")
    local_rows = pd.read_parquet(tmp_path / "local" / "faces.parquet")
    assert len(ray_rows) == 242 and ray_rows["photo"].is_unique  # every photo once: none lost, none repeated
    pd.testing.assert_frame_equal(ray_rows, local_rows, atol=1e-5)


def test_local_worker_killed_mid_run_stops_with_one_line_and_resume_finishes(collection, tiny_model, tmp_path):
    """The local engine cannot retry a dead process's chunk: it says so, the finished shards stand, --resume completes."""
    out = tmp_path / "local"
    run = audit(str(collection), "--output", str(out), "--model", tiny_model, "--workers", "2", "--shard-photos", "10")
    killed, deadline = False, time.time() + 300
    while run.poll() is None and time.time() < deadline and not killed:
        workers = [pid for pid in spawned_children(run.pid)]
        if workers and list((out / "shards").glob("part-*.parquet")):
            os.kill(workers[0], signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    output = run.communicate(timeout=600)[0]
    assert killed, "the run ended before a worker could be killed"
    # (Python's resource tracker may add a warning about the dead process's semaphores after the line.)
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert run.returncode == 2 and errors == [errors[0]] and "a worker process died" in errors[0] and "Traceback" not in output, output[-2000:]
    finished = {file.name: file.stat().st_mtime_ns for file in (out / "shards").glob("part-*.parquet")}
    resumed = audit(str(collection), "--output", str(out), "--model", tiny_model, "--workers", "2", "--shard-photos", "10", "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()
    assert all((out / "shards" / name).stat().st_mtime_ns == mtime for name, mtime in finished.items())
    rows = pd.read_parquet(out / "faces.parquet")
    assert len(rows) == 242 and rows["photo"].is_unique


def spawned_children(parent: int) -> list[int]:
    """The multiprocessing workers started by `parent`."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                children.append(int(entry.name))
    return children


def test_a_running_cluster_is_joined_with_address(collection, tiny_model, tmp_path):
    """`ray start --head` as on a cluster's head node (its workers import genderage), then --address auto joins it."""
    ray = str(Path(sys.executable).parent / "ray")
    photos = tmp_path / "photos.txt"
    photos.write_text("\n".join(str(collection / f"{i:03d}.jpg") for i in range(20)) + "\n" + str(collection / "zz_broken.jpg"))
    started = subprocess.run([ray, "start", "--head", "--num-cpus", "2", "--port", "6391", "--include-dashboard", "false",
                              "--disable-usage-stats"], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        joined = audit(str(photos), "--output", str(tmp_path / "cluster"), "--model", tiny_model, "--engine", "ray",
                       "--workers", "2", "--address", "auto")
        assert joined.wait(timeout=600) == 0, joined.stdout.read()
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True)
    local = audit(str(photos), "--output", str(tmp_path / "local"), "--model", tiny_model, "--workers", "1")
    assert local.wait(timeout=600) == 0, local.stdout.read()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cluster" / "faces.parquet"),
                                  pd.read_parquet(tmp_path / "local" / "faces.parquet"), atol=1e-5)
