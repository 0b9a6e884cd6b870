"""A leaderboard of model folders: each measured on the same test sets through the app's detect-and-crop path, with
its description, accuracy per set, worst group, stability under a mirror and under another framing, speed and size.

Faces are detected once per test set (and once per mirrored set) and shared by every model, so adding a model costs
its own inference only (and its own crops, for a model whose faces are cut another way: config.json's `face_chip`).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..data.labelled import LabelledImages
from ..serving.detectors import Detection
from ..serving.faces import FACE_CHIPS, cut_face
from ..serving.inference import GenderAgeClassifier
from .accuracy import PathAnswers, measure
from .cross_dataset import age_detail, fairness_slices, worst_group
from .stability import REFRAME


@dataclass
class Crops:
    """What a model sees of a test set: the app's crop of each photo's largest face (the photo itself where none is
    found), the mirrored photo's crop and the same detection framed 1.2x wider and shifted (None where no face)."""

    crops: list[Image.Image]
    mirrored: list[Image.Image | None]
    reframed: list[Image.Image | None]


@dataclass
class TestSet:
    """One labelled set with its largest faces, detected once in each photo and in its mirror image."""

    name: str
    data: LabelledImages
    faces: list[Detection | None]
    mirrored_faces: list[Detection | None]
    _crops: dict[str | None, Crops] = field(default_factory=dict, repr=False)

    @property
    def found(self) -> list[bool]:
        return [face is not None for face in self.faces]

    def crops(self, chip: str | None = None) -> Crops:
        """The crops cut the way a model's config.json says (`face_chip`; None: around the detector's box), cut once."""
        if chip not in self._crops:
            style = FACE_CHIPS[chip] if chip else None
            images = self.data.images
            self._crops[chip] = Crops(
                [cut_face(image, face, style) if face else image for image, face in zip(images, self.faces)],
                [cut_face(ImageOps.mirror(image), face, style) if face else None for image, face in zip(images, self.mirrored_faces)],
                [cut_face(image, face, style, REFRAME) if face else None for image, face in zip(images, self.faces)])
        return self._crops[chip]


def prepare_test_set(name: str, data: LabelledImages, detector) -> TestSet:
    """Detect the largest face of each photo and of its mirror image, once for every model."""
    mirrored = [ImageOps.mirror(image) for image in data.images]
    largest = [faces[0] if faces else None for faces in detector.detections(data.images)]
    mirrored_largest = [faces[0] if faces else None for faces in detector.detections(mirrored)]
    return TestSet(name, data, largest, mirrored_largest)


