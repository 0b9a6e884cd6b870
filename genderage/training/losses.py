"""Losses of partly labelled rows: the marginal likelihood of the classes a row's target allows.

A row with gender and age group has one joint class; a row with gender only allows that gender's nine classes, one with
an age group only that group's two. Its negative log-likelihood is −log Σ_{k allowed} p_k, so the model stays one
18-label classifier (`pipeline`-compatible) and still learns from every label it is given."""

from __future__ import annotations

from functools import lru_cache

import torch

from ..labels import joint_target_sets


@lru_cache(maxsize=8)
def target_sets(num_labels: int) -> torch.Tensor:
    """(targets × labels) booleans: the joint task's partial targets for 18 labels, else one class per target."""
    sets = joint_target_sets()
    if num_labels == sets.shape[1]:
        return torch.from_numpy(sets)
    return torch.eye(num_labels, dtype=torch.bool)


def partial_nll(logits: torch.Tensor, targets: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
    """Per-row −log Σ_{k ∈ sets[target]} softmax(logits)_k."""
    log_p = logits.float().log_softmax(-1)
    allowed = sets.to(logits.device)[targets]
    return -torch.logsumexp(log_p.masked_fill(~allowed, float("-inf")), -1)


def partial_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, sets: torch.Tensor, label_smoothing: float = 0.0,
                          class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The mean partial NLL with label smoothing: (1 − ε) · NLL + ε · mean_k(−log p_k). On fully labelled rows without
    class weights it equals `torch.nn.functional.cross_entropy`. Class weights (one per class) weight fully labelled
    rows; partly labelled rows weigh 1."""
    loss = partial_nll(logits, targets, sets)
    if label_smoothing:
        uniform = -logits.float().log_softmax(-1).mean(-1)
        loss = (1 - label_smoothing) * loss + label_smoothing * uniform
    if class_weights is None:
        return loss.mean()
    num_labels = logits.shape[-1]
    full = targets < num_labels
    weights = torch.ones_like(loss)
    weights[full] = class_weights.to(loss.device)[targets[full]]
    return (weights * loss).sum() / weights.sum()
