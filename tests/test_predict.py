"""predict.py on small generated collections: rows per face, faceless and bad files, CSV, resume, worker processes."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

import predict
from conftest import random_image
from genderage.labels import AGE_GROUPS, GENDERS
from genderage.serving.predict import done_files, list_photos, predict_photos


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """One face, two faces, no face, a truncated JPEG and a text file named .jpg."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    face = Image.fromarray(data.astronaut()).resize((256, 256))
    face.save(folder / "one.jpg")
    pair = Image.new("RGB", (512, 256))
    pair.paste(face, (0, 0))
    pair.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (256, 0))
    pair.save(folder / "two.jpg")
    random_image(3, size=128).save(folder / "noface.png")
    (folder / "broken.jpg").write_bytes((folder / "one.jpg").read_bytes()[:300])
    (folder / "text.jpg").write_text("not a photo")
    return folder


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_file(rows):
    grouped = {}
    for row in rows:
        grouped.setdefault(row["file"].rsplit("/", 1)[-1], []).append(row)
    return grouped


def test_one_row_per_face_and_one_per_faceless_or_bad_photo(photos, tiny_model, tmp_path):
    out = tmp_path / "faces.jsonl"
    counts = predict_photos([str(photos)], out, tiny_model, progress=False)
    rows = by_file(read_jsonl(out))
    assert set(rows) == {"one.jpg", "two.jpg", "noface.png", "broken.jpg", "text.jpg"}
    assert [r["face"] for r in rows["one.jpg"]] == [0] and [r["face"] for r in rows["two.jpg"]] == [0, 1]
    face = rows["one.jpg"][0]
    assert face["reason"] is None and len(face["box"]) == 4 and 0 < face["detector_confidence"] <= 1
    assert set(face["gender"]) == set(GENDERS) and set(face["age_group"]) == set(AGE_GROUPS)
    assert abs(sum(face["gender"].values()) - 1) < 1e-3 and 0 < face["age"] < 100
    assert rows["noface.png"] == [{**rows["noface.png"][0], "face": None, "box": None, "reason": "no face found"}]
    for bad in ("broken.jpg", "text.jpg"):
        assert len(rows[bad]) == 1 and "not a usable photo" in rows[bad][0]["reason"] and rows[bad][0]["gender"] is None
    assert counts | {"seconds": 0} == {"photos": 5, "faces": 3, "no_face": 1, "bad": 2, "skipped": 0, "seconds": 0}


def test_images_too_small_for_a_face_get_a_plain_reason(tiny_model, tmp_path):
    for size in [(1, 1), (5, 5), (11, 11), (1, 400), (400, 2)]:
        Image.new("RGB", size, (200, 150, 120)).save(tmp_path / f"{size[0]}x{size[1]}.png")
    out = tmp_path / "faces.jsonl"
    counts = predict_photos([str(tmp_path)], out, tiny_model, progress=False)
    assert [row["reason"] for row in read_jsonl(out)] == ["too small to contain a face"] * 5
    assert counts["no_face"] == 5 and counts["bad"] == 0


def test_csv_resume_skips_done_photos(photos, tiny_model, tmp_path):
    out = tmp_path / "faces.csv"
    first = predict_photos([str(photos / "one.jpg"), str(photos / "text.jpg")], out, tiny_model, progress=False)
    assert first["photos"] == 2
    again = predict_photos([str(photos / "*.jpg"), str(photos / "*.png")], out, tiny_model, resume=True, progress=False)
    assert again["skipped"] == 2 and again["photos"] == 3  # two.jpg, broken.jpg, noface.png
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    files = [row["file"].rsplit("/", 1)[-1] for row in rows]
    assert sorted(files) == sorted(["one.jpg", "text.jpg", "two.jpg", "two.jpg", "broken.jpg", "noface.png"])  # header once, no repeats
    one = rows[files.index("one.jpg")]
    assert abs(float(one["p_female"]) + float(one["p_male"]) - 1) < 1e-3 and one["x0"] != "" and one["reason"] == ""
    assert predict_photos([str(photos)], out, tiny_model, resume=True, progress=False)["photos"] == 0


def test_interrupted_last_line_is_cut_and_redone(tmp_path):
    out = tmp_path / "faces.jsonl"
    out.write_text(json.dumps({"file": "a.jpg"}) + "\n" + '{"file": "b.j')
    assert done_files(out) == {"a.jpg"} and out.read_text().endswith("}\n")


def test_inputs_from_folders_globs_and_list_files(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "sub/b.png", "notes.md"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("a.jpg\n# a comment\n\nsub/b.png\nmissing.jpg\n")
    assert list_photos([str(tmp_path)]) == [str(tmp_path / "a.jpg"), str(tmp_path / "sub/b.png")]  # images only
    assert list_photos([str(tmp_path / "**/*.png")]) == [str(tmp_path / "sub/b.png")]
    assert list_photos([str(tmp_path / "list.txt"), str(tmp_path / "a.jpg")]) == [str(tmp_path / n) for n in ("a.jpg", "sub/b.png", "missing.jpg")]


def test_worker_processes_give_the_same_rows(photos, tiny_model, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    predict_photos([str(photos)], one, tiny_model, progress=False)
    assert predict.main([str(photos), "--output", str(two), "--model", tiny_model, "--workers", "2", "--chunk", "2"]) == 0
    ours, theirs = read_jsonl(one), read_jsonl(two)
    assert [(r["file"], r["face"], r["reason"]) for r in ours] == [(r["file"], r["face"], r["reason"]) for r in theirs]
    assert np.allclose([r["age"] or 0 for r in ours], [r["age"] or 0 for r in theirs], atol=0.2)


def test_output_extension_is_checked(photos, tiny_model, tmp_path, capsys):
    assert predict.main([str(photos), "--output", str(tmp_path / "faces.txt"), "--model", tiny_model]) == 2
    assert ".jsonl or .csv" in capsys.readouterr().err
