"""audit.py's prediction stage on both engines, at 1 and 2 workers, on the same photos: photos/s and faces/s.

Usage:
    python benchmarks/audit_speed.py PHOTOS... [--limit 600] [--workers 1,2] [--engines local,ray] [--model models/default]

Each configuration runs in a fresh process (a Ray runtime is started for it, as audit.py does), one thread per worker. Printed per run:
the whole run (start-up included) and the steady rate from the tenth of the photos answered to the last (start-up
excluded: loading the model in each worker, and Ray's runtime), then, from the median steady rate of --rounds interleaved runs, each engine's speed-up from 1 to 2
workers and Ray's overhead against the local engine at the same number of workers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genderage.measure.collection import Collection, read_collection  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="folders, globs or list files, as audit.py takes")
    parser.add_argument("--limit", type=int, default=600, help="photos (the first N, in order)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--engines", default="local,ray")
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="runs of every configuration, interleaved; medians compared")
    parser.add_argument("--stages", action="store_true", help="instead: ms per photo of decoding, detecting and classifying, one thread")
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "WORKERS"), help=argparse.SUPPRESS)  # a child run
    parser.add_argument("--json", help="write the figures here")
    return parser.parse_args(argv)


def one_run(args: argparse.Namespace, collection: Collection) -> dict:
    """Time one engine at one worker count over the photos."""
    from genderage.measure.audit import engine_rows

    engine, workers = args.one[0], int(args.one[1])
    collection.table = collection.table.iloc[: args.limit]
    started = time.perf_counter()
    arrived, faces = [], []
    for position, rows in engine_rows(collection, list(range(len(collection.table))), engine, workers, args.model, args.chunk):
        arrived.append(time.perf_counter())
        faces.append(sum(row["face"] is not None for row in rows))
    photos = len(arrived)
    # Steady: from the tenth of the photos answered to the last, so start-up and the work in flight when the first
    # answers arrive (queued chunks, Ray's blocks) do not count.
    tenth = photos // 10
    steady_seconds = max(arrived[-1] - arrived[tenth], 1e-9)
    return {"engine": engine, "workers": workers, "photos": photos, "faces": sum(faces), "seconds": arrived[-1] - started,
            "startup_seconds": arrived[0] - started, "photos_per_second": photos / (arrived[-1] - started),
            "steady_photos_per_second": (photos - 1 - tenth) / steady_seconds,
            "steady_faces_per_second": sum(faces[tenth + 1 :]) / steady_seconds}


def stages(args: argparse.Namespace, collection: Collection) -> dict:
    """Where one core's time goes per photo: decode, detect (with its fallback), classify the faces (one batch each)."""
    from genderage.serving.predict import PhotoPredictor, PhotoRejected, open_photo

    photos = collection.table["photo"].tolist()[: args.limit]
    predictor = PhotoPredictor(args.model, threads=1)
    spent = {"decode": 0.0, "detect": 0.0, "classify": 0.0}
    pixels, faces = 0, 0
    for photo in photos:
        started = time.perf_counter()
        try:
            image = open_photo(photo)
        except PhotoRejected:
            continue
        decoded = time.perf_counter()
        found = predictor.detector.detect(image)
        detected = time.perf_counter()
        if found:
            predictor.classifier.predict([face.crop for face in found])
        spent["decode"] += decoded - started
        spent["detect"] += detected - decoded
        spent["classify"] += time.perf_counter() - detected
        pixels += image.width * image.height
        faces += len(found)
    per_photo = {stage: 1000 * seconds / len(photos) for stage, seconds in spent.items()}
    print(f"{len(photos)} photos, {pixels / len(photos) / 1e6:.2f} MP and {faces / len(photos):.2f} faces each; ms per photo, one thread: "
          + ", ".join(f"{stage} {ms:.1f}" for stage, ms in per_photo.items()) + f"; total {sum(per_photo.values()):.1f}")
    return per_photo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        collection = read_collection(args.inputs)  # a missing folder or an empty one: one line, before any run
        if args.stages:
            stages(args, collection)
        elif args.one:
            print(json.dumps(one_run(args, collection)))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.stages or args.one:
        return 0
    runs = []
    configurations = [(engine, workers) for engine in args.engines.split(",") for workers in args.workers.split(",")]
    for round_, (engine, workers) in itertools.product(range(args.rounds), configurations):
        child = [sys.executable, __file__, *args.inputs, "--limit", str(args.limit), "--model", args.model,
                 "--chunk", str(args.chunk), "--one", engine, workers]
        # One thread per worker for both engines (a lone local worker would otherwise take every core).
        done = subprocess.run(child, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if done.returncode != 0:
            print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"error: the {engine} run failed", file=sys.stderr)
            return done.returncode
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = runs[-1]
        print(f"round {round_ + 1}, {engine:5s} x{workers}: {r['photos']} photos, {r['faces']} faces in {r['seconds']:.1f} s "
              f"({r['photos_per_second']:.1f} photos/s with {r['startup_seconds']:.1f} s start-up); steady "
              f"{r['steady_photos_per_second']:.1f} photos/s, {r['steady_faces_per_second']:.1f} faces/s", flush=True)
    rate = {key: statistics.median(r["steady_photos_per_second"] for r in runs if (r["engine"], r["workers"]) == key)
            for key in dict.fromkeys((r["engine"], r["workers"]) for r in runs)}
    for (engine, workers), value in rate.items():
        print(f"median steady rate, {engine} x{workers}: {value:.1f} photos/s")
    counts = sorted({r["workers"] for r in runs})
    for engine in dict.fromkeys(r["engine"] for r in runs):
        if len(counts) > 1:
            print(f"{engine}: {counts[0]} -> {counts[-1]} workers: {rate[engine, counts[-1]] / rate[engine, counts[0]]:.2f}x")
    for workers in counts:
        if ("local", workers) in rate and ("ray", workers) in rate:
            print(f"ray overhead at {workers} workers: {1 - rate['ray', workers] / rate['local', workers]:+.1%} (steady rates)")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
