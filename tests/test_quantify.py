"""Quantification estimators on simulated collections whose true share of women is known."""

import numpy as np
import pytest

from genderage.measure.quantify import Rates, bootstrap_interval, estimate


def simulate(rng, n, share_female):
    """A classifier that is right about 84% of the time, calibrated for a balanced prior (truth 0 = female)."""
    truth = (rng.random(n) >= share_female).astype(int)
    score = rng.normal(np.where(truth == 0, 1.0, -1.0), 1.0)
    p_female = 1 / (1 + np.exp(-2 * score))
    return np.stack([p_female, 1 - p_female], 1), truth


@pytest.mark.parametrize("share", [0.1, 0.3, 0.7])
def test_adjusted_estimators_undo_the_bias_that_counting_has(share):
    rng = np.random.default_rng(1)
    rates = Rates.from_labelled(*simulate(rng, 4000, 0.5))
    probabilities, truth = simulate(rng, 20000, share)
    true_share = float((truth == 0).mean())
    counted = estimate(probabilities, rates, "cc")[0]
    assert abs(counted - true_share) > 0.04  # counting argmax answers drifts towards 50%
    for method in ("acc", "pacc", "sld"):
        assert estimate(probabilities, rates, method)[0] == pytest.approx(true_share, abs=0.02), method


def test_estimates_are_shares():
    rng = np.random.default_rng(2)
    rates = Rates.from_labelled(*simulate(rng, 500, 0.5))
    probabilities, _ = simulate(rng, 50, 0.02)
    for method in ("cc", "pcc", "acc", "pacc", "sld"):
        shares = estimate(probabilities, rates, method)
        assert shares.sum() == pytest.approx(1) and (shares >= 0).all()
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate(probabilities, rates, "median")


def test_bootstrap_interval_covers_the_truth_and_widens_with_clustered_faces():
    rng = np.random.default_rng(3)
    labelled = simulate(rng, 600, 0.5)
    covered = 0
    for _ in range(10):
        probabilities, truth = simulate(rng, 300, 0.2)
        point, low, high = bootstrap_interval(probabilities, np.arange(300), *labelled, "pacc", rounds=100)
        covered += low[0] <= (truth == 0).mean() <= high[0]
        assert low[0] <= point[0] <= high[0]
    assert covered >= 8
    # The same faces as 30 photos of 10 faces each (faces of a photo move together): a wider interval.
    probabilities, _ = simulate(rng, 300, 0.2)
    probabilities = np.repeat(probabilities[:30], 10, axis=0)
    _, low_one, high_one = bootstrap_interval(probabilities, np.arange(300), *labelled, "pacc", rounds=100)
    _, low_grouped, high_grouped = bootstrap_interval(probabilities, np.repeat(np.arange(30), 10), *labelled, "pacc", rounds=100)
    assert high_grouped[0] - low_grouped[0] > 1.5 * (high_one[0] - low_one[0])
