"""The project's label vocabulary: gender, FairFace age groups, and the joint gender×age labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

GENDERS: list[str] = ["female", "male"]
AGE_GROUPS: list[str] = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"]
# Inclusive lower bounds of AGE_GROUPS, used to bin an age in years.
AGE_GROUP_LOWER_BOUNDS: list[int] = [0, 3, 10, 20, 30, 40, 50, 60, 70]
# Representative age of each group (its midpoint; 70+ taken as 77), for expected-age estimates.
AGE_GROUP_MIDPOINTS: list[float] = [1.0, 6.0, 14.5, 24.5, 34.5, 44.5, 54.5, 64.5, 77.0]

GENDER_ALIASES: dict[str, str] = {
    **dict.fromkeys(["female", "females", "f", "woman", "women", "girl", "girls", "w"], "female"),
    **dict.fromkeys(["male", "males", "m", "man", "men", "boy", "boys"], "male"),
}

_RANGE = re.compile(r"^(\d+)\s*(?:-|_|–|to)\s*(\d+)$")
_OPEN_ENDED = re.compile(r"^(?:(\d+)\s*\+|(?:more|older) than\s*(\d+)|(\d+)\s*(?:plus|and over|or more))$")


def age_to_group(age: float) -> str:
    """Bin an age in years into its FairFace age group."""
    if age < 0:
        raise ValueError(f"negative age: {age}")
    index = max(i for i, lower in enumerate(AGE_GROUP_LOWER_BOUNDS) if age >= lower)
    return AGE_GROUPS[index]


def normalise_gender(value: str, aliases: dict[str, str] | None = None) -> str | None:
    """Map a gender spelling ('Male', 'women', 'F', ...) to 'female'/'male'; None if unknown."""
    key = str(value).strip().lower()
    if aliases and key in aliases:
        return aliases[key]
    return GENDER_ALIASES.get(key)


def parse_age_label(value: str) -> tuple[int | None, str | None]:
    """Parse an age annotation into (age in years or None, age group or None).

    Accepts a plain age ('34'), a range ('20-29', '1-10', '20_29') binned by its midpoint,
    and open-ended forms ('70+', 'more than 70').
    """
    text = str(value).strip().lower()
    if not text:
        return None, None
    if text.isdigit():
        age = int(text)
        return age, age_to_group(age)
    if text in AGE_GROUPS:
        return None, text
    if match := _RANGE.match(text):
        low, high = int(match.group(1)), int(match.group(2))
        if low > high:
            return None, None
        return None, age_to_group((low + high) / 2)
    if match := _OPEN_ENDED.match(text):
        lower = int(next(g for g in match.groups() if g))
        return None, age_to_group(lower)
    return None, None


def joint_label(gender: str, age_group: str) -> str:
    """The joint class name used by the `gender_age` task, e.g. 'female, 20-29'."""
    return f"{gender}, {age_group}"


JOINT_LABELS: list[str] = [joint_label(g, a) for g in GENDERS for a in AGE_GROUPS]


def split_joint_label(label: str) -> tuple[str, str]:
    """Inverse of `joint_label`."""
    gender, age_group = label.split(", ")
    return gender, age_group


# Training targets of the joint task when a row has only one label: after the 18 joint classes come "this gender, any
# age" (2) and "this age group, either gender" (9). The model stays an 18-label classifier; such a row is learnt
# through the marginal likelihood of the classes its target allows.
GENDER_ONLY_TARGETS = len(JOINT_LABELS)
AGE_ONLY_TARGETS = GENDER_ONLY_TARGETS + len(GENDERS)
NUM_JOINT_TARGETS = AGE_ONLY_TARGETS + len(AGE_GROUPS)


def joint_target(gender: int | None, age_group: int | None) -> int | None:
    """The joint task's target for a row's (gender, age group) indices, either of which may be unknown; None if both are."""
    if gender is not None and age_group is not None:
        return gender * len(AGE_GROUPS) + age_group
    if gender is not None:
        return GENDER_ONLY_TARGETS + gender
    if age_group is not None:
        return AGE_ONLY_TARGETS + age_group
    return None


def task_target(task: str, gender: int | None, age_group: int | None) -> int | None:
    """The training target of one example for a task ("gender", "age" or "gender_age"); None when it has no label
    the task can learn from. The joint task learns from a gender or an age group alone too (`joint_target`)."""
    if task == "gender":
        return gender
    if task == "age":
        return age_group
    return joint_target(gender, age_group)


def target_labels(target: int) -> tuple[int | None, int | None]:
    """Inverse of `joint_target`: (gender index or None, age-group index or None)."""
    if target < GENDER_ONLY_TARGETS:
        return divmod(target, len(AGE_GROUPS))
    if target < AGE_ONLY_TARGETS:
        return target - GENDER_ONLY_TARGETS, None
    return None, target - AGE_ONLY_TARGETS


def joint_target_sets() -> np.ndarray:
    """A (targets × 18) boolean matrix: which joint classes each joint-task target allows."""
    sets = np.zeros((NUM_JOINT_TARGETS, len(JOINT_LABELS)), dtype=bool)
    for target in range(NUM_JOINT_TARGETS):
        gender, age_group = target_labels(target)
        for g in range(len(GENDERS)):
            for a in range(len(AGE_GROUPS)):
                sets[target, g * len(AGE_GROUPS) + a] = gender in (None, g) and age_group in (None, a)
    return sets


@dataclass
class Prediction:
    """One face's answer: marginal probabilities, the expected age, and every raw label's probability."""

    labels: dict[str, float]
    gender: dict[str, float] | None = None
    age_group: dict[str, float] | None = None
    age: float | None = None

    def to_dict(self) -> dict:
        """The marginals as the app's JSON API returns them."""
        return {"gender": self.gender, "age_group": self.age_group, "age": None if self.age is None else round(self.age, 1)}


def marginals(probabilities: np.ndarray, label_names: list[str]) -> list[Prediction]:
    """Turn per-label probabilities into gender / age-group marginals (sums of joint labels) and an expected age."""
    predictions = []
    for row in probabilities:
        labels = {name: float(p) for name, p in zip(label_names, row)}
        gender = age_group = None
        if all(", " in name for name in label_names):
            gender, age_group = dict.fromkeys(GENDERS, 0.0), dict.fromkeys(AGE_GROUPS, 0.0)
            for name, p in labels.items():
                g, a = split_joint_label(name)
                gender[g] += p
                age_group[a] += p
        elif set(label_names) == set(GENDERS):
            gender = labels
        elif set(label_names) == set(AGE_GROUPS):
            age_group = labels
        age = None if age_group is None else float(sum(age_group[g] * m for g, m in zip(AGE_GROUPS, AGE_GROUP_MIDPOINTS)))
        predictions.append(Prediction(labels, gender, age_group, age))
    return predictions


def from_pipeline(answer: list[dict]) -> Prediction:
    """Gender and age from `transformers.pipeline("image-classification")`'s answer for one face (asked with
    top_k=18, so every joint label is there): the marginals and the expected age."""
    names = [item["label"] for item in answer]
    if len(names) != len(JOINT_LABELS) and all(", " in name for name in names):
        raise ValueError(f"got {len(names)} of the {len(JOINT_LABELS)} joint labels: call the pipeline with top_k=18")
    return marginals(np.array([[item["score"] for item in answer]]), names)[0]
