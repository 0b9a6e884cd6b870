"""How many of a collection's faces are in each class (quantification), not which face is which.

Counting the classifier's argmax answers (CC) or summing its probabilities (PCC) is biased whenever the collection's
class shares differ from those the model was measured on. The adjusted estimators correct for the classifier's own
behaviour per true class, measured on labelled photos (Forman 2008; Saerens et al. 2002; Bella et al. 2010):
- ACC: solve rates · shares = the argmax shares, with rates[i, j] = P(answer i | true j);
- PACC: the same with the mean probabilities: rates[i, j] = E[p_i | true j];
- SLD (EMQ): re-weight each face's probabilities to a new prior until the prior is the mean of the posteriors.
Implemented here in numpy (a few lines each) rather than through QuaPy, whose dependencies (scikit-learn, its
own data layer) the light install does not carry; the formulas follow QuaPy's `ACC`, `PACC` and `EMQ`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ESTIMATORS = ("cc", "pcc", "acc", "pacc", "sld")


@dataclass
class Rates:
    """The classifier's behaviour per true class, from labelled faces: hard and soft rate matrices and the prior."""

    hard: np.ndarray  # (k, k): [answer i, true j] = P(argmax = i | true j)
    soft: np.ndarray  # (k, k): [i, j] = mean P(i) over faces of true class j
    prior: np.ndarray  # (k,): the labelled faces' class shares

    @classmethod
    def from_labelled(cls, probabilities: np.ndarray, truth: np.ndarray, weights: np.ndarray | None = None) -> "Rates":
        """`weights` (one per face, e.g. a bootstrap's draw counts) weigh the faces; None counts each once."""
        probabilities, truth = np.asarray(probabilities, dtype=np.float64), np.asarray(truth)
        k = probabilities.shape[1]
        weights = np.ones(len(truth)) if weights is None else np.asarray(weights, dtype=np.float64)
        per_class = np.bincount(truth, weights, minlength=k)
        members = np.eye(k)[truth] * weights[:, None]  # (n, k): each face's weight under its true class
        with np.errstate(invalid="ignore", divide="ignore"):
            hard = (np.eye(k)[probabilities.argmax(1)].T @ members) / per_class
            soft = (probabilities.T @ members) / per_class
        missing = per_class == 0
        if missing.any():  # a class never seen: assume the classifier would be right on it (the identity column)
            hard[:, missing] = soft[:, missing] = np.eye(k)[:, missing]
        return cls(hard, soft, per_class / max(per_class.sum(), 1e-12))


def _solve(rates: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Least-squares shares q with rates @ q = observed, clipped to [0, 1] and normalised to sum to 1."""
    shares = np.linalg.lstsq(rates, observed, rcond=None)[0]
    shares = np.clip(shares, 0, None)
    total = shares.sum()
    return shares / total if total > 0 else np.full(len(observed), 1 / len(observed))


def sld(probabilities: np.ndarray, prior: np.ndarray, weights: np.ndarray | None = None, iterations: int = 1000,
        tolerance: float = 1e-6) -> np.ndarray:
    """Saerens-Latinne-Decaestecker EM: the collection's prior that makes it the mean of the re-weighted posteriors."""
    shares = prior.copy()
    for _ in range(iterations):
        weighted = probabilities * (shares / np.maximum(prior, 1e-12))
        new = np.average(weighted / weighted.sum(1, keepdims=True), axis=0, weights=weights)
        if np.abs(new - shares).max() < tolerance:
            return new
        shares = new
    return shares


def estimate(probabilities: np.ndarray, rates: Rates, method: str, weights: np.ndarray | None = None) -> np.ndarray:
    """A collection's class shares from its faces' probabilities (n × k) by `method` (one of ESTIMATORS);
    `weights` (one per face) weigh the faces, as a bootstrap draw does."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    k = probabilities.shape[1]
    if method == "cc":
        counts = np.bincount(probabilities.argmax(1), weights, minlength=k)
        return counts / max(counts.sum(), 1e-12)
    if method == "pcc":
        return np.average(probabilities, axis=0, weights=weights)
    if method == "acc":
        return _solve(rates.hard, estimate(probabilities, rates, "cc", weights))
    if method == "pacc":
        return _solve(rates.soft, np.average(probabilities, axis=0, weights=weights))
    if method == "sld":
        return sld(probabilities, rates.prior, weights)
    raise ValueError(f"unknown estimator {method!r}; choose one of {ESTIMATORS}")


def bootstrap_interval(probabilities: np.ndarray, groups: np.ndarray, labelled_probabilities: np.ndarray,
                       labelled_truth: np.ndarray, method: str, rounds: int = 200, seed: int = 0,
                       level: float = 0.95, labelled_groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(estimate, low, high) per class. Each round resamples the collection's photos (`groups`: one id per face, as
    faces of one photo are not independent) and the labelled photos behind the rates (`labelled_groups`, default one
    per face), so both uncertainties count. The resampling is a Poisson bootstrap (each photo drawn Poisson(1) times):
    vectorised, so a collection of millions of faces takes seconds."""
    rng = np.random.default_rng(seed)
    labelled_probabilities, labelled_truth = np.asarray(labelled_probabilities, dtype=np.float64), np.asarray(labelled_truth)
    point = estimate(probabilities, Rates.from_labelled(labelled_probabilities, labelled_truth), method)
    _, photo_of = np.unique(groups, return_inverse=True)
    labelled_groups = np.arange(len(labelled_truth)) if labelled_groups is None else labelled_groups
    _, labelled_photo_of = np.unique(labelled_groups, return_inverse=True)
    draws = []
    for _ in range(rounds):
        weights = rng.poisson(1.0, photo_of.max() + 1)[photo_of]
        labelled_weights = rng.poisson(1.0, labelled_photo_of.max() + 1)[labelled_photo_of]
        if weights.sum() == 0 or labelled_weights.sum() == 0:
            continue
        rates = Rates.from_labelled(labelled_probabilities, labelled_truth, labelled_weights)
        draws.append(estimate(probabilities, rates, method, weights))
    low, high = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    # A share clipped at 0 or 1 can leave the point just outside its percentile interval: widen to hold it.
    return point, np.minimum(low, point), np.maximum(high, point)
