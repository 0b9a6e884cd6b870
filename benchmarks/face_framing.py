"""Measure how UTKFace chips frame the face relative to the detector's box (the constants in genderage/faces.py).

Usage: python benchmarks/face_framing.py --data ../shared/data/utkface [--count 400]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="a folder of UTKFace-style aligned chips (*.jpg)")
    parser.add_argument("--count", type=int, default=400)
    args = parser.parse_args()
    files = sorted(Path(args.data).glob("*.jpg"))
    if not files:
        parser.error(f"no *.jpg chips in {args.data}")
    files = files[:: max(1, len(files) // args.count)][: args.count]
    from genderage.serving.faces import FaceDetector

    detector = FaceDetector(min_confidence=0.9)
    rows = []
    for path in files:
        image = Image.open(path).convert("RGB")
        faces = detector.boxes([image])[0]
        if faces:
            (x0, y0, x1, y1), _ = faces[0]
            width = x1 - x0
            rows.append((image.width / width, (image.width / 2 - (x0 + x1) / 2) / width, (image.height / 2 - (y0 + y1) / 2) / width))
    side, offset_x, offset_y = np.median(np.array(rows), axis=0)
    print(f"faces found {len(rows)}/{len(files)}")
    print(f"CHIP_SIDE = {side:.2f}\nCHIP_OFFSET_X = {offset_x:.2f}\nCHIP_OFFSET_Y = {offset_y:.2f}")


if __name__ == "__main__":
    main()
