r"""How much of dlib's face-recognition network survives conversion: the same linear gender probe on each network's features.

Usage:
    pip install dlib-bin face_recognition_models==0.3.0   # for this check only
    python benchmarks/dlib_transfer.py --source folders=../shared/data/men_women_classification_128px \
        [--student runs/dlib_distil] [--student runs/dlib_distil/checkpoint-300] [--json out.json]

Faces are dlib's own aligned chips (HOG detector, 5 landmarks, `get_face_chip(img, shape, 150, 0.25)`). Each row is a
logistic-regression probe, 5-fold cross-validated, on one network's features of those chips: dlib's descriptors, the
exact PyTorch network's pooled features, the transformers ResNet as converted, and each --student (a folder written
by convert_dlib.py, or one of its checkpoints). The goal: a student within a point or two of dlib's descriptors.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="a raw source with gender labels, as prepare_dataset.py's --source")
    parser.add_argument("--student", action="append", default=[], help="a converted model folder or checkpoint (repeatable)")
    parser.add_argument("--limit", type=int, help="use at most this many photos")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args()


def dlib_chips(images, model_dir: Path) -> tuple[list, list[int]]:
    """dlib's aligned 150 px chips of the largest face per photo, and the indices of the photos that had one."""
    import dlib
    import numpy as np

    detector = dlib.get_frontal_face_detector()
    landmarks = dlib.shape_predictor(str(model_dir / "shape_predictor_5_face_landmarks.dat"))
    chips, kept = [], []
    for index, image in enumerate(images):
        pixels = np.asarray(image)
        faces = sorted(detector(pixels, 1), key=lambda box: box.area(), reverse=True)
        if faces:
            chips.append(np.asarray(dlib.get_face_chip(pixels, landmarks(pixels, faces[0]), 150, 0.25)))
            kept.append(index)
    return chips, kept


def student_features(path: str, chips: list):
    """Pooled features of a converted model folder, or of a distillation checkpoint (its `student.` weights)."""
    import torch
    from safetensors.torch import load_file
    from transformers import ResNetForImageClassification

    from genderage.labels import JOINT_LABELS
    from genderage.training import dlib_resnet

    folder = Path(path)
    if (folder / "config.json").exists():
        model = ResNetForImageClassification.from_pretrained(folder)
    else:  # a Trainer checkpoint of the distillation: the student's weights under `student.`
        weights = load_file(folder / "model.safetensors")
        model = dlib_resnet.to_transformers_resnet(dlib_resnet.read_dlib_resnet(dlib_resnet.installed_model_file()), JOINT_LABELS)
        model.load_state_dict({k.removeprefix("student."): v for k, v in weights.items() if k.startswith("student.")})
    model.eval()
    with torch.no_grad():  # dlib_pixels is what the saved image processor computes (tests/test_dlib_resnet.py)
        return batched(lambda c: dlib_resnet.pooled_features(model, dlib_resnet.dlib_pixels(c)), chips)


def batched(function, chips: list, size: int = 64):
    import torch

    return torch.cat([function(chips[i : i + size]) for i in range(0, len(chips), size)])


def probe_accuracy(features, labels, folds: int, seed: int = 0) -> tuple[float, float]:
    """Mean and spread of a logistic-regression probe's accuracy over stratified folds (standardised features)."""
    import torch

    features, labels = features.double(), torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    fold_of = torch.empty(len(labels), dtype=torch.long)
    for value in labels.unique():  # stratified: each class spread evenly over the folds
        members = (labels == value).nonzero().flatten()
        fold_of[members[torch.randperm(len(members), generator=generator)]] = torch.arange(len(members)) % folds
    scores = []
    for fold in range(folds):
        train, test = fold_of != fold, fold_of == fold
        mean, std = features[train].mean(0), features[train].std(0) + 1e-6
        x_train, x_test = (features[train] - mean) / std, (features[test] - mean) / std
        weights = torch.zeros(features.shape[1] + 1, dtype=torch.double, requires_grad=True)
        optimizer = torch.optim.LBFGS([weights], max_iter=200, line_search_fn="strong_wolfe")
        y = labels[train].double()

        def loss():
            optimizer.zero_grad()
            logits = x_train @ weights[:-1] + weights[-1]
            value = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + 1e-3 * weights[:-1].square().sum()
            value.backward()
            return value

        optimizer.step(loss)
        predictions = (x_test @ weights[:-1] + weights[-1] > 0).long()
        scores.append((predictions == labels[test]).double().mean().item())
    scores = torch.tensor(scores)
    return scores.mean().item(), scores.std().item()


def main() -> int:
    args = parse_args()
    try:
        import dlib

        from genderage.training import dlib_resnet

        model_file = dlib_resnet.installed_model_file()
    except (ImportError, FileNotFoundError) as error:
        print(f"error: this check needs dlib and dlib's models: pip install dlib-bin face_recognition_models==0.3.0 ({error})", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    from genderage.data.labelled import from_source
    from genderage.data.sources import SourceError
    from genderage.labels import GENDERS

    try:
        data = from_source(args.source, args.limit)
    except (SourceError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    chips, kept = dlib_chips(data.images, model_file.parent)
    chips = [chip for chip, i in zip(chips, kept) if data.rows[i]["gender"] is not None]
    labels = [GENDERS.index(data.rows[i]["gender"]) for i in kept if data.rows[i]["gender"] is not None]
    print(f"{len(data.images)} photos, dlib found a face in {len(kept)}; {len(labels)} with a gender label")
    if len(set(labels)) < 2:
        print("error: the probe needs faces of both genders", file=sys.stderr)
        return 2

    weights = dlib_resnet.read_dlib_resnet(model_file)
    exact = dlib_resnet.DlibResNet(weights).eval()
    converted = dlib_resnet.to_transformers_resnet(weights, list(GENDERS)).eval()
    recogniser = dlib.face_recognition_model_v1(str(model_file))
    with torch.no_grad():
        features = {
            "dlib descriptors (dlib itself, 128-d)": torch.tensor(np.array([recogniser.compute_face_descriptor(chip) for chip in chips])),
            "exact network, pooled (PyTorch, 256-d)": batched(lambda c: exact(dlib_resnet.dlib_pixels(c)), chips),
            "transformers ResNet as converted (256-d)": batched(lambda c: dlib_resnet.pooled_features(converted, dlib_resnet.dlib_pixels(c)), chips),
        }
    for student in args.student:
        features[f"student {student}"] = student_features(student, chips)
    results = {}
    print(f"| features | gender probe ({args.folds}-fold) |\n|---|---|")
    for name, values in features.items():
        mean, spread = probe_accuracy(values, labels, args.folds)
        results[name] = {"accuracy": mean, "fold_std": spread}
        print(f"| {name} | {100 * mean:.1f}% ± {100 * spread:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"source": args.source, "faces": len(labels), "probes": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
