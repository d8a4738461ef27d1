"""Calibration errors against MONAI and scikit-learn, and post-hoc scaling on toy models."""

import math

import numpy as np
import pytest
import torch
from monai.metrics import CalibrationErrorMetric
from scipy.special import softmax
from sklearn.metrics import brier_score_loss, log_loss

from medimbalance.calibration import (
    ClassSpecificTemperatureScaling,
    TemperatureScaling,
    VectorScaling,
    binning,
    brier,
    calibrate,
    classwise_ece,
    ece,
    mce,
    nll,
    posthoc_logit_adjustment,
)


def random_predictions(n=500, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, classes))
    return logits, softmax(logits, axis=1), rng.integers(0, classes, n)


def monai_error(values, outcomes, reduction, n_bins):
    """MONAI's calibration error of one channel of values (1, 1, N) against 0/1 outcomes."""
    metric = CalibrationErrorMetric(
        num_bins=n_bins,
        calibration_reduction=reduction,
        include_background=True,
        metric_reduction="mean",
    )
    as_tensor = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32))[None]  # noqa: E731
    metric(as_tensor(values), as_tensor(outcomes))
    return float(metric.aggregate())


@pytest.mark.parametrize("n_bins", [10, 15])
def test_errors_match_monai(n_bins):
    _, p, y = random_predictions()
    confidence, correct = p.max(1), (p.argmax(1) == y)
    assert ece(p, y, n_bins) == pytest.approx(
        monai_error(confidence[None], correct[None], "expected", n_bins), abs=1e-6
    )
    assert mce(p, y, n_bins) == pytest.approx(
        monai_error(confidence[None], correct[None], "maximum", n_bins), abs=1e-6
    )
    one_hot = np.eye(4)[y]
    assert classwise_ece(p, y, n_bins) == pytest.approx(
        monai_error(p.T, one_hot.T, "expected", n_bins),
        abs=1e-6,  # 4 channels, mean over them
    )


def test_brier_and_nll_match_scikit_learn():
    logits, p, y = random_predictions()
    assert brier(p, y) == pytest.approx(brier_score_loss(y, p, scale_by_half=False))
    assert nll(logits, y) == pytest.approx(log_loss(y, p))


def test_a_calibrated_predictor_has_an_ece_near_zero():
    rng = np.random.default_rng(1)
    p = rng.dirichlet([0.5] * 3, 20000)
    y = np.array([rng.choice(3, p=row) for row in p])  # labels drawn from the predictions
    assert ece(p, y) < 0.015 and classwise_ece(p, y) < 0.015
    assert ece(p, (p.argmax(1) + 1) % 3) > 0.5  # always wrong, confidently


def test_binning_counts_and_the_inner_edge_convention():
    values = np.array([0.0, 0.1, 0.25, 0.5, 0.5000001, 1.0])
    mean_value, mean_outcome, counts = binning(values, [0, 0, 1, 1, 0, 1], n_bins=4)
    assert counts.tolist() == [3, 1, 1, 1]  # 0.25 and 0.5 fall in the lower bin
    assert mean_outcome[0] == pytest.approx(1 / 3) and mean_value[3] == 1.0


def overconfident(n=3000, seed=2, sharpen=3.0):
    """Logits whose softmax is calibrated, times ``sharpen`` (over-confident)."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.2, (n, 3))
    y = np.array([rng.choice(3, p=row) for row in softmax(true_logits, axis=1)])
    return true_logits * sharpen, y


def test_temperature_scaling_undoes_over_confidence():
    logits, y = overconfident()
    val, test = slice(0, 1500), slice(1500, None)
    scaler = TemperatureScaling().fit(logits[val], y[val])
    assert scaler.temperature == pytest.approx(3.0, rel=0.15)
    assert nll(scaler.transform(logits[test]), y[test]) < nll(logits[test], y[test]) - 0.2
    after = softmax(scaler.transform(logits[test]), axis=1)
    assert ece(after, y[test]) < ece(softmax(logits[test], axis=1), y[test]) / 2
    by_gap = TemperatureScaling(objective="ac").fit(logits[val], y[val])
    scaled = softmax(by_gap.transform(logits[val]), axis=1)
    assert scaled.max(1).mean() == pytest.approx((logits[val].argmax(1) == y[val]).mean(), abs=1e-3)


def test_class_specific_temperatures_beat_one_when_only_the_minority_is_off():
    rng = np.random.default_rng(3)
    n = 6000
    true_logits = rng.normal(0, 1.0, (n, 3)) + np.array([1.5, 0.0, -1.5])  # class 2 is rare
    y = np.array([rng.choice(3, p=row) for row in softmax(true_logits, axis=1)])
    logits = true_logits.copy()
    minority = true_logits.argmax(1) == 2
    logits[minority] *= 4.0  # only samples predicted as the minority are over-confident
    val, test = slice(0, n // 2), slice(n // 2, None)
    one = TemperatureScaling().fit(logits[val], y[val])
    per_class = ClassSpecificTemperatureScaling().fit(logits[val], y[val])
    assert per_class.temperatures[2] > 2.5 and abs(per_class.temperatures[0] - 1) < 0.3
    assert nll(per_class.transform(logits[test]), y[test]) < nll(
        one.transform(logits[test]), y[test]
    )
    p_cs = softmax(per_class.transform(logits[test]), axis=1)
    p_ts = softmax(one.transform(logits[test]), axis=1)
    assert classwise_ece(p_cs, y[test]) < classwise_ece(p_ts, y[test])
    assert (per_class.transform(logits).argmax(1) == logits.argmax(1)).all()  # same predictions


def test_vector_scaling_fits_and_calibrate_reports_before_and_after():
    logits, y = overconfident(seed=4)
    scaler = VectorScaling().fit(logits[:1500], y[:1500])
    assert np.all(scaler.scale > 0.15) and np.all(scaler.scale < 0.6)  # about 1/3 each
    report = calibrate(logits[:1500], y[:1500], logits[1500:], y[1500:], n_bins=10)
    assert set(report) == {"none", "temperature", "vector", "class_temperature"}
    for name in ("temperature", "vector", "class_temperature"):
        assert report[name]["nll"] < report["none"]["nll"]
    assert len(report["none"]["reliability"]["count"]) == 10
    assert sum(report["none"]["reliability"]["count"]) == 1500
    with pytest.raises(ValueError, match="unknown scaler 'matrix'"):
        calibrate(logits, y, logits, y, scalers=["matrix"])
    with pytest.raises(ValueError, match=r"expected probabilities \(N, C\) and targets \(N,\)"):
        ece(softmax(logits, axis=1), y[:-1])


def test_posthoc_adjustment_removes_the_prior():
    logits = np.array([[2.0, 1.0]])
    adjusted = posthoc_logit_adjustment(logits, [3, 1])
    assert adjusted == pytest.approx(np.array([[2 - math.log(0.75), 1 - math.log(0.25)]]), rel=1e-6)
    half = posthoc_logit_adjustment(logits, [3, 1], tau=0.5)
    assert half == pytest.approx(np.array([[2 - math.log(0.75) / 2, 1 - math.log(0.25) / 2]]))
