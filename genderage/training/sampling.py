"""Which training faces are drawn how often (strata balanced across sources and groups, named groups boosted), and
the loss's class weights."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from .config import TrainArguments


def sampling_weights(dataset, args: TrainArguments) -> torch.Tensor | None:
    """Per-example sampling weights from --balance_sampling and --sampling_boost; None when both are off."""
    if args.balance_sampling == 0 and not args.sampling_boost:
        return None
    weights = stratum_weights(dataset, args.balance_sampling, args.balance_by_race)
    return weights * boost_factors(dataset, args.sampling_boost) if args.sampling_boost else weights


def stratum_weights(dataset, power: float, by_race: bool = False) -> torch.Tensor:
    """Per-example sampling weights: (size of its source × gender × age-group [× race] stratum) ** -power.

    Mixes sources of very different sizes and skews (UTKFace is mostly 20-39 and White; All-Age-Faces mostly East
    Asian) without discarding data: power 0.5 draws a stratum in proportion to the square root of its size. With
    `by_race`, rows without a race label form one bucket of their source."""
    plain = dataset.with_format(None)  # the label columns only, without the training transform
    names = ("source", "gender", "age_group") + (("race",) if by_race and "race" in plain.column_names else ())
    columns = [list(plain[name]) for name in names]
    strata = list(zip(*columns))
    sizes = Counter(strata)
    return torch.tensor([sizes[stratum] ** -power for stratum in strata], dtype=torch.double)


def boost_factors(dataset, boost: str) -> torch.Tensor:
    """Per-example factors from 'COLUMN=VALUE:FACTOR,...' (e.g. 'age_group=0-2:2,race=Black:1.5'): the product of the
    factors of every group an example belongs to (1 where none)."""
    plain = dataset.with_format(None)
    factors = torch.ones(len(plain), dtype=torch.double)
    for item in filter(None, (part.strip() for part in boost.split(","))):
        group, _, factor = item.rpartition(":")
        column, _, value = group.partition("=")
        if not column or not value or column not in plain.column_names:
            raise ValueError(f"--sampling_boost {item!r}: use COLUMN=VALUE:FACTOR with a column of {plain.column_names}")
        feature = plain.features[column]
        names = feature.names if hasattr(feature, "names") else None
        values = [names[v] if names is not None and v is not None else v for v in plain[column]]
        factors *= torch.tensor([float(factor) if v == value else 1.0 for v in values], dtype=torch.double)
    return factors


def inverse_frequency_weights(labels: list[int], num_labels: int) -> torch.Tensor:
    """One loss weight per class, from the fully labelled rows (partial targets, numbered after the classes, weigh 1)."""
    counts = np.bincount([label for label in labels if label < num_labels], minlength=num_labels).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (num_labels * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)