def describe_model(folder: str | Path) -> dict:
    """What a model folder says about itself: backbone, initialisation, input size, epochs, size of model.onnx."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    processor = json.loads((folder / "preprocessor_config.json").read_text()) if (folder / "preprocessor_config.json").is_file() else {}
    card = (folder / "README.md").read_text() if (folder / "README.md").is_file() else ""
    if config.get("architecture"):  # a timm wrapper
        backbone = config["architecture"]
        size = (config.get("pretrained_cfg") or {}).get("input_size", [None])[-1]
    else:
        backbone = f"{config.get('model_type', '?')} {'/'.join(map(str, config.get('hidden_sizes', [])))}".strip()
        size = (processor.get("size") or {}).get("height") or (processor.get("size") or {}).get("shortest_edge")
    # The Hub id the card declares, else the folder it names as its start (a local run, a WiSE-FT mix).
    init = next((match.group(1) for pattern in (r"^base_model:\s*(\S+)", r"^Fine-tuned from `([^`]+)`", r"^# (WiSE-FT mix, α = \S+)")
                 if (match := re.search(pattern, card, re.MULTILINE))), "see its card")
    epochs = re.search(r"Epochs (\d+(?:\.\d+)?)", card)
    onnx = folder / "model.onnx"
    return {"model": str(folder), "backbone": backbone, "init": init,
            "resolution": size, "face_chip": config.get("face_chip"), "epochs": float(epochs.group(1)) if epochs else None,
            "onnx_mb": round(onnx.stat().st_size / 1e6, 1) if onnx.is_file() else None}


def _p_female(classifier: GenderAgeClassifier, crops: list[Image.Image | None]) -> np.ndarray:
    present = [i for i, crop in enumerate(crops) if crop is not None]
    values = np.full(len(crops), np.nan)
    if present:
        values[present] = [p.gender["female"] for p in classifier.predict([crops[i] for i in present])]
    return values


def _p95(deltas: np.ndarray) -> float | None:
    deltas = deltas[~np.isnan(deltas)]
    return float(np.percentile(deltas, 95)) if len(deltas) else None


def ms_per_face(folder: str | Path, crops: list[Image.Image], count: int = 200) -> float:
    """The classifier's cost for one face at a time on one thread (ONNX Runtime where the folder has model.onnx)."""
    classifier = GenderAgeClassifier.from_pretrained(str(folder), threads=1)
    sample = (crops * (count // max(1, len(crops)) + 1))[:count]
    for crop in sample[:20]:  # warm-up
        classifier.probabilities([crop])
    started = time.perf_counter()
    for crop in sample:
        classifier.probabilities([crop])
    return 1e3 * (time.perf_counter() - started) / len(sample)


def model_row(folder: str | Path, sets: list[TestSet], metric) -> dict:
    """One leaderboard row: the description, then per set gender and age-group accuracy, worst group, |ΔP(female)|
    p95 under the mirror and under the re-framing; speed last."""
    classifier = GenderAgeClassifier.from_pretrained(str(folder))
    row = describe_model(folder) | {"sets": {}}
    faces = []
    for test_set in sets:
        crops, found = test_set.crops(classifier.face_chip), test_set.found
        predictions = classifier.predict(crops.crops)
        result = measure(classifier, test_set.data, metric, answers=PathAnswers(crops.crops, found, predictions, True, 1.0))
        metrics = result["metrics"]
        original = np.array([p.gender["female"] if face else np.nan for p, face in zip(predictions, found)])
        row["sets"][test_set.name] = {
            "n": len(crops.crops), "faces_found": float(np.mean(found)) if found else None,
            "gender_accuracy": metrics.get("gender_accuracy"), "age_group_accuracy": metrics.get("age_group_accuracy"),
            "worst_group": worst_group(fairness_slices(metrics)),  # a labelled group of 20 or more photos
            "age": age_detail(metrics),
            "mirror_p95": _p95(np.abs(original - _p_female(classifier, crops.mirrored))),
            "reframe_p95": _p95(np.abs(original - _p_female(classifier, crops.reframed))),
        }
        faces += [crop for crop, face in zip(crops.crops, found) if face]
    row["ms_per_face"] = ms_per_face(folder, faces) if faces else None
    return row


def markdown_table(rows: list[dict]) -> str:
    """One line per model: description, gender / age group per set, worst group, stability, speed, size."""
    names = list(rows[0]["sets"]) if rows else []

    def cell(value, form="{:.1%}"):
        return "–" if value is None else form.format(value)

    header = ["model", "backbone", "init", "px", "epochs"] + [f"{name}: gender / age" for name in names]
    header += ["worst group", "mirror p95", "reframe p95", "ms/face", "MB"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        sets = row["sets"]
        mirror = np.nanmax([s["mirror_p95"] if s["mirror_p95"] is not None else np.nan for s in sets.values()]) if sets else None
        reframe = np.nanmax([s["reframe_p95"] if s["reframe_p95"] is not None else np.nan for s in sets.values()]) if sets else None
        worst = "; ".join(f"{name}: {s['worst_group']}" for name, s in sets.items() if s["worst_group"])
        size = cell(row["resolution"], "{}") + (f" ({row['face_chip']} chip)" if row.get("face_chip") else "")
        cells = [row["model"], row["backbone"], row["init"], size, cell(row["epochs"], "{:g}")]
        cells += [f"{cell(s['gender_accuracy'])} / {cell(s['age_group_accuracy'])}" for s in sets.values()]
        cells += [worst or "–", cell(mirror, "{:.2f}"), cell(reframe, "{:.2f}"), cell(row["ms_per_face"], "{:.1f}"), cell(row["onnx_mb"], "{}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + ("\n\nmirror p95 and reframe p95: the largest over the sets of the 95th percentile of |ΔP(female)|. "
                               "px: the model's input; a named chip is aligned on the five landmarks (else a square around the "
                               "detector's box).\n") + age_table(rows)


def age_table(rows: list[dict]) -> str:
    """Per model and set with race labels: age group, one-off, children 0-19, the worst race and every race."""
    lines = []
    for row in rows:
        for name, figures in row["sets"].items():
            age = figures.get("age") or {}
            if not age.get("age_group_accuracy_by_race"):
                continue
            races = ", ".join(f"{race} {score:.1%}" for race, score in age["age_group_accuracy_by_race"].items())
            children = age["children_age_group_accuracy"]
            worst = f"{age['worst_race']} {age['worst_race_age_group_accuracy']:.1%}" if age["worst_race"] else "–"
            lines.append(f"| {row['model']} | {name} | {age['age_group_accuracy']:.1%} | {age['age_group_one_off_accuracy']:.1%} | "
                         f"{'–' if children is None else f'{children:.1%}'} | {worst} | {races} |")
    if not lines:
        return ""
    header = ("\nAge group on the sets with race labels (one-off: within one group; children: 0-19 together; worst race: "
              "of 20 or more photos)\n\n| model | set | age group | one-off | children | worst race | by race |\n|---|---|---|---|---|---|---|")
    return header + "\n" + "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str | Path) -> None:
    """Gender accuracy per set (bars) and mirror / re-framing p95 (right panel), one colour per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0]["sets"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [max(2, len(names)), 2]})
    width = 0.8 / len(rows)
    for index, row in enumerate(rows):
        label = Path(row["model"]).name
        left.bar(np.arange(len(names)) + index * width, [100 * (row["sets"][n]["gender_accuracy"] or 0) for n in names], width, label=label)
        right.bar(np.arange(2) + index * width, [max((s[k] or 0) for s in row["sets"].values()) for k in ("mirror_p95", "reframe_p95")], width, label=label)
    left.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=15)
    left.set_ylabel("gender accuracy (%)")
    left.set_ylim(min(100 * (s["gender_accuracy"] or 1) for r in rows for s in r["sets"].values()) - 5, 100)
    right.set_xticks(np.arange(2) + 0.4 - width / 2, ["mirror", "re-framing"])
    right.set_ylabel("|ΔP(female)| p95, worst set (lower is better)")
    left.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
