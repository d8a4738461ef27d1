"""Calibration of class probabilities: errors, reliability bins and post-hoc scaling.

Errors (NumPy; binning as MONAI's ``calibration_binning``: ``n_bins`` equal-width bins over
[0, 1], a value on an inner edge in the lower bin):

- ``ece``/``mce``: expected and maximum calibration error of the top-label confidence (Guo et
  al., ICML 2017);
- ``classwise_ece``: the ECE of each class's probability against its one-hot label, averaged
  over classes (Kull et al., NeurIPS 2019);
- ``brier``: the multi-class Brier score ``mean Σ_c (p_c − y_c)²``; ``nll``: the negative
  log-likelihood.

Scalers are fitted on validation logits and transform logits: temperature scaling (one ``T``),
vector scaling (a scale and a bias per class) and class-specific temperature scaling (one ``T``
per predicted class; Li et al., MICCAI 2022). Temperatures minimise the NLL, or, with
``objective="ac"``, the gap between mean confidence and accuracy, as Li et al. fit them for
performance estimation. Post-hoc logit adjustment (Menon et al., ICLR 2021) removes the
training label prior from logits instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, softmax

from .losses.weights import log_prior

OBJECTIVES = ("nll", "ac")


def _edges(n_bins: int) -> np.ndarray:
    if n_bins < 1:
        raise ValueError(f"n_bins must be ≥ 1, got {n_bins}")
    return np.linspace(0.0, 1.0 + np.finfo(np.float32).eps, n_bins + 1)


def binning(
    values: np.ndarray, outcomes: np.ndarray, n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of ``values`` (probabilities): their mean, the mean of ``outcomes`` (0/1) and
    the count; empty bins have NaN means."""
    values = np.asarray(values, dtype=np.float64).ravel()
    outcomes = np.asarray(outcomes, dtype=np.float64).ravel()
    index = np.minimum(np.searchsorted(_edges(n_bins)[1:], values, side="left"), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = np.bincount(index, weights=values, minlength=n_bins) / counts
        mean_outcome = np.bincount(index, weights=outcomes, minlength=n_bins) / counts
    return mean_value, mean_outcome, counts


def _gaps(values, outcomes, n_bins) -> tuple[np.ndarray, np.ndarray]:
    mean_value, mean_outcome, counts = binning(values, outcomes, n_bins)
    filled = counts > 0
    return np.abs(mean_value - mean_outcome)[filled], counts[filled]


def _checked(probabilities: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if probabilities.ndim != 2 or probabilities.shape[0] != targets.shape[0] or targets.ndim != 1:
        raise ValueError(
            f"expected probabilities (N, C) and targets (N,), got {probabilities.shape} "
            f"and {targets.shape}"
        )
    if targets.size and (targets.min() < 0 or targets.max() >= probabilities.shape[1]):
        raise ValueError(f"targets must lie in 0..{probabilities.shape[1] - 1}")
    return probabilities, targets


def confidence_and_correct(
    probabilities: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence ``max_c p_c`` and whether the top label is right, per sample."""
    probabilities, targets = _checked(probabilities, targets)
    return probabilities.max(1), probabilities.argmax(1) == targets


def ece(probabilities: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top label: ``Σ_b (n_b/N) |conf_b − acc_b|``."""
    gaps, counts = _gaps(*confidence_and_correct(probabilities, targets), n_bins)
    return float((gaps * counts).sum() / counts.sum())


def mce(probabilities: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """Maximum calibration error of the top label: the largest gap over non-empty bins."""
    gaps, _ = _gaps(*confidence_and_correct(probabilities, targets), n_bins)
    return float(gaps.max())


def classwise_ece(probabilities: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """Mean over classes of the ECE of ``p_c`` against ``1[y = c]``."""
    probabilities, targets = _checked(probabilities, targets)
    per_class = []
    for c in range(probabilities.shape[1]):
        gaps, counts = _gaps(probabilities[:, c], targets == c, n_bins)
        per_class.append((gaps * counts).sum() / counts.sum())
    return float(np.mean(per_class))


def brier(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Multi-class Brier score ``mean_i Σ_c (p_ic − 1[y_i = c])²`` (0 is perfect, 2 worst)."""
    probabilities, targets = _checked(probabilities, targets)
    one_hot = np.eye(probabilities.shape[1])[targets]
    return float(((probabilities - one_hot) ** 2).sum(1).mean())


def nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the targets under ``softmax(logits)``."""
    return _nll(*_checked(logits, targets))


def _nll(logits: np.ndarray, targets: np.ndarray) -> float:
    return float(-log_softmax(logits, axis=1)[np.arange(len(targets)), targets].mean())


def calibration_metrics(logits: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> dict:
    """Every calibration error of ``softmax(logits)``, the accuracy and the reliability bins
    of the top label (``confidence``, ``accuracy``, ``count`` per bin)."""
    probabilities = softmax(np.asarray(logits, dtype=np.float64), axis=1)
    confidence, correct = confidence_and_correct(probabilities, targets)
    mean_confidence, accuracy, counts = binning(confidence, correct, n_bins)
    return {
        "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()),
        "ece": ece(probabilities, targets, n_bins),
        "mce": mce(probabilities, targets, n_bins),
        "classwise_ece": classwise_ece(probabilities, targets, n_bins),
        "brier": brier(probabilities, targets),
        "nll": nll(logits, targets),
        "reliability": {
            "confidence": _listed(mean_confidence),
            "accuracy": _listed(accuracy),
            "count": counts.astype(int).tolist(),
        },
    }


def _listed(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


# ---- Post-hoc scaling ----------------------------------------------------------------------


def _fit_temperature(logits: np.ndarray, targets: np.ndarray, objective: str) -> float:
    """The temperature minimising ``objective`` on ``(logits, targets)``, searched over
    ``log T ∈ [−5, 5]``."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: unknown {objective!r}; valid choices: {OBJECTIVES}")
    accuracy = float((logits.argmax(1) == targets).mean())

    def loss(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        if objective == "nll":
            return _nll(scaled, targets)
        return abs(softmax(scaled, axis=1).max(1).mean() - accuracy)

    result = minimize_scalar(loss, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


class TemperatureScaling:
    """``z / T`` with one temperature for all samples (Guo et al., ICML 2017)."""

    def __init__(self, objective: str = "nll") -> None:
        self.objective, self.temperature = objective, 1.0

    def fit(self, logits: np.ndarray, targets: np.ndarray) -> TemperatureScaling:
        logits, targets = _checked(logits, targets)
        self.temperature = _fit_temperature(logits, targets, self.objective)
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64) / self.temperature

    def params(self) -> dict:
        return {"temperature": self.temperature}


class ClassSpecificTemperatureScaling:
    """``z / T_k`` where ``k = argmax z``: one temperature per predicted class, each fitted on
    the validation samples predicted as that class (Li et al., MICCAI 2022). A class predicted
    for fewer than ``min_samples`` validation samples keeps the global temperature."""

    def __init__(self, objective: str = "nll", min_samples: int = 5) -> None:
        self.objective, self.min_samples = objective, min_samples
        self.temperatures: np.ndarray = np.ones(0)

    def fit(self, logits: np.ndarray, targets: np.ndarray) -> ClassSpecificTemperatureScaling:
        logits, targets = _checked(logits, targets)
        overall = _fit_temperature(logits, targets, self.objective)
        predicted = logits.argmax(1)
        self.temperatures = np.full(logits.shape[1], overall)
        for k in range(logits.shape[1]):
            members = predicted == k
            if members.sum() >= self.min_samples:
                self.temperatures[k] = _fit_temperature(
                    logits[members], targets[members], self.objective
                )
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64)
        return logits / self.temperatures[logits.argmax(1)][:, None]

    def params(self) -> dict:
        return {"temperatures": self.temperatures.tolist()}


class VectorScaling:
    """``w ⊙ z + b`` with a scale and a bias per class, fitted by NLL with L-BFGS (Guo et al.,
    ICML 2017). Unlike temperatures, it can change the predicted class."""

    def __init__(self) -> None:
        self.scale: np.ndarray = np.ones(0)
        self.bias: np.ndarray = np.zeros(0)

    def fit(self, logits: np.ndarray, targets: np.ndarray) -> VectorScaling:
        logits, targets = _checked(logits, targets)
        n, c = logits.shape
        one_hot = np.eye(c)[targets]

        def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:c], theta[c:]
            z = logits * w + b
            log_p = log_softmax(z, axis=1)
            residual = (np.exp(log_p) - one_hot) / n  # dNLL/dz
            grad = np.concatenate([(residual * logits).sum(0), residual.sum(0)])
            return float(-(log_p * one_hot).sum() / n), grad

        start = np.concatenate([np.ones(c), np.zeros(c)])
        result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B")
        self.scale, self.bias = result.x[:c], result.x[c:]
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float64) * self.scale + self.bias

    def params(self) -> dict:
        return {"scale": self.scale.tolist(), "bias": self.bias.tolist()}


SCALERS = {
    "temperature": TemperatureScaling,
    "vector": VectorScaling,
    "class_temperature": ClassSpecificTemperatureScaling,
}


def calibrate(
    val_logits: np.ndarray,
    val_targets: np.ndarray,
    test_logits: np.ndarray,
    test_targets: np.ndarray,
    scalers: Sequence[str] = tuple(SCALERS),
    n_bins: int = 15,
) -> dict:
    """Calibration metrics on the test split before (``none``) and after each scaler fitted on
    the validation split, with each scaler's fitted parameters."""
    out = {"none": calibration_metrics(test_logits, test_targets, n_bins)}
    for name in scalers:
        if name not in SCALERS:
            raise ValueError(f"unknown scaler {name!r}; valid choices: {', '.join(SCALERS)}")
        scaler = SCALERS[name]().fit(val_logits, val_targets)
        out[name] = calibration_metrics(scaler.transform(test_logits), test_targets, n_bins)
        out[name]["params"] = scaler.params()
    return out


def posthoc_logit_adjustment(
    logits: np.ndarray, counts: Sequence[int], tau: float = 1.0
) -> np.ndarray:
    """Post-hoc logit adjustment ``z − τ log π`` of logits ``(N, C)`` by the label prior of the
    training counts (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021)."""
    return logits - tau * log_prior(counts)
