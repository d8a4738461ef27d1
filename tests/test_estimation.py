"""Label-free performance estimation (medimbalance.estimation) on toy predictors."""

import numpy as np
import pytest
from scipy.special import softmax

from medimbalance.estimation import ESTIMATORS, Estimator, negative_entropy
from medimbalance.metrics import segmentation_metrics


def sample(n, rng, sharpen=2.5, prior=(0.6, 0.3, 0.1)):
    """Over-confident logits: the true class probabilities' logits times ``sharpen``."""
    y_prior = rng.choice(3, size=n, p=prior)
    true_logits = rng.normal(0, 1.0, (n, 3))
    true_logits[np.arange(n), y_prior] += 1.5
    y = np.array([rng.choice(3, p=row) for row in softmax(true_logits, axis=1)])
    return true_logits * sharpen, y


def test_every_estimator_is_close_when_test_and_validation_share_a_distribution():
    rng = np.random.default_rng(0)
    val_logits, val_y = sample(4000, rng)
    test_logits, test_y = sample(4000, rng)
    truth = (test_logits.argmax(1) == test_y).mean()
    estimates = Estimator(val_logits, val_y).accuracy_estimates(test_logits)
    assert set(estimates) == set(ESTIMATORS)
    assert abs(estimates["ATC"] - truth) < 0.02
    for name in ("DoC", "CS-DoC", "TS", "CS-TS", "CS-ATC", "TS-ATC", "CS-TS-ATC", "ATC-NE"):
        assert abs(estimates[name] - truth) < 0.03, name
    assert estimates["AC"] - truth > 0.1  # the over-confident average overestimates


def test_class_specific_estimators_follow_a_change_of_class_mix():
    rng = np.random.default_rng(1)
    val_logits, val_y = sample(6000, rng)

    # Samples predicted as the rare class are over-confident only (as a long tail makes them).
    def skew(logits):
        logits = logits.copy()
        rare = logits.argmax(1) == 2
        logits[rare] *= 3
        return logits

    test_logits, test_y = sample(6000, rng, prior=(0.2, 0.3, 0.5))  # many more rare images
    val_logits, test_logits = skew(val_logits), skew(test_logits)
    truth = (test_logits.argmax(1) == test_y).mean()
    estimates = Estimator(val_logits, val_y).accuracy_estimates(test_logits)
    for agnostic in (
        "ATC",
        "ATC-NE",
        "TS",
        "TS-ATC",
    ):  # (DoC's single gap happens to cancel out here)
        error = abs(estimates[agnostic] - truth)
        assert abs(estimates["CS-" + agnostic] - truth) < error / 2, agnostic


def blob_segmentation(n, rng, size=24):
    """Two-class maps: a square of class 1; logits calibrated by construction."""
    masks = np.zeros((n, size, size), np.int64)
    for i in range(n):
        r, c = rng.integers(4, size - 10, 2)
        masks[i, r : r + 6, c : c + 6] = 1
    signal = np.where(masks == 1, 1.0, -1.0) * 2.0 + rng.normal(0, 1.5, masks.shape)
    logits = np.stack([-signal / 2, signal / 2], 1)
    return logits, masks


def test_dice_estimates_track_the_true_dice():
    rng = np.random.default_rng(2)
    val_logits, val_masks = blob_segmentation(40, rng)
    test_logits, test_masks = blob_segmentation(40, rng)
    pixels = np.moveaxis(val_logits, 1, -1).reshape(-1, 2)
    estimator = Estimator(pixels, val_masks.reshape(-1))
    truth = segmentation_metrics(test_masks, test_logits.argmax(1), ["bg", "fg"])["dice"]
    estimates = estimator.dice_estimates(test_logits)
    assert 0.3 < truth < 0.95
    # The logits are calibrated, so the average confidence is right; a threshold fitted on
    # all pixels (mostly background) overestimates the foreground's Dice, one per predicted
    # class does not (Li et al.'s 2022 finding).
    assert abs(estimates["AC"] - truth) < 0.03
    assert abs(estimates["CS-ATC"] - truth) < 0.03
    assert estimates["ATC"] - truth > 0.08


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"expected validation logits \(N, C\) and N targets"):
        Estimator(np.zeros((4, 2)), np.zeros(3, int))
    estimator = Estimator(np.eye(2)[[0, 1, 0, 1]] * 3, np.array([0, 1, 0, 0]))
    with pytest.raises(ValueError, match="unknown estimator 'ACT'"):
        estimator.correctness(np.zeros((2, 2)), "ACT")


