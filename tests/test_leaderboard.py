"""The model leaderboard: every model on the same detected faces, a row each, through benchmarks/compare_models.py."""

import json
import shutil
import sys

import pytest
from PIL import Image, ImageOps

from conftest import REPO, prepared
from genderage.serving.demo import EXAMPLES


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder-per-class source of real faces (the example portraits, resized and mirrored) and a faceless photo."""
    root = tmp_path_factory.mktemp("photos")
    (root / "women").mkdir()
    (root / "men").mkdir()
    for i, name in enumerate(("astronaut.png", "grace_hopper.jpg")):
        image = Image.open(EXAMPLES / name).convert("RGB")
        image.resize((300, 300)).save(root / "women" / f"{i}_a.jpg")
        ImageOps.mirror(image).resize((260, 320)).save(root / "women" / f"{i}_b.jpg")
    shutil.copy(EXAMPLES / "coffee.png", root / "men" / "coffee.png")
    return root


def test_the_shipped_model_describes_itself():
    from genderage.measure.leaderboard import describe_model

    row = describe_model(REPO / "models" / "default")
    assert row["backbone"] == "resnet 32/64/128/256/256" and row["resolution"] == 128 and row["epochs"] == 2
    assert row["face_chip"] is None  # cut around the detector's box
    assert 1 < row["onnx_mb"] < 50


def test_a_local_start_is_named_from_the_card(tmp_path):
    from genderage.measure.leaderboard import describe_model

    shutil.copy(REPO / "models" / "default" / "config.json", tmp_path / "config.json")
    (tmp_path / "README.md").write_text("# a run\n\nFine-tuned from `runs/dlib_distil` with [genderage](https://x).\n")
    assert describe_model(tmp_path)["init"] == "runs/dlib_distil"


def test_compare_models_writes_a_row_per_model(photos, tmp_path, capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import compare_models

    from genderage.training.wise_ft import wise_ft

    # Two models of one architecture: the shipped one and a WiSE-FT mix of it with itself (the same weights).
    mix = wise_ft(REPO / "models" / "default", REPO / "models" / "default", 0.5, tmp_path / "mix")
    out = tmp_path / "board"
    code = compare_models.main([str(REPO / "models" / "default"), str(mix), "--source", f"folders={photos},name=examples",
                                "--markdown", str(out) + ".md", "--json", str(out) + ".json", "--plot", str(out) + ".png"])
    assert code == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "board.json").read_text())
    assert [row["model"] for row in rows] == [str(REPO / "models" / "default"), str(mix)]
    assert rows[1]["init"] == "WiSE-FT mix, α = 0.5"
    shipped, mixed = (row["sets"]["examples"] for row in rows)
    assert shipped["n"] == 5 and shipped["faces_found"] == pytest.approx(0.8)  # four portraits found, the coffee cup not
    assert shipped["mirror_p95"] is not None and 0 <= shipped["reframe_p95"] <= 1
    assert shipped["worst_group"] is None  # no race or age labels, and no group of 20 photos: nothing to name
    # The int8 model.onnx and the fp32 export of the same weights answer alike: at most one photo of five differs.
    assert round(abs(shipped["gender_accuracy"] - mixed["gender_accuracy"]) * shipped["n"]) <= 1
    assert rows[0]["ms_per_face"] > 0 and rows[1]["onnx_mb"] > rows[0]["onnx_mb"]  # fp32 against the shipped int8
    table = (tmp_path / "board.md").read_text()
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 3 and "examples: gender / age" in table  # header, two rows
    assert (tmp_path / "board.png").stat().st_size > 5000


def test_prepared_sets_are_measured_on_their_original_photos(photos, tmp_path):
    from genderage.data.labelled import originals_of_prepared

    data_dir = prepared(tmp_path, f"folders={photos}")
    split = next(s for s in ("test", "validation", "train") if (data_dir / s / "metadata.jsonl").read_text().strip())
    originals = originals_of_prepared(str(data_dir), split)
    rows = [json.loads(line) for line in (data_dir / split / "metadata.jsonl").read_text().splitlines()]
    assert len(originals.images) == len(rows) > 0
    assert originals.images[0].size == Image.open(rows[0]["source_path"]).size
