"""Small checks on the real data in ../shared (skipped when it is absent, as in a user's fresh clone)."""

import csv
import json
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA, prepared

pytestmark = [pytest.mark.real_data, pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")]
UTKFACE = SHARED_DATA / "utkface"
MEN_WOMEN = SHARED_DATA / "men_women_classification_128px"


def link_subset(files: list[Path], folder: Path) -> Path:
    """Symlinks (not copies) to a subset of the research-only images, in a temporary folder."""
    for path in files:
        target = folder / path.relative_to(path.parents[1] if path.parent.name in ("men", "women") else path.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path.resolve())
    return folder


def test_utkface_subset_with_known_near_duplicates(tmp_path):
    pairs = list(csv.DictReader((UTKFACE / "near_duplicates.tsv").open(), delimiter="\t"))[:60]
    names = {name for pair in pairs for name in (pair["file_a"], pair["file_b"])}
    names |= {p.name for p in sorted(UTKFACE.glob("*.chip.jpg"))[::120]}
    source = link_subset([UTKFACE / n for n in sorted(names)], tmp_path / "utk")
    out = prepared(tmp_path, f"utkface={source}")
    split_of = {}
    for split in ("train", "validation", "test"):
        for line in (out / split / "metadata.jsonl").open():
            split_of[Path(json.loads(line)["source_path"]).name] = split
    dropped = {Path(row["source_path"]).name for row in csv.DictReader((out / "dropped.csv").open())}
    assert set(split_of) | dropped == names and not set(split_of) & dropped
    together = sum(p["file_a"] in dropped or p["file_b"] in dropped or split_of[p["file_a"]] == split_of[p["file_b"]] for p in pairs)
    assert together / len(pairs) >= 0.95


def test_men_women_folders_subset(tmp_path):
    files = sorted((MEN_WOMEN / "men").glob("*.jpg"))[:40] + sorted((MEN_WOMEN / "women").glob("*.jpg"))[:40]
    source = link_subset(files, tmp_path / "mw")
    out = prepared(tmp_path, f"folders={source}")
    rows = [json.loads(line) for split in ("train", "validation", "test") for line in (out / split / "metadata.jsonl").open()]
    kept_dropped = len(rows) + sum(1 for _ in csv.DictReader((out / "dropped.csv").open()))
    assert kept_dropped == 80
    assert all((r["gender"] == "male") == ("/men/" in r["source_path"]) for r in rows)


@pytest.mark.skipif(not (REPO / "models" / "default" / "config.json").is_file(), reason="no shipped model")
def test_shipped_model_on_real_faces():
    import evaluate

    from genderage import METRIC_MODULE
    from genderage.data.labelled import from_source
    from genderage.measure.accuracy import measure
    from genderage.serving.faces import FaceDetector
    from genderage.serving.inference import GenderAgeClassifier

    data = from_source(f"utkface={UTKFACE}", limit=120)
    classifier = GenderAgeClassifier.from_pretrained(str(REPO / "models" / "default"))
    metric = evaluate.load(METRIC_MODULE)
    whole = measure(classifier, data, metric)["metrics"]
    detected = measure(classifier, data, metric, detector=FaceDetector())["metrics"]
    assert whole["gender_accuracy"] >= 0.85 and whole["age_group_one_off_accuracy"] >= 0.75
    assert detected["faces_found_rate"] >= 0.97 and detected["gender_accuracy"] >= whole["gender_accuracy"] - 0.06
