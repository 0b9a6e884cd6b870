"""How UTKFace chips frame the face relative to each detector's box: the ChipFraming constants in
genderage/serving/detectors.py (re-run after changing a detector). MTCNN's constants are what it prints; CenterFace's
are set to match MTCNN's chips on loosely framed photos, the crops the shipped model learnt (see detectors.py).

Usage: python benchmarks/face_framing.py --data ../shared/data/utkface [--count 400] [--detector centerface|mtcnn|both]

A UTKFace "aligned & cropped" chip is the framing the model learnt; each detector's box sits differently on a face,
so each gets its own chip side and centre offset (in box widths), the medians over `--count` chips.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def framing(detect, images: list[Image.Image]) -> tuple[int, tuple[float, float, float]]:
    """(faces found, median (side, offset_x, offset_y)) of the chips relative to the largest face's box."""
    rows = []
    for image in images:
        faces = detect(image)
        if faces:
            x0, y0, x1, y1 = faces[0].box
            width = x1 - x0
            rows.append((image.width / width, (image.width / 2 - (x0 + x1) / 2) / width, (image.height / 2 - (y0 + y1) / 2) / width))
    return len(rows), tuple(float(v) for v in np.median(np.array(rows), axis=0)) if rows else (float("nan"),) * 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a folder of UTKFace-style aligned chips (*.jpg)")
    parser.add_argument("--count", type=int, default=400, help="chips, spread over the sorted folder")
    parser.add_argument("--detector", choices=["centerface", "mtcnn", "both"], default="both")
    args = parser.parse_args()
    files = sorted(Path(args.data).glob("*.jpg"))
    if not files:
        parser.error(f"no *.jpg chips in {args.data}")
    files = files[:: max(1, len(files) // args.count)][: args.count]
    images = [Image.open(path).convert("RGB") for path in files]
    from genderage.serving.detectors import MTCNN, CenterFace

    detectors = {"centerface": lambda: CenterFace(), "mtcnn": lambda: (lambda m: lambda image: m.detections([image])[0])(MTCNN())}
    for name in detectors if args.detector == "both" else [args.detector]:
        found, (side, offset_x, offset_y) = framing(detectors[name](), images)
        print(f"{name}: faces found {found}/{len(images)}")
        print(f"{name.upper()}_FRAMING = ChipFraming(side={side:.2f}, offset_x={offset_x:.2f}, offset_y={offset_y:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
