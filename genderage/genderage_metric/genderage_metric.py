"""genderage metrics as a local `evaluate` module: load it by path, it works offline.

    metric = evaluate.load("genderage/genderage_metric")
    metric.compute(predictions=probabilities, references=labels, task="gender_age", ages=ages, slices={"race": races})
"""

import datasets
import evaluate
import numpy as np

GENDERS = ["female", "male"]
AGE_GROUPS = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"]
AGE_GROUP_MIDPOINTS = np.array([1.0, 6.0, 14.5, 24.5, 34.5, 44.5, 54.5, 64.5, 77.0])
MIN_SLICE_SIZE = 20  # smaller slices are reported but not named the worst (too noisy); `too_small_to_judge` lists them
ECE_BINS = 15  # equal-width bins of top-class confidence (the usual choice, as Guo et al. 2017)

_DESCRIPTION = "Gender and age-group classification metrics, overall and per slice, with the worst slice named."
_KWARGS_DESCRIPTION = """
Args:
    predictions: per-example class probabilities over the task's labels (2 genders, 9 age groups, or 18 joint
        labels ordered gender-major: female 0-2 ... female 70+, male 0-2 ... male 70+).
    references: the true class index of each example. For "gender_age", partly labelled rows are numbered after the
        18 joint classes: 18 + gender (gender only), 20 + age group (age group only); each metric counts a row only
        for the labels it has (joint accuracy: the fully labelled rows).
    task: "gender", "age" or "gender_age".
    ages: optional true ages in years (-1 or None where unknown) for the MAE of the expected age.
    slices: optional {column: [value per example]}; every accuracy is repeated per value as `metric/column=value`.
Returns:
    A flat dict: accuracy, macro precision/recall/F1 and per-class recall for gender and age group,
    age-group one-off accuracy, age MAE, expected calibration error of the gender and age-group marginal
    probabilities (`gender_ece`, `age_group_ece`: 15 equal-width confidence bins), confusion matrices (lists),
    per-slice accuracies,
    `worst/<metric>` naming the labelled slice (not "unknown") with the lowest value among those of at least 20
    examples, and `too_small_to_judge` listing the labelled slices left out for their size ("age_group=0-2 (6)").
"""


def expected_calibration_error(probabilities, references, bins=ECE_BINS):
    """Bin-size-weighted |accuracy - mean confidence| over equal-width bins of top-class confidence.

    Kept self-contained (an evaluate module is loaded on its own); genderage.training.calibration has the same function.
    """
    if len(references) == 0:
        return float("nan")
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == references
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)  # bin i: (i/bins, (i+1)/bins]
    return float(sum((index == b).mean() * abs(correct[index == b].mean() - confidence[index == b].mean())
                     for b in range(bins) if (index == b).any()))


def _classification(prefix, true, predicted, names):
    """Accuracy, macro precision/recall/F1, per-class recall and the confusion matrix."""
    k = len(names)
    matrix = np.bincount(true * k + predicted, minlength=k * k).reshape(k, k)
    support, predicted_count, hits = matrix.sum(1), matrix.sum(0), np.diag(matrix)
    present = (support > 0) | (predicted_count > 0)  # as sklearn: classes seen in truth or prediction
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(hits, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    result = {
        f"{prefix}_accuracy": float(hits.sum() / max(len(true), 1)),
        f"{prefix}_macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        f"{prefix}_macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        f"{prefix}_macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        f"{prefix}_confusion_matrix": matrix.tolist(),
    }
    result.update({f"{prefix}_recall/{name}": float(recall[i]) for i, name in enumerate(names) if support[i]})
    return result


def _split_task(task, probabilities, references):
    """Per-task views: (gender probs, gender truth), (age probs, age truth); None where the task lacks one."""
    if task == "gender":
        return (probabilities, references), None
    if task == "age":
        return None, (probabilities, references)
    joint = probabilities.reshape(len(probabilities), len(GENDERS), len(AGE_GROUPS))
    classes, gender_only = len(GENDERS) * len(AGE_GROUPS), len(GENDERS) * len(AGE_GROUPS) + len(GENDERS)
    gender_true = np.where(references < classes, references // len(AGE_GROUPS),
                           np.where(references < gender_only, references - classes, -1))
    age_true = np.where(references < classes, references % len(AGE_GROUPS),
                        np.where(references >= gender_only, references - gender_only, -1))
    return (joint.sum(2), gender_true), (joint.sum(1), age_true)


def _known(view, ages=None):
    """The rows of a (probabilities, truth) view whose label is known (truth ≥ 0), and their ages."""
    known = view[1] >= 0
    return (view[0][known], view[1][known]), None if ages is None else ages[known]


def compute_all(probabilities, references, task, ages=None):
    """The overall metrics for one set of predictions, each over the rows that have its label."""
    result = {}
    gender, age = _split_task(task, probabilities, references)
    if task == "gender_age":
        full = references < len(GENDERS) * len(AGE_GROUPS)
        if full.any():
            result["joint_accuracy"] = float((probabilities[full].argmax(1) == references[full]).mean())
    if gender is not None:
        gender = _known(gender)[0]
        gender = gender if len(gender[1]) else None
    if age is not None:
        age, ages = _known(age, ages)
        age = age if len(age[1]) else None
    if gender is not None:
        result.update(_classification("gender", gender[1], gender[0].argmax(1), GENDERS))
        result["gender_ece"] = expected_calibration_error(gender[0], gender[1])
    if age is not None:
        age_probs, age_true = age
        predicted = age_probs.argmax(1)
        result.update(_classification("age_group", age_true, predicted, AGE_GROUPS))
        result["age_group_one_off_accuracy"] = float((np.abs(predicted - age_true) <= 1).mean())
        result["age_group_ece"] = expected_calibration_error(age_probs, age_true)
        if ages is not None and (ages >= 0).any():
            known = ages >= 0
            expected = age_probs[known] @ AGE_GROUP_MIDPOINTS
            result["age_mae"] = float(np.abs(expected - ages[known]).mean())
    return result


SLICED_METRICS = ("gender_accuracy", "age_group_accuracy", "age_group_one_off_accuracy", "age_mae")


class GenderageMetric(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, task="gender_age", ages=None, slices=None):
        probabilities = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references, dtype=np.int64)
        ages = None if ages is None else np.array([-1 if a is None else a for a in ages], dtype=np.float64)
        result = compute_all(probabilities, references, task, ages)
        worst, too_small = {}, []
        for column, values in (slices or {}).items():
            values = np.array(["unknown" if v is None else str(v) for v in values])
            for value in sorted(set(values)):
                mask = values == value
                part = compute_all(probabilities[mask], references[mask], task, None if ages is None else ages[mask])
                result[f"n/{column}={value}"] = int(mask.sum())
                judged = value != "unknown" and mask.sum() >= MIN_SLICE_SIZE
                if value != "unknown" and not judged:
                    too_small.append(f"{column}={value} ({int(mask.sum())})")
                for name in SLICED_METRICS:
                    if name not in part:
                        continue
                    result[f"{name}/{column}={value}"] = part[name]
                    lower_is_worse = name != "age_mae"
                    score = part[name] if lower_is_worse else -part[name]
                    if judged and (name not in worst or score < worst[name][0]):
                        worst[name] = (score, f"{column}={value}")
        result.update({f"worst/{name}": slice_name for name, (_, slice_name) in worst.items()})
        if too_small:
            result["too_small_to_judge"] = too_small
        return result
