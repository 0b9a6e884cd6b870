r"""How UTKFace chips frame the face relative to each detector's box: the ChipFraming constants in
genderage/serving/detectors.py (re-run after changing a detector). MTCNN's constants are what it prints; CenterFace's
are set to match MTCNN's chips on loosely framed photos, the crops the shipped model learnt (see detectors.py).

Usage: python benchmarks/face_framing.py --data ../shared/data/utkface [--count 400] [--detector centerface|mtcnn|both]
       python benchmarks/face_framing.py --data ../shared/data/utkface ../shared/data/all_age_faces/images \
           --dlib-python .venv-peer/bin/python

The second form prints DLIB_CHIP_TEMPLATE (genderage/serving/faces.py): where each detector's five landmarks sit in
dlib's unit face frame, the frame `dlib.get_face_chip(image, shape, 150, 0.25)` maps onto the chips its face network
was trained on. It needs a Python with `dlib` (dlib-bin, the speed peer's venv) and face_recognition_models' 5-point
predictor; it is a measurement, never a dependency. The template is made mirror-symmetric (each point averaged with
its partner's mirror image), so that a mirrored face gets the mirrored chip.

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


# dlib's 5-point template in its unit face frame (dlib/image_transforms/interpolation.h, get_face_chip_details):
# eye corners and the base of the nose, in the order of shape_predictor_5_face_landmarks' parts.
DLIB_UNIT_TEMPLATE = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                               [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                               [0.4901123135679, 0.6277975316475]])
# Run by the dlib Python: paths on stdin, one JSON line per path (dlib's five points of the largest HOG face, or null).
_DLIB_LANDMARKS = """
import json, sys, dlib
detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(sys.argv[1])
for path in sys.stdin.read().splitlines():
    image = dlib.load_rgb_image(path)
    faces = sorted(detector(image, 1), key=lambda r: -r.area())
    shape = predictor(image, faces[0]) if faces else None
    print(json.dumps([[p.x, p.y] for p in shape.parts()] if shape else None))
"""


def dlib_chip_template(detect, files: list[Path], dlib_python: str) -> tuple[int, np.ndarray]:
    """(faces both found, median position of the detector's five landmarks in dlib's unit face frame)."""
    import json
    import subprocess

    from genderage.serving.faces import similarity
    from genderage.training.dlib_resnet import installed_model_file

    predictor = installed_model_file().with_name("shape_predictor_5_face_landmarks.dat")
    output = subprocess.run([dlib_python, "-c", _DLIB_LANDMARKS, str(predictor)], input="\n".join(map(str, files)),
                            capture_output=True, text=True, check=True).stdout
    rows = []
    for path, line in zip(files, output.splitlines()):
        dlib_points = json.loads(line)
        faces = detect(Image.open(path).convert("RGB"))
        if dlib_points is None or not faces or faces[0].landmarks is None:
            continue
        to_unit = similarity(np.array(dlib_points, dtype=float), DLIB_UNIT_TEMPLATE)
        ours = np.array(faces[0].landmarks, dtype=float)
        rows.append(ours @ to_unit[:, :2].T + to_unit[:, 2])
    return len(rows), np.median(np.array(rows), axis=0) if rows else np.full((5, 2), np.nan)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, nargs="+", help="folders of UTKFace-style aligned chips (*.jpg)")
    parser.add_argument("--count", type=int, default=400, help="chips per folder, spread over the sorted folder")
    parser.add_argument("--detector", choices=["centerface", "mtcnn", "both"], default="both")
    parser.add_argument("--dlib-python", help="a Python with dlib: print where the landmarks sit in dlib's chip frame")
    args = parser.parse_args()
    files = []
    for folder in args.data:
        found = sorted(Path(folder).glob("*.jpg"))
        if not found:
            parser.error(f"no *.jpg chips in {folder}")
        files += found[:: max(1, len(found) // args.count)][: args.count]
    from genderage.serving.detectors import MTCNN, CenterFace

    detectors = {"centerface": lambda: CenterFace(), "mtcnn": lambda: (lambda m: lambda image: m.detections([image])[0])(MTCNN())}
    for name in detectors if args.detector == "both" else [args.detector]:
        if args.dlib_python:
            found, template = dlib_chip_template(detectors[name](), files, args.dlib_python)
            print(f"{name}: landmarks of {found}/{len(files)} faces found by both; in dlib's unit face frame (x, y):")
            print("as measured: " + ", ".join(f"({x:.3f}, {y:.3f})" for x, y in template))
            mirrored = template[[1, 0, 2, 4, 3]] * [-1, 1] + [1, 0]  # eyes and mouth corners swap sides
            print("DLIB_CHIP_TEMPLATE = (" + ", ".join(f"({x:.3f}, {y:.3f})" for x, y in (template + mirrored) / 2) + ")")
            continue
        images = [Image.open(path).convert("RGB") for path in files]
        found, (side, offset_x, offset_y) = framing(detectors[name](), images)
        print(f"{name}: faces found {found}/{len(images)}")
        print(f"{name.upper()}_FRAMING = ChipFraming(side={side:.2f}, offset_x={offset_x:.2f}, offset_y={offset_y:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
