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
    def from_labelled(cls, probabilities: np.ndarray, truth: np.ndarray) -> "Rates":
        probabilities, truth = np.asarray(probabilities, dtype=np.float64), np.asarray(truth)
        k = probabilities.shape[1]
        answers = np.eye(k)[probabilities.argmax(1)]
        hard, soft = np.full((k, k), np.nan), np.full((k, k), np.nan)
        for j in range(k):
            members = truth == j
            if members.any():
                hard[:, j], soft[:, j] = answers[members].mean(0), probabilities[members].mean(0)
        missing = np.isnan(hard[0])
        if missing.any():  # a class never seen: assume the classifier would be right on it (the identity column)
            hard[:, missing] = soft[:, missing] = np.eye(k)[:, missing]
        return cls(hard, soft, np.bincount(truth, minlength=k) / max(1, len(truth)))


def _solve(rates: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Least-squares shares q with rates @ q = observed, clipped to [0, 1] and normalised to sum to 1."""
    shares = np.linalg.lstsq(rates, observed, rcond=None)[0]
    shares = np.clip(shares, 0, None)
    total = shares.sum()
    return shares / total if total > 0 else np.full(len(observed), 1 / len(observed))


def sld(probabilities: np.ndarray, prior: np.ndarray, iterations: int = 1000, tolerance: float = 1e-6) -> np.ndarray:
    """Saerens-Latinne-Decaestecker EM: the collection's prior that makes it the mean of the re-weighted posteriors."""
    shares = prior.copy()
    for _ in range(iterations):
        weighted = probabilities * (shares / np.maximum(prior, 1e-12))
        posteriors = weighted / weighted.sum(1, keepdims=True)
        new = posteriors.mean(0)
        if np.abs(new - shares).max() < tolerance:
            return new
        shares = new
    return shares


def estimate(probabilities: np.ndarray, rates: Rates, method: str) -> np.ndarray:
    """A collection's class shares from its faces' probabilities (n × k) by `method` (one of ESTIMATORS)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    k = probabilities.shape[1]
    if method == "cc":
        return np.bincount(probabilities.argmax(1), minlength=k) / len(probabilities)
    if method == "pcc":
        return probabilities.mean(0)
    if method == "acc":
        return _solve(rates.hard, estimate(probabilities, rates, "cc"))
    if method == "pacc":
        return _solve(rates.soft, probabilities.mean(0))
    if method == "sld":
        return sld(probabilities, rates.prior)
    raise ValueError(f"unknown estimator {method!r}; choose one of {ESTIMATORS}")


def bootstrap_interval(probabilities: np.ndarray, groups: np.ndarray, labelled_probabilities: np.ndarray,
                       labelled_truth: np.ndarray, method: str, rounds: int = 200, seed: int = 0,
                       level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(estimate, low, high) per class. Each round resamples the collection's photos (`groups`: one id per face, as
    faces of one photo are not independent) and the labelled faces behind the rates, so both uncertainties count."""
    rng = np.random.default_rng(seed)
    rates = Rates.from_labelled(labelled_probabilities, labelled_truth)
    point = estimate(probabilities, rates, method)
    photos = np.unique(groups)
    faces_of = {photo: np.flatnonzero(groups == photo) for photo in photos}
    draws = []
    for _ in range(rounds):
        chosen = np.concatenate([faces_of[photo] for photo in rng.choice(photos, len(photos))])
        labelled = rng.integers(0, len(labelled_truth), len(labelled_truth))
        resampled = Rates.from_labelled(labelled_probabilities[labelled], labelled_truth[labelled])
        draws.append(estimate(probabilities[chosen], resampled, method))
    low, high = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    return point, low, high
