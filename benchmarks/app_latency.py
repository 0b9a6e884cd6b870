"""App latency: the app's whole prediction function per image against detector + model forward alone. Goal ≤ 1.2.

Usage: python benchmarks/app_latency.py [--model models/default] [--repeats 3]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the 9 photos")
    args = parser.parse_args()
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor

    from genderage.serving.analysis import FaceAnalyzer, analyse_file
    from genderage.serving.demo import example_images
    from genderage.serving.faces import FaceDetector
    from genderage.serving.inference import GenderAgeClassifier

    classifier = GenderAgeClassifier.from_pretrained(args.model)
    detector = FaceDetector(chip=classifier.face_chip)
    analyzer = FaceAnalyzer(classifier, detector)
    folder = Path(tempfile.mkdtemp())
    paths = []
    for path in example_images():  # the examples, plus a large and a small copy of each
        image = Image.open(path).convert("RGB")
        for scale in (1.0, 2.0, 0.5):
            target = folder / f"{Path(path).stem}_{scale}.jpg"
            image.resize((round(image.width * scale), round(image.height * scale))).save(target, quality=92)
            paths.append(target)
    images = [Image.open(p).convert("RGB") for p in paths]
    # The baseline gets decoded images and pre-made crops: only the detector and the model forward are timed.
    crops = [[face.crop for face in detector.detect(image)] or [image] for image in images]
    processor = AutoImageProcessor.from_pretrained(args.model)
    pixels = [processor(c, return_tensors="pt")["pixel_values"] for c in crops]

    def baseline(i):
        detector.boxes([images[i]])
        with torch.inference_mode():
            classifier.model(pixel_values=pixels[i])

    def end_to_end(i):
        analyse_file(analyzer, paths[i])

    timings = {}
    for name, function in (("end_to_end", end_to_end), ("baseline", baseline)) * 2:  # interleaved, second round counts
        for i in range(len(paths)):
            function(i)  # warm-up
        started = time.perf_counter()
        for _ in range(args.repeats):
            for i in range(len(paths)):
                function(i)
        timings[name] = (time.perf_counter() - started) / (args.repeats * len(paths))
    faces = sum(len(c) for c in crops)
    print(f"{len(paths)} images ({faces} faces or whole-image fallbacks), {args.repeats} repeats, model {args.model}")
    print(f"app prediction function: {timings['end_to_end'] * 1000:.1f} ms/image")
    print(f"detector + model forward: {timings['baseline'] * 1000:.1f} ms/image")
    print(f"ratio: {timings['end_to_end'] / timings['baseline']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
