r"""Classification speed of several model folders, same face crops, same thread count, in one run.

Usage:
    python benchmarks/edge_speed.py --models models/default models/edge --images ../shared/data/utkface \
        [--threads 1] [--single 300] [--batches 10] [--batch-size 64] [--rounds 3] [--json out.json]

Times `GenderAgeClassifier.probabilities` (the saved image processor + the network + softmax, what the app, predict.py
and the benchmarks call per face) on PyTorch and, where the folder has an up-to-date model.onnx, on ONNX Runtime:
one crop at a time (ms per crop) and in batches (crops/s). Crops are decoded first (not timed); each model and
backend warms up first (the first few dozen calls run several times slower), and the rounds interleave the models,
so a busy machine slows them alike; the median round is reported, in wall time and per CPU second (steadier when
other processes share the CPU; the same on an idle machine with one thread). The single-crop time is also split
into the image processor alone ("prep") and the network alone on its output ("net"), in CPU ms. "x" columns are
speed-ups against the first model on the same backend, from CPU time.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WARMUP = 50


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["models/default", "models/edge"])
    parser.add_argument("--images", required=True, help="a folder of face crops (e.g. ../shared/data/utkface)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--single", type=int, default=300, help="crops timed one at a time per round")
    parser.add_argument("--batches", type=int, default=10, help="batches timed per round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args()


def load_crops(folder: str, count: int):
    from PIL import Image

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(paths) // count)
    crops = []
    for path in paths[::step][:count]:
        with Image.open(path) as image:
            crops.append(image.convert("RGB"))
    return crops


def timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def preprocess(classifier, crop):
    """One crop preprocessed as the classifier does it: numpy for ONNX Runtime where it can, the image processor otherwise."""
    if classifier.numpy_preprocessor is not None:
        return classifier.numpy_preprocessor([crop])
    return classifier.processor([crop], return_tensors="pt")["pixel_values"]


def network(classifier, pixels):
    """The network alone on one preprocessed crop, on the classifier's backend."""
    import numpy as np
    import torch

    if classifier.session is not None:
        return classifier.session.run(["logits"], {"pixel_values": np.asarray(pixels, dtype=np.float32)})[0]
    with torch.inference_mode():
        return classifier.model(pixel_values=pixels.contiguous(memory_format=torch.channels_last)).logits


def main() -> int:
    args = parse_args()
    import torch

    from genderage.serving.inference import GenderAgeClassifier

    torch.set_num_threads(args.threads)
    crops = load_crops(args.images, max(args.single, args.batch_size * args.batches))
    runners = {}
    for folder in args.models:
        for backend in ("torch", "onnx"):
            try:
                classifier = GenderAgeClassifier.from_pretrained(folder, backend=backend)
            except (FileNotFoundError, ValueError) as error:
                print(f"{folder} {backend}: skipped ({error})")
                continue
            for i in range(WARMUP):  # single and batched shapes both warm
                classifier.probabilities([crops[i % len(crops)]])
            for _ in range(3):
                classifier.probabilities(crops[: args.batch_size], batch_size=args.batch_size)
            runners[(folder, backend)] = classifier
    samples = {key: {"single": [], "batched": [], "preprocess": [], "network": []} for key in runners}
    for _ in range(args.rounds):
        for key, classifier in runners.items():
            single = crops[: args.single]
            wall, cpu = timed(lambda: [classifier.probabilities([crop]) for crop in single])
            samples[key]["single"].append((1000 * wall / len(single), 1000 * cpu / len(single)))
            batched = crops[: args.batch_size * args.batches]
            wall, cpu = timed(lambda: classifier.probabilities(batched, batch_size=args.batch_size))
            samples[key]["batched"].append((len(batched) / wall, len(batched) / cpu))
            # the same single crops split in two: the saved image processor alone, the network alone on its output
            wall, cpu = timed(lambda: [preprocess(classifier, crop) for crop in single])
            samples[key]["preprocess"].append(1000 * cpu / len(single))
            pixels = [preprocess(classifier, crop) for crop in single]
            wall, cpu = timed(lambda: [network(classifier, p) for p in pixels])
            samples[key]["network"].append(1000 * cpu / len(single))
    results = []
    for (folder, backend), sample in samples.items():
        row = {
            "model": folder, "backend": backend,
            "ms_per_crop": statistics.median(s[0] for s in sample["single"]),
            "cpu_ms_per_crop": statistics.median(s[1] for s in sample["single"]),
            "crops_per_s_batched": statistics.median(s[0] for s in sample["batched"]),
            "crops_per_cpu_s_batched": statistics.median(s[1] for s in sample["batched"]),
            "cpu_ms_preprocess": statistics.median(sample["preprocess"]),
            "cpu_ms_network": statistics.median(sample["network"]),
        }
        results.append(row)
    baseline = {r["backend"]: r for r in results if r["model"] == args.models[0]}
    print(f"{args.threads} thread(s), {args.rounds} rounds x ({args.single} single crops + {args.batches} batches of "
          f"{args.batch_size}), median round; speed-up against {args.models[0]} on the same backend")
    print(f"{'model':<22}{'backend':<9}{'ms/crop':>9}{'cpu ms':>9}{'x':>6}{'crops/s':>10}{'per cpu s':>11}{'x':>6}{'prep ms':>9}{'net ms':>8}{'x':>6}")
    for row in results:
        base = baseline.get(row["backend"])
        row["speedup_single_cpu"] = base["cpu_ms_per_crop"] / row["cpu_ms_per_crop"] if base else None
        row["speedup_batched_cpu"] = row["crops_per_cpu_s_batched"] / base["crops_per_cpu_s_batched"] if base else None
        row["speedup_network_cpu"] = base["cpu_ms_network"] / row["cpu_ms_network"] if base else None
        print(f"{row['model']:<22}{row['backend']:<9}{row['ms_per_crop']:>9.2f}{row['cpu_ms_per_crop']:>9.2f}"
              f"{row['speedup_single_cpu'] or 0:>6.1f}{row['crops_per_s_batched']:>10.0f}{row['crops_per_cpu_s_batched']:>11.0f}"
              f"{row['speedup_batched_cpu'] or 0:>6.1f}{row['cpu_ms_preprocess']:>9.2f}{row['cpu_ms_network']:>8.2f}"
              f"{row['speedup_network_cpu'] or 0:>6.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "images": args.images, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
