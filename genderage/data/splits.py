"""Deterministic, stratified train/validation/test assignment."""

from __future__ import annotations

import random
from collections import defaultdict

SPLITS = ("train", "validation", "test")


def stratified_split(
    strata: list[str], ratios: tuple[float, float, float], seed: int, held_out: list[bool] | None = None
) -> list[str]:
    """Assign each item a split so that every stratum follows `ratios` (train, validation, test).

    Rounding is carried across strata, so split sizes match the ratios overall even when each
    stratum is tiny. Items flagged in `held_out` all go to test, and the rest are split
    train/validation in the same proportions (the 'train on A, test on B' protocol).
    """
    held_out = held_out or [False] * len(strata)
    train_ratio, val_ratio, test_ratio = ratios
    if any(held_out):
        total = train_ratio + val_ratio
        train_ratio, val_ratio, test_ratio = train_ratio / total, val_ratio / total, 0.0
    by_stratum: dict[str, list[int]] = defaultdict(list)
    for index, (stratum, is_held_out) in enumerate(zip(strata, held_out)):
        if not is_held_out:
            by_stratum[stratum].append(index)

    assignment = ["test"] * len(strata)
    rng = random.Random(seed)
    seen = val_done = test_done = 0
    for stratum in sorted(by_stratum):
        items = by_stratum[stratum]
        rng.shuffle(items)
        seen += len(items)
        n_val = min(len(items), round(seen * val_ratio) - val_done)
        n_test = min(len(items) - n_val, round(seen * test_ratio) - test_done)
        val_done, test_done = val_done + n_val, test_done + n_test
        for position, index in enumerate(items):
            assignment[index] = "validation" if position < n_val else "test" if position < n_val + n_test else "train"
    return assignment


def stratified_holdout(strata: list[str], size: int, seed: int) -> list[bool]:
    """Flag `size` items to set aside, each stratum in proportion to its size (rounding carried across strata)."""
    if not 0 <= size <= len(strata):
        raise ValueError(f"cannot hold out {size} of {len(strata)} items")
    by_stratum: dict[str, list[int]] = defaultdict(list)
    for index, stratum in enumerate(strata):
        by_stratum[stratum].append(index)
    flags = [False] * len(strata)
    rng = random.Random(seed)
    seen = done = 0
    for stratum in sorted(by_stratum):
        items = by_stratum[stratum]
        rng.shuffle(items)
        seen += len(items)
        take = round(seen * size / len(strata)) - done
        done += take
        for index in items[:take]:
            flags[index] = True
    return flags
