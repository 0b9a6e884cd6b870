import pytest

from genderage.labels import AGE_GROUPS, JOINT_LABELS, age_to_group, normalise_gender, parse_age_label, split_joint_label


@pytest.mark.parametrize("age,group", [(0, "0-2"), (2, "0-2"), (3, "3-9"), (9, "3-9"), (10, "10-19"), (29, "20-29"), (69, "60-69"), (70, "70+"), (116, "70+")])
def test_age_bins_follow_fairface(age, group):
    assert age_to_group(age) == group


@pytest.mark.parametrize(
    "text,expected",
    [("34", (34, "30-39")), ("20-29", (None, "20-29")), ("1-10", (None, "3-9")), ("more than 70", (None, "70+")),
     ("70+", (None, "70+")), ("20_29", (None, "20-29")), ("teen", (None, None)), ("", (None, None))],
)
def test_parse_age_label(text, expected):
    assert parse_age_label(text) == expected


@pytest.mark.parametrize("text,gender", [("Male", "male"), ("women", "female"), ("F", "female"), ("Man", "male"), ("cat", None)])
def test_normalise_gender(text, gender):
    assert normalise_gender(text) == gender


def test_joint_labels_are_gender_major_and_invertible():
    assert len(JOINT_LABELS) == 18
    assert JOINT_LABELS[0] == "female, 0-2" and JOINT_LABELS[9] == "male, 0-2"
    assert all(split_joint_label(label) in [(g, a) for g in ("female", "male") for a in AGE_GROUPS] for label in JOINT_LABELS)


def test_from_pipeline_gives_gender_age_and_expected_age():
    from genderage import from_pipeline
    from genderage.labels import JOINT_LABELS

    scores = dict.fromkeys(JOINT_LABELS, 0.0) | {"female, 20-29": 0.5, "female, 30-39": 0.2, "male, 20-29": 0.3}
    answer = sorted(({"label": k, "score": v} for k, v in scores.items()), key=lambda item: -item["score"])
    prediction = from_pipeline(answer)
    assert prediction.gender["female"] == pytest.approx(0.7) and prediction.age_group["20-29"] == pytest.approx(0.8)
    assert prediction.age == pytest.approx(0.8 * 24.5 + 0.2 * 34.5)
    with pytest.raises(ValueError, match="top_k=18"):
        from_pipeline(answer[:5])  # the pipeline's default top_k
