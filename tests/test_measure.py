"""The measuring flow's parts on tiny inputs: one shared run of the path, stability, mistakes sheets, fairness, the card."""

import evaluate
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from conftest import random_image
from genderage import METRIC_MODULE
from genderage.data.labelled import LabelledImages
from genderage.labels import JOINT_LABELS, Prediction
from genderage.measure import contact_sheet
from genderage.measure.accuracy import PathAnswers, measure, predict_path
from genderage.measure.cross_dataset import fairness_slices, sheet_file_name, sheet_reference, worst_group
from genderage.measure.stability import jpeg_resave, p_female_deltas, stability
from genderage.serving.inference import GenderAgeClassifier
from genderage.training.model_card import cross_dataset_markdown
from genderage.training.modeling import build_timm_model, save_model

MARK = 16  # px: a JPEG block (with 2x2 chroma subsampling), so the fake detector's marker survives a re-save


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny timm model whose answers depend on the photo (as built, its activations vanish: every answer is uniform)."""
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    model, processor = build_timm_model("test_efficientnet", JOINT_LABELS, 32)
    with torch.no_grad():
        for weight in (p for p in model.parameters() if p.dim() > 1):
            torch.nn.init.kaiming_normal_(weight)
    save_model(model, processor, folder)
    return GenderAgeClassifier.from_pretrained(str(folder), backend="torch")


def symmetric(seed: int, size: int = 64) -> Image.Image:
    """A photo equal to its own mirror image."""
    left = np.array(random_image(seed, size))[:, : size // 2]
    return Image.fromarray(np.concatenate([left, left[:, ::-1]], axis=1))


def marked(image: Image.Image, left: bool = True, right: bool = False) -> Image.Image:
    """The image with a pure-red square in its top-left (and/or top-right) corner: the fake detector's "face"."""
    pixels = np.array(image)
    if left:
        pixels[:MARK, :MARK] = (255, 0, 0)
    if right:
        pixels[:MARK, -MARK:] = (255, 0, 0)
    return Image.fromarray(pixels)


