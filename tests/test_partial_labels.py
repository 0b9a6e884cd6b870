"""Partly labelled rows: targets, the marginal-likelihood loss, metrics that count each label where it is known, and a
one-gender source whose gender is withheld (train_labels=age)."""

import numpy as np
import pytest
import torch

from genderage.data.sources import SourceError, parse_source_spec, read_source
from genderage.labels import AGE_GROUPS, GENDERS, JOINT_LABELS, joint_target, target_labels
from genderage.training.linear_probe import fit_linear_head
from genderage.training.losses import partial_cross_entropy, target_sets


def test_joint_targets_round_trip():
    pairs = [(g, a) for g in (None, 0, 1) for a in (None, *range(len(AGE_GROUPS)))]
    targets = [joint_target(g, a) for g, a in pairs]
    assert targets[0] is None
    assert len(set(targets[1:])) == len(targets) - 1
    for (g, a), target in zip(pairs[1:], targets[1:]):
        assert target_labels(target) == (g, a)
    assert joint_target(1, 3) == JOINT_LABELS.index("male, 20-29")


def test_partial_rows_change_the_loss_exactly_as_the_formula_says():
    torch.manual_seed(0)
    logits = torch.randn(3, len(JOINT_LABELS))
    p = logits.softmax(-1).reshape(3, len(GENDERS), len(AGE_GROUPS))
    full, gender_only, age_only = joint_target(0, 4), joint_target(1, None), joint_target(None, 2)
    targets = torch.tensor([full, gender_only, age_only])
    sets = target_sets(len(JOINT_LABELS))
    expected = torch.stack([-p[0, 0, 4].log(), -p[1, 1, :].sum().log(), -p[2, :, 2].sum().log()])
    assert torch.allclose(partial_cross_entropy(logits, targets, sets), expected.mean(), atol=1e-6)
    # Fully labelled rows give torch's cross-entropy, label smoothing included.
    labels = torch.tensor([0, 5, 17])
    for smoothing in (0.0, 0.1):
        reference = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=smoothing)
        assert torch.allclose(partial_cross_entropy(logits, labels, sets, smoothing), reference, atol=1e-6)
    # A gender-only row's loss does not care how its gender's probability is spread over the ages.
    moved = logits.clone()
    moved[1, 9:] = moved[1, 9:].flip(0)  # the male labels of row 1, reordered
    assert torch.allclose(partial_cross_entropy(moved[1:2], targets[1:2], sets),
                          partial_cross_entropy(logits[1:2], targets[1:2], sets), atol=1e-6)
    male_full = torch.tensor([joint_target(1, 0)])  # a fully labelled male row does care
    assert not torch.allclose(partial_cross_entropy(moved[1:2], male_full, sets),
                              partial_cross_entropy(logits[1:2], male_full, sets))


def test_metrics_count_a_row_only_for_the_labels_it_has():
    import evaluate

    from genderage import METRIC_MODULE

    metric = evaluate.load(METRIC_MODULE)
    probabilities = np.full((3, len(JOINT_LABELS)), 0.01)
    probabilities[:, JOINT_LABELS.index("female, 20-29")] = 0.83  # every row answered "female, 20-29"
    references = [joint_target(0, 3), joint_target(None, 5), joint_target(1, None)]
    result = metric.compute(predictions=probabilities, references=references, task="gender_age")
    assert result["joint_accuracy"] == 1.0  # the one fully labelled row
    assert result["gender_accuracy"] == 0.5  # rows 0 (right) and 2 (wrong)
    assert result["age_group_accuracy"] == 0.5  # rows 0 (right) and 1 (wrong)


def test_train_labels_withholds_a_one_gender_source_gender(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    table = tmp_path / "labels.csv"
    table.write_text("file,gender,age\na.jpg,male,20-29\nb.jpg,male,\n")
    found = read_source(parse_source_spec(f"csv={table},train_labels=age"))
    assert [(r.gender, r.age_group) for r in found.records] == [(None, "20-29")]
    assert found.withheld == {"gender=male": 2}
    assert found.dropped == [(str(tmp_path / "b.jpg"), "no age label (train_labels=age)")]
    assert len(read_source(parse_source_spec(f"csv={table}")).records) == 2
    with pytest.raises(SourceError, match="train_labels"):
        read_source(parse_source_spec(f"csv={table},train_labels=race"))


def _faces(rng, n, style, genders, age_groups):
    """Synthetic features: gender and age each along their own axes, the photo style (source) along a third."""
    features = rng.normal(0, 1.0, (n, 6))
    features[:, 0] += np.where(genders == 0, 1.5, -1.5)
    features[:, 1] += age_groups - 4
    features[:, 2] += 3.0 * style
    return torch.tensor(features, dtype=torch.float32)


def _share_female(weight, bias, features):
    p = (features @ weight.T + bias).softmax(-1).reshape(len(features), len(GENDERS), len(AGE_GROUPS)).sum(2)
    return float((p[:, 0] > 0.5).float().mean())


def test_a_one_gender_source_moves_the_share_of_women_only_when_its_gender_is_used():
    rng = np.random.default_rng(0)
    n = 2000
    base_g, base_a = rng.integers(0, 2, n), rng.integers(0, 9, n)
    base = _faces(rng, n, 0, base_g, base_a)
    base_targets = torch.tensor([joint_target(g, a) for g, a in zip(base_g, base_a)])
    men_a = rng.integers(0, 9, n)  # a source of men only, in another photo style
    men = _faces(rng, n, 1, np.ones(n, dtype=int), men_a)
    check_g, check_a = np.repeat([0, 1], n // 2), rng.integers(0, 9, n)  # balanced, in the new style
    check = _faces(rng, n, 1, check_g, check_a)

    def share(extra_targets=None):
        features, targets = base, base_targets
        if extra_targets is not None:
            features, targets = torch.cat([base, men]), torch.cat([base_targets, extra_targets])
        return _share_female(*fit_linear_head(features, targets, len(JOINT_LABELS), l2=1e-3), check)

    without = share()
    age_only = share(torch.tensor([joint_target(None, a) for a in men_a]))
    with_gender = share(torch.tensor([joint_target(1, a) for a in men_a]))
    assert 0.4 < without < 0.6
    assert abs(age_only - without) < 0.05  # tolerance: 5 points of 2,000 balanced faces
    assert with_gender < without - 0.15  # "photos like these are men"


def test_a_held_out_part_is_left_out_of_every_split_and_reads_back_as_a_source(utkface_dir, tmp_path):
    import json
    import os

    from conftest import prepared
    from genderage.data.labelled import from_source

    out = prepared(tmp_path, f"utkface={utkface_dir}", extra=["--hold-out", "utkface=8"])
    report = json.loads((out / "report.json").read_text())
    assert report["sources"]["utkface"]["held_out"] == 8 and sum(report["splits"].values()) == report["kept"]
    held = from_source(f"csv={out / 'holdout' / 'utkface.csv'}")
    assert len(held.rows) == 8 and all(row["gender"] and row["age_group"] for row in held.rows)
    split_files = {json.loads(line)["source_path"] for split in ("train", "validation", "test")
                   for line in (out / split / "metadata.jsonl").read_text().splitlines()}
    held_paths = {line.split(",")[0] for line in (out / "holdout" / "utkface.csv").read_text().splitlines()[1:]}
    assert len(split_files) == report["kept"] and len(held_paths) == 8
    assert not {os.path.abspath(path) for path in split_files} & held_paths
