"""The local evaluate module against hand-computed values."""

import evaluate
import numpy as np
import pytest

from conftest import REPO

METRIC = evaluate.load(str(REPO / "genderage" / "genderage_metric"))


def one_hot(indices, width):
    probabilities = np.zeros((len(indices), width))
    probabilities[np.arange(len(indices)), indices] = 1.0
    return probabilities


def test_joint_task_metrics_by_hand():
    # Truth: female 20-29, male 30-39, male 50-59, female 70+ (joint index = gender*9 + age group).
    # Predicted: right, right, female 40-49 (gender wrong, age one group off), female 0-2 (gender right, age far off).
    result = METRIC.compute(
        predictions=one_hot([3, 13, 5, 0], 18), references=[3, 13, 15, 8], task="gender_age",
        ages=[25, 35, None, 77], slices={"race": ["a", "a", "b", "b"]},
    )
    assert result["joint_accuracy"] == 0.5
    assert result["gender_accuracy"] == 0.75
    assert result["gender_recall/female"] == 1.0 and result["gender_recall/male"] == 0.5
    # female: precision 2/3, recall 1 → F1 0.8; male: precision 1, recall 0.5 → F1 2/3.
    assert result["gender_macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert result["gender_confusion_matrix"] == [[2, 0], [1, 1]]
    assert result["age_group_accuracy"] == 0.5
    assert result["age_group_one_off_accuracy"] == 0.75
    # Expected ages are group midpoints: |24.5-25| + |34.5-35| + |1-77| over the 3 known ages.
    assert result["age_mae"] == pytest.approx((0.5 + 0.5 + 76) / 3)
    assert result["gender_accuracy/race=a"] == 1.0 and result["gender_accuracy/race=b"] == 0.5
    assert result["n/race=b"] == 2


def test_marginals_come_from_summed_joint_probabilities():
    probabilities = np.zeros((1, 18))
    probabilities[0, [0, 1, 2]] = 0.2  # female, spread over three age groups
    probabilities[0, 9 + 3] = 0.4  # male 20-29 is the single most likely joint label
    result = METRIC.compute(predictions=probabilities, references=[2], task="gender_age")
    assert result["joint_accuracy"] == 0.0  # argmax is male 20-29
    assert result["gender_accuracy"] == 1.0  # but female totals 0.6


def test_worst_slice_ignores_tiny_slices():
    references = [0] * 30 + [1] * 30 + [0] * 3
    predictions = one_hot([0] * 30 + [1] * 20 + [0] * 10 + [1] * 3, 2)
    slices = {"source": ["a"] * 30 + ["b"] * 30 + ["tiny"] * 3}
    result = METRIC.compute(predictions=predictions, references=references, task="gender", slices=slices)
    assert result["gender_accuracy/source=tiny"] == 0.0
    assert result["worst/gender_accuracy"] == "source=b"  # 20/30; the 3-image slice is too small to name
    assert result["too_small_to_judge"] == ["source=tiny (3)"]


def test_worst_slice_is_never_an_unlabelled_one():
    references = [0] * 30 + [1] * 30
    predictions = one_hot([1] * 30 + [1] * 30, 2)  # every "unknown" row wrong
    slices = {"age_group": [None] * 30 + ["20-29"] * 30}
    result = METRIC.compute(predictions=predictions, references=references, task="gender", slices=slices)
    assert result["gender_accuracy/age_group=unknown"] == 0.0
    assert result["worst/gender_accuracy"] == "age_group=20-29"
    assert "too_small_to_judge" not in result


def test_age_task_only_has_age_metrics():
    result = METRIC.compute(predictions=one_hot([3, 4], 9), references=[3, 3], task="age", ages=[20, 29])
    assert result["age_group_accuracy"] == 0.5 and result["age_group_one_off_accuracy"] == 1.0
    assert "gender_accuracy" not in result
    assert result["age_mae"] == pytest.approx((4.5 + 5.5) / 2)
