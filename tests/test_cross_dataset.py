"""The cross-dataset report on tiny generated data: one row per test set, right n, the card section kept single,
fairness slices, stability figures and mistakes sheets in the rows."""

import json
import sys

import pytest
from PIL import Image

from conftest import REPO, prepared
from genderage.labels import JOINT_LABELS
from genderage.measure.cross_dataset import training_sources
from genderage.training.model_card import replace_section
from genderage.training.modeling import build_timm_model, save_model

sys.path.insert(0, str(REPO / "benchmarks"))
import cross_dataset  # noqa: E402

EXISTING_KEYS = {"name", "data", "source", "trained_on", "held_out_split", "n", "skipped", "gender_accuracy", "gender_ece"}
STABILITY = tuple(f"{name}_p_female_delta_{figure}" for name in ("mirror", "jpeg") for figure in ("mean", "p95", "max"))
REFRAME = ("reframe_p_female_delta_mean", "reframe_p_female_delta_p95", "reframe_p_female_delta_max")
CARD = "---\nlicense: other\n---\n# tiny\n\n## Results\n\nr\n\n## Limitations and bias\n- l\n"


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "model"
    save_model(*build_timm_model("test_efficientnet", JOINT_LABELS, 32), folder)
    (folder / "README.md").write_text(CARD)
    # As the Trainer writes it: validation metrics sliced by source name the training sources.
    (folder / "metrics.json").write_text(json.dumps({"validation": {"n/source=utkface": 4}, "test": {}}))
    return folder


def test_table_has_one_row_per_test_set_and_the_card_section_is_replaced(utkface_dir, folders_dir, model_dir, tmp_path):
    data_dir = prepared(tmp_path, f"utkface={utkface_dir}")
    test_count = sum(1 for _ in open(data_dir / "test" / "metadata.jsonl"))
    args = ["--model", str(model_dir), "--data-dir", str(data_dir), "--no-detect",
            "--test", f"mw=folders={folders_dir}",
            "--json", str(tmp_path / "cross.json"), "--markdown", str(tmp_path / "cross.md"), "--update-card"]
    assert cross_dataset.main(args + ["--limit", "5", "--sheets", str(model_dir / "cross_dataset")]) == 0
    report = json.loads((tmp_path / "cross.json").read_text())
    assert report["training_sources"] == ["utkface"]
    rows = {row["name"]: row for row in report["rows"]}
    assert list(rows) == ["utkface (test split)", "mw"]
    assert rows["mw"]["n"] == 5 and rows["utkface (test split)"]["n"] == min(5, test_count)
    assert rows["utkface (test split)"]["trained_on"] is True and rows["mw"]["trained_on"] is False
    assert {"gender_accuracy", "gender_ece"} <= set(rows["mw"]) and "age_group_accuracy" not in rows["mw"]  # no age labels
    assert EXISTING_KEYS <= set(rows["mw"]) and EXISTING_KEYS <= set(rows["utkface (test split)"])
    assert set(STABILITY) <= set(rows["mw"]) and all(rows["mw"][key] is not None for key in STABILITY)
    assert all(rows["mw"][key] is None for key in REFRAME)  # no detection, no re-framing of it
    assert rows["mw"]["slices"] == {} and rows["mw"]["worst_group"] is None  # no race or age labels
    assert "age_group_one_off_accuracy" in rows["utkface (test split)"]
    assert {key.split("/")[0] for key in rows["utkface (test split)"]["slices"]} == {"gender_accuracy", "n"}
    # Sheets inside the model folder are linked from its card.
    assert rows["mw"]["mistakes_sheet"] == "cross_dataset/mw_mistakes.png"
    assert (model_dir / "cross_dataset" / "utkface_test_split_mistakes.png").is_file()

    assert cross_dataset.main(args + ["--sheets", str(model_dir / "cross_dataset")]) == 0  # no limit: replaced, not added
    report = json.loads((tmp_path / "cross.json").read_text())
    assert [row["n"] for row in report["rows"]] == [test_count, 20]
    card = (model_dir / "README.md").read_text()
    assert card.count("## Cross-dataset results") == 1
    assert card.index("## Results") < card.index("## Cross-dataset results") < card.index("## Limitations and bias")
    assert card.count("| mw (`folders=") == 1 and "at most 5 images" not in card
    assert (tmp_path / "cross.md").read_text().count("\n| mw") == 1
    assert "](cross_dataset/mw_mistakes.png)" in card and "| mirror ΔP p95 |" in card


