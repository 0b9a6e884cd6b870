from pathlib import Path

import pytest

from conftest import random_image
from genderage.data.sources import SourceError, parse_source_spec, read_source


def read(text: str):
    return read_source(parse_source_spec(text))


def test_utkface_names_give_age_gender_race(utkface_dir: Path):
    (utkface_dir / "39_1_20170116174525125.jpg.chip.jpg").write_bytes(b"x")  # malformed: no race field
    (utkface_dir / "notes.txt").write_text("not a photo")
    result = read(f"utkface={utkface_dir}")
    assert len(result.records) == 40
    first = next(r for r in result.records if Path(r.source_path).name.startswith("25_1_3_"))
    assert (first.age, first.age_group, first.gender, first.race) == (25, "20-29", "female", "Indian")
    assert [Path(p).name for p, _ in result.dropped] == ["39_1_20170116174525125.jpg.chip.jpg"]
    assert [(Path(p).name, reason) for p, reason in result.ignored] == [("notes.txt", "annotation or documentation file (.txt)")]


def test_folders_map_common_names_case_insensitively(tmp_path: Path):
    for i, folder in enumerate(["Man", "WOMAN", "female"]):
        (tmp_path / folder).mkdir()
        random_image(i).save(tmp_path / folder / "a.jpg")
    genders = sorted((Path(r.source_path).parent.name, r.gender) for r in read(f"folders={tmp_path}").records)
    assert genders == [("Man", "male"), ("WOMAN", "female"), ("female", "female")]


def test_folders_age_groups_and_nesting(tmp_path: Path):
    for path in ["men/20-29/a.jpg", "women/70+/b.jpg", "1-10/c.jpg"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        random_image(len(path)).save(tmp_path / path)
    records = {Path(r.source_path).name: (r.gender, r.age_group) for r in read(f"folders={tmp_path}").records}
    assert records == {"a.jpg": ("male", "20-29"), "b.jpg": ("female", "70+"), "c.jpg": (None, "3-9")}


def test_unknown_folder_is_an_error_listing_what_was_found(tmp_path: Path):
    for folder in ["men", "cats"]:
        (tmp_path / folder).mkdir()
        random_image(0).save(tmp_path / folder / "a.jpg")
    with pytest.raises(SourceError, match=r"\['cats'\]"):
        read(f"folders={tmp_path}")
    records = read(f"folders={tmp_path},map=cats:female").records
    assert {r.gender for r in records} == {"male", "female"}


def test_image_outside_class_folders_is_dropped_not_lost(folders_dir: Path):
    random_image(7).save(folders_dir / "stray.jpg")
    result = read(f"folders={folders_dir}")
    assert [(Path(p).name, reason) for p, reason in result.dropped] == [("stray.jpg", "image is not inside a class folder")]


def test_csv_fairface_style(tmp_path: Path):
    (tmp_path / "train").mkdir()
    for i in range(4):
        random_image(i).save(tmp_path / "train" / f"{i}.jpg")
    (tmp_path / "labels.csv").write_text(
        "file,age,gender,race,service_test\n"
        "train/0.jpg,20-29,Male,East Asian,True\n"
        "train/1.jpg,more than 70,Female,White,False\n"
        "train/2.jpg,3-9,Robot,White,False\n"
        "train/9.jpg,3-9,Male,White,False\n"
        "train/3.jpg,elderly,Male,White,False\n"
    )
    result = read(f"csv={tmp_path / 'labels.csv'}")
    assert [(r.gender, r.age_group, r.race) for r in result.records] == [("male", "20-29", "East Asian"), ("female", "70+", "White")]
    reasons = sorted(reason for _, reason in result.dropped)
    assert reasons == ["listed in the annotation file but not found", "unknown age value 'elderly'", "unknown gender value 'Robot'"]


def test_csv_column_names_are_configurable(tmp_path: Path):
    random_image(0).save(tmp_path / "x.png")
    (tmp_path / "a.csv").write_text("img;sex\n".replace(";", ",") + "x.png,f\n")
    records = read(f"csv={tmp_path / 'a.csv'},file_col=img,gender_col=sex").records
    assert [(r.gender, r.age_group) for r in records] == [("female", None)]
    with pytest.raises(SourceError, match="column 'nope' not found"):
        read(f"csv={tmp_path / 'a.csv'},file_col=nope")


def test_pattern_regex_with_commas_and_named_groups(tmp_path: Path):
    for name in ["001-Female-23.jpg", "002-Male-7.jpg", "bad.jpg"]:
        random_image(len(name)).save(tmp_path / name)
    result = read(rf"pattern={tmp_path},regex=^\d{{1,4}}-(?P<gender>\w+)-(?P<age>\d+)\.jpg$")
    assert sorted((r.gender, r.age, r.age_group) for r in result.records) == [("female", 23, "20-29"), ("male", 7, "3-9")]
    assert [Path(p).name for p, _ in result.dropped] == ["bad.jpg"]


def test_feedback_folder(tmp_path: Path):
    (tmp_path / "images").mkdir()
    random_image(0).save(tmp_path / "images" / "f1.jpg")
    (tmp_path / "feedback.csv").write_text(
        "file_name,gender,age_group,predicted_gender,predicted_age_group,timestamp\nimages/f1.jpg,female,30-39,male,20-29,2026-01-01T00:00:00\n"
    )
    records = read(f"feedback={tmp_path}").records
    assert [(r.source, r.gender, r.age_group) for r in records] == [("feedback", "female", "30-39")]


@pytest.mark.parametrize("text,message", [("utkface=/no/such/dir", "does not exist"), ("faces=/tmp", "unknown source kind"), ("utkface", "KIND=PATH")])
def test_bad_source_arguments_are_clear_errors(text, message):
    with pytest.raises(SourceError, match=message):
        read(text)


def test_empty_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SourceError, match="no image files"):
        read(f"folders={tmp_path}")