class CornerDetector:
    """A stand-in FaceDetector: a face (the whole photo) exactly when the top-left corner holds the red marker."""

    def largest_crops(self, images, reframe=None):
        """The whole photo; re-framed, its right three quarters."""
        crops = []
        for image in images:
            corner = np.array(image.convert("RGB"))[:MARK, :MARK].reshape(-1, 3).mean(0)
            crop = image.crop((image.width // 4, 0, image.width, image.height)) if reframe else image.copy()
            crops.append(crop if corner[0] > 200 and corner[1] < 60 and corner[2] < 60 else None)
        return crops


class CountingClassifier:
    """Wraps a classifier and counts the images it is asked about."""

    def __init__(self, inner):
        self.inner, self.images = inner, 0

    def probabilities(self, images, flip=False, batch_size=64):
        self.images += len(images)
        return self.inner.probabilities(images, flip, batch_size)

    def predict(self, images, flip=False, batch_size=64):
        self.images += len(images)
        return self.inner.predict(images, flip, batch_size)


def test_measure_reuses_a_run_of_the_path(classifier):
    data = LabelledImages([marked(random_image(i, 64)) if i < 3 else random_image(i, 64) for i in range(6)],
                          [{"gender": "female" if i % 2 else "male", "age_group": "20-29", "age": 25, "race": "White",
                            "source": "x"} for i in range(6)])
    metric = evaluate.load(METRIC_MODULE)
    counting = CountingClassifier(classifier)
    answers = predict_path(counting, data.images, CornerDetector())
    seen = counting.images
    reused = measure(counting, data, metric, answers=answers)["metrics"]
    assert counting.images == seen  # the model did not run again
    fresh = measure(classifier, data, metric, detector=CornerDetector())["metrics"]  # the old signature still works
    speed = "inference_images_per_second"
    assert {k: v for k, v in reused.items() if k != speed} == {k: v for k, v in fresh.items() if k != speed}
    assert reused["faces_found_rate"] == 0.5  # half the photos carry the marker


def test_mirroring_a_symmetric_photo_changes_nothing(classifier):
    same = [symmetric(i) for i in range(4)]
    assert all(np.array_equal(np.array(image), np.array(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))) for image in same)
    result = stability(classifier, same, batch_size=2)
    assert result["mirror_p_female_delta_mean"] == 0.0 and result["mirror_p_female_delta_p95"] == 0.0
    assert result["jpeg_p_female_delta_mean"] > 0  # a re-save still changes the pixels

    other = stability(classifier, [random_image(i, 64) for i in range(4)])
    assert other["mirror_p_female_delta_mean"] > 0 and other["mirror_p_female_delta_p95"] > 0


def test_stability_counts_only_photos_with_a_face_in_both_versions(classifier):
    detector = CornerDetector()
    both = [marked(symmetric(i), right=True) for i in range(3)]  # a face in the photo, its mirror and its re-save
    none = [random_image(10 + i, 64) for i in range(3)]  # never a face
    original_only = [marked(random_image(20 + i, 64)) for i in range(3)]  # the mirror moves the marker: no face there
    images = both + none + original_only
    assert detector.largest_crops([jpeg_resave(image) for image in both + original_only]) != [None] * 6
    answers = predict_path(classifier, images, detector)
    assert answers.found == [True] * 3 + [False] * 3 + [True] * 3

    mirror = p_female_deltas(classifier, images, answers, ImageOps.mirror, detector)
    jpeg = p_female_deltas(classifier, images, answers, jpeg_resave, detector)
    assert np.array_equal(np.isnan(mirror), [False] * 3 + [True] * 6)
    assert np.array_equal(np.isnan(jpeg), [False] * 3 + [True] * 3 + [False] * 3)
    reframe = p_female_deltas(classifier, images, answers, None, detector, reframe=(1.2, 0.1))
    assert np.array_equal(np.isnan(reframe), np.logical_not(answers.found))  # the photo is the same: the same faces
    result = stability(classifier, images, answers, detector)
    assert result["mirror_p_female_delta_mean"] == 0.0 and result["mirror_p_female_delta_max"] == 0.0  # only the symmetric photos count
    assert result["jpeg_p_female_delta_mean"] == pytest.approx(np.nanmean(jpeg))
    assert result["jpeg_p_female_delta_max"] == pytest.approx(np.nanmax(jpeg))
    assert 0 < result["reframe_p_female_delta_mean"] == pytest.approx(np.nanmean(reframe))
    # Whole images instead: every photo counts, and the asymmetric ones move under a mirror; nothing to re-frame.
    whole = stability(classifier, images)
    assert whole["mirror_p_female_delta_mean"] > 0 and whole["reframe_p_female_delta_p95"] is None
    with pytest.raises(ValueError, match="same path"):
        p_female_deltas(classifier, images, answers, jpeg_resave, detector=None)


def fake_answers(cases):
    """PathAnswers from (true gender, race, age group, P(female), face found) per photo; photo i is a solid colour."""
    inputs = [Image.new("RGB", (40, 50), (i * 5 % 256, 100, 200)) for i in range(len(cases))]
    predictions = [Prediction({}, {"female": p, "male": 1 - p}) for _, _, _, p, _ in cases]
    rows = [{"gender": g, "race": r, "age_group": a, "age": None, "source": "x"} for g, r, a, _, _ in cases]
    return rows, PathAnswers(inputs, [found for *_, found in cases], predictions, True, 1.0)


def test_contact_sheet_shows_the_most_confident_mistakes_by_group(tmp_path):
    cases = [
        ("male", "Black", "20-29", 0.95, True),  # 0: wrong, Black
        ("male", "Black", "30-39", 0.70, True),  # 1: wrong, Black, less sure
        ("female", "Black", "20-29", 0.99, True),  # 2: right
        ("male", "White", "20-29", 0.99, False),  # 3: wrong but no face: left out
        ("female", None, "3-9", 0.20, True),  # 4: wrong, no race: grouped by age group
        ("female", "White", "40-49", 0.03, True),  # 5: wrong and most confident (P(male) 0.97)
        (None, "White", "20-29", 0.99, True),  # 6: no gender label
        ("male", "White", "20-29", 0.40, True),  # 7: right
    ]
    rows, answers = fake_answers(cases)
    mistakes = contact_sheet.gender_mistakes(rows, answers)
    assert [m.index for m in mistakes] == [5, 0, 4, 1]
    assert [m.predicted for m in mistakes] == ["male", "female", "male", "female"]
    assert [m.probability for m in mistakes] == pytest.approx([0.97, 0.95, 0.80, 0.70])
    groups = contact_sheet.write_mistakes_sheet(rows, answers, tmp_path / "sheets" / "x_mistakes.png", "x")
    assert {group: [m.index for m in tiles] for group, tiles in groups.items()} == {
        "race=White": [5], "race=Black": [0, 1], "age_group=3-9": [4]}
    assert list(groups) == ["race=White", "race=Black", "age_group=3-9"]  # the group with the surest mistake first
    assert contact_sheet.caption(groups["race=Black"][0]) == ["true male 20-29", "Black", "pred female 95%"]
    sheet = Image.open(tmp_path / "sheets" / "x_mistakes.png")
    tile, gap, label = contact_sheet.TILE, contact_sheet.GAP, contact_sheet.LABEL_WIDTH
    assert sheet.size == (gap + label + 6 * (tile + gap), gap + 24 + 3 * (tile + 36 + gap))
    # The first tile is the most confident mistake's crop (photo 5's colour), centred in its square.
    first = (gap + label + tile // 2, gap + 24 + tile // 2)
    assert sheet.convert("RGB").getpixel(first) == answers.inputs[5].getpixel((0, 0))


def test_contact_sheet_keeps_at_most_8_groups_of_6():
    cases = [("male", f"race{g}", None, 0.9 - g / 100 - i / 1000, True) for g in range(10) for i in range(8)]
    rows, answers = fake_answers(cases)
    groups = contact_sheet.select_mistakes(contact_sheet.gender_mistakes(rows, answers))
    assert list(groups) == [f"race=race{g}" for g in range(8)]
    assert all([m.index for m in tiles] == [g * 8 + i for i in range(6)] for g, tiles in enumerate(groups.values()))
    assert contact_sheet.draw_sheet({}, []).size == contact_sheet.sheet_size(0) == contact_sheet.sheet_size(1)


def test_fairness_slices_and_the_worst_group():
    metrics = {"gender_accuracy": 0.8, "gender_accuracy/race=Black": 0.70, "n/race=Black": 20,
               "gender_accuracy/race=Asian": 0.50, "n/race=Asian": 19,  # lowest, but too small to be named
               "gender_accuracy/race=unknown": 0.10, "n/race=unknown": 50,  # not a group
               "gender_accuracy/race=White": 0.90, "n/race=White": 200,
               "gender_accuracy/age_group=unknown": 0.8, "n/age_group=unknown": 289,  # no age labels at all
               "gender_accuracy/source=x": 0.8, "n/source=x": 289}
    slices = fairness_slices(metrics)
    assert set(slices) == {f"{name}/race={race}" for name in ("gender_accuracy", "n") for race in ("Asian", "Black", "unknown", "White")}
    assert worst_group(slices) == "race=Black"
    slices["gender_accuracy/age_group=70+"], slices["n/age_group=70+"] = 0.69, 25
    assert worst_group(slices) == "age_group=70+"
    assert worst_group(slices, min_size=300) is None


def test_sheet_names_and_references(tmp_path):
    assert sheet_file_name("men_women") == "men_women_mistakes.png"
    assert sheet_file_name("utkface (test split)") == "utkface_test_split_mistakes.png"
    assert sheet_file_name("../../etc") == "etc_mistakes.png"
    model = tmp_path / "model"
    assert sheet_reference(model / "cross_dataset" / "a.png", model) == "cross_dataset/a.png"
    assert sheet_reference(tmp_path / "out" / "a.png", model) == str((tmp_path / "out" / "a.png").resolve())


def test_card_shows_stability_fairness_tables_and_sheet_links():
    slices = {"gender_accuracy/race=White": 0.9, "n/race=White": 30, "gender_accuracy/race=Black": 0.75, "n/race=Black": 25,
              "gender_accuracy/age_group=70+": 0.6, "n/age_group=70+": 5, "gender_accuracy/age_group=3-9": 0.7, "n/age_group=3-9": 50}
    report = {"model": "m", "path": "detect", "training_sources": ["utkface"], "limit": None, "rows": [
        {"name": "utk", "data": "utkface=/d", "trained_on": False, "n": 110, "gender_accuracy": 0.8,
         "age_group_one_off_accuracy": 0.912, "mirror_p_female_delta_p95": 0.0421, "jpeg_p_female_delta_p95": None,
         "slices": slices, "worst_group": "age_group=3-9", "mistakes_sheet": "cross_dataset/utk_mistakes.png"},
        {"name": "mw", "data": "folders=/mw", "trained_on": False, "n": 20, "gender_accuracy": 0.5,
         "slices": {}, "worst_group": None, "mistakes_sheet": "/elsewhere/mw_mistakes.png"},
    ]}
    card = cross_dataset_markdown(report)
    header = next(line for line in card.splitlines() if line.startswith("| test set"))
    assert "| age-group one-off acc. |" in header and "| mirror ΔP p95 |" in header and "| JPEG ΔP p95 |" in header
    utk = next(line for line in card.splitlines() if line.startswith("| utk ("))
    assert "| 91.2% |" in utk and "| 0.042 |" in utk and utk.endswith("| 0.042 | – | – | – |")
    assert "### utk" in card and "### mw" not in card  # mw has neither slices nor a sheet inside the model folder
    assert "| race | Black | White |\n|---|---|---|\n| n | 25 | 30 |\n| gender acc. | 75.0% | 90.0% |" in card
    assert "| age group | 3-9 | 70+ |\n|---|---|---|\n| n | 50 | 5 |\n| gender acc. | 70.0% | 60.0% |" in card
    assert "Worst group (at least 20 photos): **age_group=3-9** (70.0% gender acc.)." in card
    assert "![utk: most confident gender mistakes](cross_dataset/utk_mistakes.png)" in card
    assert "elsewhere" not in card
    assert card.index("| mw (") < card.index("### utk")  # the per-set details come under the main table


def test_a_limit_spreads_over_the_whole_list():
    from genderage.data.labelled import spread

    names = [f"{age}_0_0_x.jpg" for age in range(1, 101)] + [f"{age}_1_0_x.jpg" for age in range(1, 16)]
    kept = spread(sorted(names), 100)
    assert len(kept) == len(set(kept)) == 100
    assert any(name.startswith("9") for name in kept) and kept[-1].startswith("9")  # the end of the list is reached
    assert spread(names, None) == names and spread(names, 500) == names
