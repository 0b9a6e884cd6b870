"""audit.py on small generated collections: outputs and their schema, groups, tables, datasets, resume, bad inputs,
and the adjusted shares against the argmax count on synthetic answers."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import audit
from conftest import random_image
from genderage.labels import AGE_GROUPS, JOINT_LABELS
from genderage.measure.audit import composition
from genderage.measure.labelled_faces import LabelledFaces, write_quantification


@pytest.fixture(scope="module")
def rated_model(tiny_model, tmp_path_factory):
    """The tiny model, with labelled faces in its folder (as cross_dataset.py --rates writes them)."""
    folder = tmp_path_factory.mktemp("model") / "rated"
    shutil.copytree(tiny_model, folder)
    rng = np.random.default_rng(0)
    joint = rng.dirichlet(np.ones(len(JOINT_LABELS)), 200)
    write_quantification(folder, [LabelledFaces("tiny test set", [str(i) for i in range(200)], rng.integers(0, 2, 200),
                                                rng.integers(0, len(AGE_GROUPS), 200), joint,
                                                {"gender_accuracy": 0.5, "gender_ece": 0.1, "faces_found_rate": 1.0,
                                                 "worst_group": "age_group=0-2", "worst_group_gender_accuracy": 0.4})])
    return str(folder)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """Two sub-folders: 2005/ with one face and one two-face photo, 2006/ with one face, no face and a broken file."""
    from skimage import data

    root = tmp_path_factory.mktemp("collection")
    (root / "2005").mkdir()
    (root / "2006").mkdir()
    face = Image.fromarray(data.astronaut()).resize((256, 256))
    face.save(root / "2005" / "one.jpg")
    pair = Image.new("RGB", (512, 256))
    pair.paste(face, (0, 0))
    pair.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (256, 0))
    pair.save(root / "2005" / "two.jpg")
    face.save(root / "2006" / "again.png")
    random_image(3, size=128).save(root / "2006" / "noface.png")
    (root / "2006" / "broken.jpg").write_bytes((root / "2005" / "one.jpg").read_bytes()[:300])
    return root


def run(args) -> int:
    return audit.main([*map(str, args), "--workers", "1", "--rounds", "50"])


def test_audit_writes_faces_summary_report_and_picture(collection, rated_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert run([collection, "--output", out, "--model", rated_model, "--by", "folder"]) == 0
    printed = capsys.readouterr().out
    assert "4 faces in 5 photos" in printed and "Women:" in printed and "argmax count" in printed

    faces = pd.read_parquet(out / "faces.parquet")
    per_photo = faces.groupby(faces["photo"].str.rsplit("/", n=1).str[-1])["face"].apply(list).to_dict()
    assert per_photo["one.jpg"] == [0] and per_photo["two.jpg"] == [0, 1] and per_photo["again.png"] == [0]
    assert faces.loc[faces["photo"].str.endswith("noface.png"), "reason"].item() == "no face found"
    assert "not a usable photo" in faces.loc[faces["photo"].str.endswith("broken.jpg"), "reason"].item()
    found = faces[faces["face"].notna()]
    assert np.allclose(found["p_female"] + found["p_male"], 1, atol=1e-3)
    assert np.allclose(found[[f"p_{a}" for a in AGE_GROUPS]].sum(axis=1), 1, atol=1e-3)
    assert all(len(joint) == len(JOINT_LABELS) for joint in found["p_joint"])
    assert set(faces["folder"]) == {"2005", "2006"}

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["groups"]) == {"2005", "2006"}
    for part in [summary["overall"], *summary["groups"].values()]:
        women = part["share_female"]
        assert women["low"] <= women["estimate"] <= women["high"]
        assert 0 <= part["share_female_argmax"] <= 1
        assert set(part["age_group"]) == set(AGE_GROUPS)
        assert sum(value["estimate"] for value in part["age_group"].values()) == pytest.approx(1, abs=1e-3)
    assert (summary["overall"]["n_photos"], summary["overall"]["n_faces"]) == (5, 4)
    assert (summary["groups"]["2006"]["photos_without_face"], summary["groups"]["2006"]["unusable_files"]) == (1, 1)
    assert summary["rates_from"] == "tiny test set" and summary["estimator"] == "pacc"
    assert summary["overall"]["estimators"] == {"gender": "pacc", "age_group": "pcc", "joint": "pcc"}  # measured defaults

    report = (out / "report.md").read_text()
    assert "argmax count" in report and "folder = 2005" in report and "tiny test set" in report
    assert "age_group=0-2" in report  # the model's worst group, from its measured figures
    assert Image.open(out / "composition.png").size[0] > 500


def test_resume_keeps_finished_shards_and_redoes_the_missing_one(collection, rated_model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run([collection, "--output", out, "--model", rated_model, "--shard-photos", "2"]) == 0
    shards = sorted((out / "shards").glob("part-*.parquet"))
    assert len(shards) == 3
    first = pd.read_parquet(out / "faces.parquet")
    kept = shards[0].stat().st_mtime_ns
    shards[1].unlink()
    predicted = []
    original = audit_module().face_records
    monkeypatch.setattr(audit_module(), "face_records", lambda position, rows: predicted.append(position) or original(position, rows))
    assert run([collection, "--output", out, "--model", rated_model, "--shard-photos", "2", "--resume"]) == 0
    assert sorted(predicted) == [2, 3] and shards[0].stat().st_mtime_ns == kept
    pd.testing.assert_frame_equal(pd.read_parquet(out / "faces.parquet"), first)
    # Another collection in the same folder: resume refuses to mix them.
    assert run([collection / "2005", "--output", out, "--model", rated_model, "--shard-photos", "2", "--resume"]) == 2


def audit_module():
    from genderage.measure import audit as module

    return module


def test_a_table_with_paths_and_columns_groups_by_its_column(collection, rated_model, tmp_path):
    table = tmp_path / "photos.csv"
    pd.DataFrame({"file": [str(collection / "2005" / "one.jpg"), "2006/again.png"], "outlet": ["a", "b"]}).to_csv(table, index=False)
    shutil.copytree(collection / "2006", tmp_path / "2006")  # a relative path is read from the table's folder
    out = tmp_path / "out"
    assert run([table, "--path-column", "file", "--by", "outlet", "--output", out, "--model", rated_model]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {name: group["n_faces"] for name, group in summary["groups"].items()} == {"a": 1, "b": 1}


def test_a_saved_dataset_is_audited_with_its_label_columns(collection, rated_model, tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Image(), "source": datasets.ClassLabel(names=["x", "y"])})
    images = [str(collection / "2005" / "one.jpg"), str(collection / "2006" / "again.png"), str(collection / "2006" / "noface.png")]
    datasets.Dataset.from_dict({"image": images, "source": [0, 1, 1]}, features=features).save_to_disk(tmp_path / "saved")
    out = tmp_path / "out"
    assert run(["--dataset", tmp_path / "saved", "--by", "source", "--output", out, "--model", rated_model]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["groups"]["x"]["n_faces"] == 1 and summary["groups"]["y"]["photos_without_face"] == 1
    assert pd.read_parquet(out / "faces.parquet")["photo"].str.contains(r"\[train\]\[0\]", regex=True).any()


def test_a_labelled_sample_supplies_the_rates(collection, rated_model, folders_dir, tmp_path, capsys):
    out = tmp_path / "out"
    # Random images: no face in the sample is one clear line.
    assert run([collection / "2005", "--output", out, "--model", rated_model, "--labelled", f"folders={folders_dir}"]) == 2
    assert "no face found in any of its 20 photos" in capsys.readouterr().err
    for folder in ("women", "men"):
        (tmp_path / "sample" / folder).mkdir(parents=True)
        for i in range(3):
            shutil.copy(collection / "2005" / "one.jpg", tmp_path / "sample" / folder / f"{i}.jpg")
    assert run([collection / "2005", "--output", out, "--model", rated_model, "--labelled", f"folders={tmp_path / 'sample'}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rates_from"].startswith("the labelled sample")
    assert "tiny test set" in summary["model_measured"]  # the model's own figures are still reported


@pytest.mark.parametrize("make_args, expected", [
    (lambda root, tmp: [tmp / "missing"], "no such file or folder"),
    (lambda root, tmp: [tmp], "no photos in folder"),
    (lambda root, tmp: [tmp / "no_path.csv"], "has no column 'path'"),
    (lambda root, tmp: [root, "--by", "year"], "--by year: the collection has no such column (its columns: folder)"),
])
def test_bad_inputs_get_one_line(collection, rated_model, tmp_path, capsys, make_args, expected):
    empty = tmp_path / "empty"
    empty.mkdir()
    pd.DataFrame({"file": ["a.jpg"]}).to_csv(tmp_path / "no_path.csv", index=False)
    assert run([*make_args(collection, empty if "no photos" in expected else tmp_path), "--output", tmp_path / "out", "--model", rated_model]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and expected in error


def synthetic_faces(rng, n_photos, share_female):
    """faces.parquet-like rows of one face per photo from a classifier that is right 80% of the time on gender."""
    truth = (rng.random(n_photos) >= share_female).astype(int)  # 0 = female
    answer = np.where(rng.random(n_photos) < 0.8, truth, 1 - truth)
    joint = np.zeros((n_photos, len(JOINT_LABELS)))
    joint[np.arange(n_photos), answer * len(AGE_GROUPS) + 3] = 0.9
    joint[np.arange(n_photos), (1 - answer) * len(AGE_GROUPS) + 3] = 0.1
    faces = pd.DataFrame({"photo": [str(i) for i in range(n_photos)], "face": 0.0, "reason": None,
                          "p_female": joint[:, :len(AGE_GROUPS)].sum(1), "p_male": joint[:, len(AGE_GROUPS):].sum(1)})
    faces["p_joint"] = list(joint)
    return faces, truth, joint


def test_adjusted_share_lands_near_the_truth_where_the_argmax_count_does_not():
    rng = np.random.default_rng(0)
    labelled_faces, labelled_truth, labelled_joint = synthetic_faces(rng, 2000, 0.5)
    rates = LabelledFaces("synthetic", list(labelled_faces["photo"]), labelled_truth, np.full(2000, 3), labelled_joint)
    faces, truth, _ = synthetic_faces(rng, 3000, 0.15)
    result = composition(faces, rates, rounds=100)
    true_share = float((truth == 0).mean())
    assert abs(result["share_female_argmax"] - true_share) > 0.1  # the count drifts towards 50%
    assert result["share_female"]["estimate"] == pytest.approx(true_share, abs=0.03)
    assert result["share_female"]["low"] <= true_share <= result["share_female"]["high"]


def test_a_one_gender_set_lends_its_ages_but_not_its_gender():
    men = LabelledFaces("men only", ["a", "b"], np.array([1, 1]), np.array([2, 3]), np.full((2, len(JOINT_LABELS)), 1 / 18))
    mixed = LabelledFaces("mixed", ["a", "b"], np.array([0, 1]), np.array([2, 3]), np.full((2, len(JOINT_LABELS)), 1 / 18))
    pooled = LabelledFaces.pooled([men, mixed])
    assert pooled.task("gender")[1].tolist() == [0, 1] and len(pooled.task("age_group")[1]) == 4
    assert len(set(pooled.photo)) == 4


def test_a_collection_without_faces_still_reports(rated_model, tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    random_image(3, size=128).save(tmp_path / "photos" / "noface.png")
    out = tmp_path / "out"
    assert run([tmp_path / "photos", "--output", out, "--model", rated_model]) == 0
    assert "no faces found in 1 photos" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["share_female"] is None and summary["overall"]["photos_without_face"] == 1
    assert (out / "composition.png").is_file() and "| overall | – |" in (out / "report.md").read_text()