def test_atc_negative_entropy_by_hand():
    # Validation: 4 samples, 3 of them right (accuracy 0.75); their negative entropies rank
    # them, and the threshold leaves the top 3/4 above it.
    p = np.array([[1.0, 0.0], [0.9, 0.1], [0.7, 0.3], [0.5, 0.5]])
    assert negative_entropy(p) == pytest.approx(
        [
            0.0,
            0.9 * np.log(0.9) + 0.1 * np.log(0.1),
            0.7 * np.log(0.7) + 0.3 * np.log(0.3),
            np.log(0.5),
        ]
    )
    logits = np.log(np.clip(p, 1e-300, None))
    estimator = Estimator(logits, np.array([0, 0, 1, 0]))
    scores = negative_entropy(softmax(logits, axis=1))
    assert estimator.ne_threshold == pytest.approx(np.quantile(scores, 0.25))
    # Test: scores above the threshold count as right; a uniform row never does.
    test = np.log(np.array([[0.95, 0.05], [0.5, 0.5], [0.99, 0.01], [0.6, 0.4]]))
    right = estimator.correctness(test, "ATC-NE")
    expected = negative_entropy(softmax(test, axis=1)) > estimator.ne_threshold
    assert right.tolist() == expected.astype(float).tolist() and right[1] == 0.0
    assert estimator.accuracy_estimates(test)["ATC-NE"] == pytest.approx(expected.mean())


def test_norcal_divides_each_class_by_its_training_count_to_the_power_gamma():
    from scipy.special import softmax

    from medimbalance.estimation import norcal_logits

    z, counts = np.array([[1.0, 2.0, 3.0]]), np.array([100, 10, 1])
    by_hand = np.exp(z) / counts**0.5
    by_hand /= by_hand.sum()  # p_c ∝ exp(z_c) / N_c^γ, renormalised (Pan et al. 2021)
    np.testing.assert_allclose(softmax(norcal_logits(z, counts, 0.5), 1), by_hand)
    # Segmentation: the background (class 0) keeps its score.
    kept = np.exp(z) / np.array([1.0, 10, 1]) ** 0.5
    np.testing.assert_allclose(
        softmax(norcal_logits(z, counts, 0.5, background=True), 1), kept / kept.sum()
    )
    np.testing.assert_allclose(norcal_logits(z, counts, 0.0), z)  # γ = 0: unchanged
    # Counts of 0 count as 1 (no infinite scores); one γ per row.
    rows = norcal_logits(np.zeros((2, 2)), np.array([0, 4]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(rows, [[0, -np.log(4)], [0, -2 * np.log(4)]])


def test_norcal_and_vs_estimate_the_probability_of_the_models_own_prediction(rng):
    from scipy.special import softmax

    from medimbalance.calibration import VectorScaling
    from medimbalance.estimation import GAMMAS, norcal_logits

    counts = np.array([900, 90, 10])
    y = rng.choice(3, 600, p=[0.8, 0.15, 0.05])
    # Over-confident (× 3) and biased towards the frequent class: NORCAL must lower both.
    logits = 3 * (rng.normal(0, 1, (600, 3)) + np.eye(3)[y]) + np.log(counts) * 0.6
    estimator = Estimator(logits, y, counts=counts)
    predicted = logits.argmax(1)
    accuracy = (predicted == y).mean()
    # γ: the grid value whose NORCAL confidence in the predictions is closest to the accuracy.
    gaps = [
        abs(
            softmax(norcal_logits(logits, counts, g), 1)[np.arange(600), predicted].mean()
            - accuracy
        )
        for g in GAMMAS
    ]
    assert estimator.gamma == GAMMAS[int(np.argmin(gaps))] and estimator.gamma > 0
    test = rng.normal(0, 1, (50, 3)) + np.log(counts) * 0.6
    calibrated = softmax(norcal_logits(test, counts, estimator.gamma), 1)
    own = test.argmax(1)
    np.testing.assert_allclose(
        estimator.correctness(test, "NORCAL"), calibrated[np.arange(50), own]
    )
    assert (calibrated.argmax(1) != own).any()  # NORCAL moves some top classes: not counted
    vs = VectorScaling().fit(logits, y)
    np.testing.assert_allclose(
        estimator.correctness(test, "VS"),
        softmax(vs.transform(test), 1)[np.arange(50), own],
        rtol=1e-6,
    )
    # One γ per predicted class; without counts the NORCAL estimators are undefined.
    assert estimator.class_gamma.shape == (3,)
    estimates = Estimator(logits, y).accuracy_estimates(test)
    assert estimates["NORCAL"] is None and estimates["CS-NORCAL"] is None
    assert estimates["VS"] == pytest.approx(estimator.accuracy_estimates(test)["VS"])
    with pytest.raises(ValueError, match="NORCAL needs one training count per class"):
        Estimator(logits, y, counts=[1, 2])
