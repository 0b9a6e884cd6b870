"""benchmarks/recut_chips.py: a prepared dataset's rows cut afresh from their original photos, another way."""

import json
import sys

import pytest
from PIL import Image

from conftest import REPO
from genderage.data.imagefolder import face_chip_of

EXAMPLES = REPO / "genderage" / "serving" / "examples"
sys.path.insert(0, str(REPO / "benchmarks"))
import recut_chips  # noqa: E402


def row(name: str, photo) -> dict:
    return {"file_name": name, "source_path": str(photo), "source": "examples", "gender": "female", "age": 40,
            "age_group": "40-49", "race": None}


@pytest.fixture
def prepared(tmp_path):
    """A prepared folder whose rows point at the example photos, a photo without a face and a missing file."""
    folder = tmp_path / "prepared"
    splits = {"train": [row("a.jpg", EXAMPLES / "astronaut.png"), row("b.jpg", tmp_path / "gone.jpg")],
              "validation": [row("c.jpg", EXAMPLES / "coffee.png")], "test": [row("d.jpg", EXAMPLES / "grace_hopper.jpg")]}
    for split, rows in splits.items():
        (folder / split).mkdir(parents=True)
        (folder / split / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "report.json").write_text(json.dumps({"splits": {split: len(rows) for split, rows in splits.items()}}))
    (folder / "README.md").write_text("card")
    return folder


def test_rows_are_recut_as_dlib_chips_and_the_rest_reported(prepared, tmp_path, capsys):
    output = tmp_path / "recut"
    assert recut_chips.main([str(prepared), "--chip", "dlib", "--output", str(output), "--workers", "1"]) == 0
    assert "train: 1 of 2 faces cut (1 left out)" in capsys.readouterr().out
    report = json.loads((output / "report.json").read_text())
    assert report["splits"] == {"train": 1, "validation": 0, "test": 1}
    assert {(r["split"], r["reason"].split(":")[0]) for r in report["recut_left_out"]} == {("train", "unreadable"), ("validation", "no face found")}
    assert face_chip_of(output) == "dlib" and face_chip_of(prepared) is None
    kept = [json.loads(line) for line in (output / "train" / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in kept] == ["a.jpg"]
    chip = Image.open(output / "train" / "a.jpg")
    assert chip.width == chip.height


def test_a_bad_chip_or_an_existing_output_is_refused(prepared, tmp_path):
    with pytest.raises(SystemExit):
        recut_chips.main([str(prepared), "--chip", "arcface", "--output", str(tmp_path / "x")])
    with pytest.raises(SystemExit):
        recut_chips.main([str(prepared), "--chip", "dlib", "--output", str(prepared)])
