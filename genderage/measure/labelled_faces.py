"""Labelled faces with the model's answers: what an audit's adjusted shares learn the model's errors from.

A model folder keeps them as `quantification.json` (written by `benchmarks/cross_dataset.py --rates`): per test
set, each photo's labels and the probabilities of every joint class, with the set's measured accuracy, calibration
and worst group. `audit.py --labelled KIND=PATH` builds the same from a labelled sample of the collection itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..labels import AGE_GROUPS, GENDERS, JOINT_LABELS, split_joint_label

QUANTIFICATION_FILE = "quantification.json"
SAMPLE_PREFIX = "the labelled sample"  # how rates from `audit.py --labelled` are described (the report tells them apart)
TASKS = {"gender": GENDERS, "age_group": AGE_GROUPS, "joint": JOINT_LABELS}
# Joint class index -> its gender's and its age group's index (the marginals are sums over these).
_GENDER_OF = np.array([GENDERS.index(split_joint_label(label)[0]) for label in JOINT_LABELS])
_AGE_OF = np.array([AGE_GROUPS.index(split_joint_label(label)[1]) for label in JOINT_LABELS])


def marginal_probabilities(joint: np.ndarray, task: str) -> np.ndarray:
    """(n, classes of `task`) probabilities from (n, 18) joint ones."""
    joint = np.asarray(joint, dtype=np.float64)
    if task == "joint":
        return joint
    of = _GENDER_OF if task == "gender" else _AGE_OF
    return np.stack([joint[:, of == i].sum(1) for i in range(len(TASKS[task]))], 1)


@dataclass
class LabelledFaces:
    """One face per labelled photo (the largest found): labels as indices (-1: unknown) and joint probabilities."""

    described: str
    photo: list[str]
    gender: np.ndarray
    age_group: np.ndarray
    joint: np.ndarray  # (n, 18), JOINT_LABELS order
    measured: dict = field(default_factory=dict)  # the set's accuracy, calibration, faces found, worst group

    @classmethod
    def from_answers(cls, described: str, photos: list[str], rows: list[dict], predictions: list, found: list[bool],
                     measured: dict | None = None) -> "LabelledFaces":
        """Rows with `gender` / `age_group` names (or None) and their predictions; photos without a face are left
        out (an audit estimates shares among the faces found)."""
        keep = [i for i, face in enumerate(found) if face]
        return cls(described, [photos[i] for i in keep],
                   np.array([GENDERS.index(rows[i]["gender"]) if rows[i]["gender"] else -1 for i in keep], dtype=int),
                   np.array([AGE_GROUPS.index(rows[i]["age_group"]) if rows[i]["age_group"] else -1 for i in keep], dtype=int),
                   np.array([[predictions[i].labels[name] for name in JOINT_LABELS] for i in keep]).reshape(-1, len(JOINT_LABELS)),
                   measured or {})

    def task(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(probabilities, true class, photo) of the faces labelled for `task` (joint: both labels known)."""
        if task == "joint":
            known = (self.gender >= 0) & (self.age_group >= 0)
            truth = (self.gender * len(AGE_GROUPS) + self.age_group)[known]  # JOINT_LABELS is gender-major
        else:
            known = getattr(self, task) >= 0
            truth = getattr(self, task)[known]
        return marginal_probabilities(self.joint[known], task), truth, np.asarray(self.photo, dtype=object)[known]

    def to_json(self) -> dict:
        return {"described": self.described, "measured": self.measured, "photo": self.photo,
                "gender": self.gender.tolist(), "age_group": self.age_group.tolist(),
                "joint": np.round(self.joint, 4).tolist()}

    @classmethod
    def from_json(cls, record: dict) -> "LabelledFaces":
        return cls(record["described"], list(record["photo"]), np.array(record["gender"], dtype=int),
                   np.array(record["age_group"], dtype=int), np.array(record["joint"], dtype=np.float64).reshape(-1, len(JOINT_LABELS)),
                   record.get("measured", {}))

    @classmethod
    def pooled(cls, sets: list["LabelledFaces"]) -> "LabelledFaces":
        """Several sets as one (photo ids prefixed by their set, so they stay distinct). A set with one gender only
        (e.g. FairFace's men) keeps its age labels but lends no gender labels: its photos would measure the errors on
        that gender in another kind of photo than the other gender's, and the two columns of the rates must compare."""
        genders = [s.gender if len(set(s.gender[s.gender >= 0])) > 1 else np.full_like(s.gender, -1) for s in sets]
        return cls(" + ".join(s.described for s in sets), [f"{s.described}/{p}" for s in sets for p in s.photo],
                   np.concatenate(genders), np.concatenate([s.age_group for s in sets]),
                   np.concatenate([s.joint for s in sets]), {s.described: s.measured for s in sets})


def write_quantification(folder: str | Path, sets: list[LabelledFaces]) -> Path:
    """MODEL/quantification.json with every set."""
    path = Path(folder) / QUANTIFICATION_FILE
    path.write_text(json.dumps({"sets": [s.to_json() for s in sets]}))
    return path


def read_quantification(path: str | Path) -> list[LabelledFaces]:
    return [LabelledFaces.from_json(record) for record in json.loads(Path(path).read_text())["sets"]]