def test_sheets_elsewhere_and_no_stability(utkface_dir, model_dir, tmp_path):
    args = ["--model", str(model_dir), "--no-detect", "--test", f"utk=utkface={utkface_dir}", "--no-stability",
            "--sheets", str(tmp_path / "sheets"), "--json", str(tmp_path / "cross.json"), "--update-card"]
    assert cross_dataset.main(args) == 0
    row = json.loads((tmp_path / "cross.json").read_text())["rows"][0]
    assert EXISTING_KEYS <= set(row) and all(row[key] is None for key in STABILITY + REFRAME)
    sheet = tmp_path / "sheets" / "utk_mistakes.png"
    assert row["mistakes_sheet"] == str(sheet.resolve()) and Image.open(sheet).width > 0
    assert not (model_dir / "cross_dataset").exists()
    card = (model_dir / "README.md").read_text()
    assert "utk_mistakes.png" not in card  # outside the model folder: not linked from its card
    assert "| race | " in card and "| age group | 0-2 | 3-9 |" in card  # UTKFace has race and age labels
    assert row["slices"]["n/race=White"] == 8 and row["worst_group"] is None  # no slice of 20 photos

    without = [a for a in args if a not in ("--sheets", str(tmp_path / "sheets"))]
    assert cross_dataset.main(without) == 0  # no --sheets, no sheet: they show research photos, so only on request
    assert json.loads((tmp_path / "cross.json").read_text())["rows"][0]["mistakes_sheet"] is None
    assert not (model_dir / "cross_dataset").exists()


def test_replace_section_inserts_then_replaces():
    once = replace_section(CARD, "Calibration", "T = 1.5")
    twice = replace_section(once, "Calibration", "T = 2.0")
    assert once.count("## Calibration") == twice.count("## Calibration") == 1
    assert "T = 2.0" in twice and "T = 1.5" not in twice
    assert twice.endswith("## Limitations and bias\n- l\n")  # the following section is untouched
    assert replace_section("# card\n", "X", "body").endswith("## X\n\nbody\n\n")


def test_training_sources_unknown_without_records(tmp_path):
    save_model(*build_timm_model("test_efficientnet", JOINT_LABELS, 32), tmp_path)
    assert training_sources(tmp_path) is None


def test_originals_of_a_prepared_split_are_a_held_out_row(utkface_dir, model_dir, tmp_path):
    data_dir = prepared(tmp_path, f"utkface={utkface_dir}")
    originals = [json.loads(line)["source_path"] for line in open(data_dir / "test" / "metadata.jsonl")]
    args = ["--model", str(model_dir), "--data-dir", str(data_dir), "--no-detect", "--no-stability",
            "--test", "utk=originals:utkface", "--json", str(tmp_path / "cross.json")]
    assert cross_dataset.main(args) == 0
    rows = json.loads((tmp_path / "cross.json").read_text())["rows"]
    assert [row["name"] for row in rows] == ["utk"]  # no automatic rows beside it
    assert rows[0]["n"] == len(originals) > 0 and rows[0]["held_out_split"] is True and rows[0]["trained_on"] is True
    # The photos themselves are read: the prepared chips are not needed.
    for chip in (data_dir / "test").glob("*.jpg"):
        chip.unlink()
    assert cross_dataset.main(args) == 0 and json.loads((tmp_path / "cross.json").read_text())["rows"][0]["n"] == len(originals)


def test_age_detail_pools_children_and_names_the_worst_race_of_enough_photos():
    from genderage.measure.cross_dataset import age_detail
    from genderage.measure.leaderboard import age_table

    metrics = {"age_group_accuracy": 0.5, "age_group_one_off_accuracy": 0.9,
               "age_group_accuracy/age_group=0-2": 1.0, "n/age_group=0-2": 10,
               "age_group_accuracy/age_group=3-9": 0.5, "n/age_group=3-9": 30,
               "age_group_accuracy/race=Black": 0.4, "n/race=Black": 25,
               "age_group_accuracy/race=White": 0.6, "n/race=White": 40,
               "age_group_accuracy/race=Indian": 0.1, "n/race=Indian": 5,  # too few to be named
               "age_group_accuracy/race=unknown": 0.0, "n/race=unknown": 50}
    detail = age_detail(metrics)
    assert detail["children_age_group_accuracy"] == pytest.approx((10 * 1.0 + 30 * 0.5) / 40)
    assert detail["worst_race"] == "Black" and detail["worst_race_age_group_accuracy"] == 0.4
    assert set(detail["age_group_accuracy_by_race"]) == {"Black", "Indian", "White"}
    assert age_detail({"gender_accuracy": 0.9}) == {}
    table = age_table([{"model": "m", "sets": {"fairface": {"age": detail}, "men_women": {"age": {}}}}])
    assert "| m | fairface | 50.0% | 90.0% | 62.5% | Black 40.0% |" in table and "men_women" not in table
