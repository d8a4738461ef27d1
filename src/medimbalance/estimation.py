"""Label-free performance estimation: how accurate (classification) or how good a segmentation
(Dice) a model is on unlabelled test data, from its confidence, calibrated on the labelled
validation split (Li et al., MICCAI 2022, and the methods they extend).

Estimators, each in a class-agnostic form and a class-specific (``CS-``) form whose parameter
is fitted per *predicted* class:

- ``AC``: average confidence (the mean top-label probability);
- ``DoC``: AC plus the validation gap between accuracy and average confidence (Guillory et al.
  2021); ``CS-DoC``: one gap per predicted class;
- ``ATC``: the share of test samples whose confidence exceeds the threshold at which the
  validation share equals the validation accuracy (Garg et al., "Leveraging Unlabeled Data to
  Predict Out-of-Distribution Performance", ICLR 2022: ATC-MC, the maximum-confidence score);
  ``CS-ATC``: one threshold per predicted class;
- ``ATC-NE``, ``CS-ATC-NE``: the same with Garg et al.'s negative-entropy score
  ``Σ_c p_c log p_c`` in place of the top-label probability (the score they recommend);
- ``TS``: AC after temperature scaling fitted so that validation confidence equals validation
  accuracy; ``CS-TS``: one temperature per predicted class;
- ``TS-ATC``, ``CS-TS-ATC``: ATC on temperature-scaled probabilities;
- ``VS``: the probability of the predicted class after vector scaling ``w ⊙ z + b`` fitted by
  NLL on the validation split (Guo et al., ICML 2017), the calibrator of the calibration
  tables used as an estimator;
- ``NORCAL``: the probability of the predicted class after normalised calibration (Pan et al.,
  "On Model Calibration for Long-Tailed Object Detection and Instance Segmentation", NeurIPS
  2021): each class's exponentiated logit divided by its training count to the power γ,
  ``p_c ∝ exp(z_c) / N_c^γ``, the background (segmentation's class 0) left unscaled as Pan et
  al. do, then renormalised; γ on a grid over [0, 2] so that the validation confidence equals
  the validation accuracy (the criterion Li et al. fit TS by). ``CS-NORCAL``: one γ per
  predicted class (our class-specific form after Li et al.; Pan et al. define one γ).

VS and NORCAL can move a sample's top class; every estimator scores the model's own
prediction (the uncalibrated argmax), so they give the calibrated probability of that class.

Every estimator turns into one number per test sample, the estimated probability that the
prediction is right. Accuracy is their mean. For segmentation they are per-pixel, and the Dice of
class ``c`` is estimated from soft counts: TP = Σ over pixels predicted ``c`` of that number,
FP = Σ of its complement, FN = Σ over the other pixels of their estimated error times the share
of their remaining probability on ``c``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from .calibration import ClassSpecificTemperatureScaling, TemperatureScaling, VectorScaling

ESTIMATORS = (
    "AC",
    "DoC",
    "CS-DoC",
    "ATC",
    "CS-ATC",
    "ATC-NE",
    "CS-ATC-NE",
    "TS",
    "CS-TS",
    "TS-ATC",
    "CS-TS-ATC",
    "VS",
    "NORCAL",
    "CS-NORCAL",
)
GAMMAS = np.round(np.linspace(0.0, 2.0, 201), 3)  # NORCAL's γ grid


def negative_entropy(probabilities: np.ndarray) -> np.ndarray:
    """``Σ_c p_c log p_c`` per row of ``(N, C)`` probabilities (0 log 0 = 0): 0 for a one-hot
    row, ``−log C`` for a uniform one."""
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * np.log(p), 0.0).sum(1)


def _threshold(confidence: np.ndarray, accuracy: float) -> float:
    """The confidence above which a share ``accuracy`` of the values lies."""
    return float(np.quantile(confidence, 1.0 - accuracy)) if len(confidence) else 0.5


def norcal_logits(
    logits: np.ndarray, counts: np.ndarray, gamma, background: bool = False
) -> np.ndarray:
    """Logits whose softmax is NORCAL's ``p_c ∝ exp(z_c) / N_c^γ`` (Pan et al. 2021):
    ``z_c − γ log N_c`` (counts below 1 count as 1), every class but class 0 when
    ``background``. ``gamma`` is one value or one per row of ``logits``."""
    shift = np.log(np.maximum(np.asarray(counts, np.float64), 1.0))
    if background:
        shift = np.where(np.arange(len(shift)) == 0, 0.0, shift)
    gamma = np.asarray(gamma, np.float64).reshape(-1, 1)
    return np.asarray(logits, np.float64) - gamma * shift


def _fit_gamma(logits, predicted, accuracy, counts, background) -> float:
    """The γ of :data:`GAMMAS` whose NORCAL probability of the predicted classes averages
    closest to ``accuracy`` (the smallest such γ)."""
    gaps = [
        abs(
            _chosen(softmax(norcal_logits(logits, counts, g, background), 1), predicted).mean()
            - accuracy
        )
        for g in GAMMAS
    ]
    return float(GAMMAS[int(np.argmin(gaps))])


def _chosen(probabilities: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    return np.take_along_axis(probabilities, predicted[:, None], 1)[:, 0]


class Estimator:
    """The fitted parameters of every estimator, from validation logits ``(N, C)`` and
    targets: :meth:`correctness` gives, per test sample, the estimated probability that its
    prediction is right. NORCAL needs the training ``counts`` per class (``None``: its two
    estimators are undefined); ``background``: class 0 is segmentation's background."""

    def __init__(
        self,
        val_logits: np.ndarray,
        val_targets: np.ndarray,
        min_samples: int = 5,
        counts: np.ndarray | None = None,
        background: bool = False,
    ):
        logits = np.asarray(val_logits, dtype=np.float64)
        targets = np.asarray(val_targets, dtype=np.int64)
        if logits.ndim != 2 or len(logits) != len(targets):
            raise ValueError(
                f"expected validation logits (N, C) and N targets, got {logits.shape} and "
                f"{targets.shape}"
            )
        self.num_classes = logits.shape[1]
        probabilities = softmax(logits, axis=1)
        predicted, confidence = probabilities.argmax(1), probabilities.max(1)
        correct = predicted == targets
        self.accuracy = float(correct.mean())
        self.gap = self.accuracy - float(confidence.mean())
        self.threshold = _threshold(confidence, self.accuracy)
        entropy_score = negative_entropy(probabilities)
        self.ne_threshold = _threshold(entropy_score, self.accuracy)
        self.ts = TemperatureScaling("ac").fit(logits, targets)
        self.cs_ts = ClassSpecificTemperatureScaling("ac", min_samples).fit(logits, targets)
        ts_conf = softmax(self.ts.transform(logits), axis=1).max(1)
        cs_conf = softmax(self.cs_ts.transform(logits), axis=1).max(1)
        self.ts_threshold = _threshold(ts_conf, self.accuracy)
        self.vs = VectorScaling().fit(logits, targets)
        self.counts, self.background = None if counts is None else np.asarray(counts), background
        if self.counts is not None and len(self.counts) != self.num_classes:
            raise ValueError(
                f"NORCAL needs one training count per class ({self.num_classes}), got "
                f"{len(self.counts)}"
            )
        self.gamma, self.class_gamma = None, None
        if self.counts is not None:
            fit = lambda rows, acc: _fit_gamma(  # noqa: E731
                logits[rows], predicted[rows], acc, self.counts, background
            )
            self.gamma = fit(slice(None), self.accuracy)
            self.class_gamma = np.full(self.num_classes, self.gamma)
        self.class_gap = np.full(self.num_classes, self.gap)
        self.class_threshold = np.full(self.num_classes, self.threshold)
        self.class_ts_threshold = np.full(self.num_classes, self.ts_threshold)
        self.class_ne_threshold = np.full(self.num_classes, self.ne_threshold)
        for k in range(self.num_classes):
            members = predicted == k
            if members.sum() < min_samples:
                continue
            class_accuracy = float(correct[members].mean())
            self.class_gap[k] = class_accuracy - float(confidence[members].mean())
            self.class_threshold[k] = _threshold(confidence[members], class_accuracy)
            self.class_ts_threshold[k] = _threshold(cs_conf[members], class_accuracy)
            self.class_ne_threshold[k] = _threshold(entropy_score[members], class_accuracy)
            if self.counts is not None:
                self.class_gamma[k] = fit(members, class_accuracy)

    def probabilities(self, logits: np.ndarray, name: str) -> np.ndarray:
        """The class probabilities an estimator reads: temperature-scaled for the TS ones,
        vector-scaled for VS, normalised by the training counts for the NORCAL ones."""
        logits = np.asarray(logits, dtype=np.float64)
        if name in ("TS", "TS-ATC"):
            logits = self.ts.transform(logits)
        elif name in ("CS-TS", "CS-TS-ATC"):
            logits = self.cs_ts.transform(logits)
        elif name == "VS":
            logits = self.vs.transform(logits)
        elif name == "NORCAL":
            logits = norcal_logits(logits, self.counts, self.gamma, self.background)
        elif name == "CS-NORCAL":
            gamma = self.class_gamma[logits.argmax(1)]
            logits = norcal_logits(logits, self.counts, gamma, self.background)
        return softmax(logits, axis=1)

    def defined(self, name: str) -> bool:
        """Whether estimator ``name`` has what it needs (NORCAL: the training counts)."""
        return "NORCAL" not in name or self.counts is not None

    def correctness(self, logits: np.ndarray, name: str) -> np.ndarray:
        """Per sample of ``logits (N, C)``, the estimated probability that the prediction is
        right under estimator ``name``."""
        if name not in ESTIMATORS:
            raise ValueError(f"unknown estimator {name!r}; valid choices: {', '.join(ESTIMATORS)}")
        if not self.defined(name):
            raise ValueError(f"{name} needs the training counts per class")
        predicted = np.asarray(logits).argmax(1)
        return self._correctness(self.probabilities(logits, name), name, predicted)

    def _correctness(
        self, probabilities: np.ndarray, name: str, predicted: np.ndarray
    ) -> np.ndarray:
        """:meth:`correctness` from the probabilities estimator ``name`` reads and the
        model's own ``predicted`` classes."""
        confidence = _chosen(probabilities, predicted)
        if name in ("AC", "TS", "CS-TS", "VS", "NORCAL", "CS-NORCAL"):
            return confidence
        if name == "DoC":
            return np.clip(confidence + self.gap, 0, 1)
        if name == "CS-DoC":
            return np.clip(confidence + self.class_gap[predicted], 0, 1)
        if name in ("ATC-NE", "CS-ATC-NE"):
            threshold = (
                self.ne_threshold if name == "ATC-NE" else self.class_ne_threshold[predicted]
            )
            return (negative_entropy(probabilities) > threshold).astype(np.float64)
        threshold = {
            "ATC": self.threshold,
            "TS-ATC": self.ts_threshold,
            "CS-ATC": self.class_threshold[predicted],
            "CS-TS-ATC": self.class_ts_threshold[predicted],
        }[name]
        return (confidence > threshold).astype(np.float64)

    def accuracy_estimates(self, logits: np.ndarray) -> dict[str, float | None]:
        """Every estimator's estimate of the accuracy on ``logits (N, C)`` (``None`` for
        one that is undefined)."""
        return {
            name: float(self.correctness(logits, name).mean()) if self.defined(name) else None
            for name in ESTIMATORS
        }

    def dice_estimates(self, logits: np.ndarray) -> dict[str, float | None]:
        """Every estimator's estimate of the mean foreground Dice of segmentation ``logits
        (N, C, *spatial)``: per image and foreground class from soft counts, averaged over the
        images where defined, then over classes (as the true Dice is)."""
        n, c = logits.shape[:2]
        pixels = np.moveaxis(np.asarray(logits, dtype=np.float64), 1, -1).reshape(-1, c)
        predicted = pixels.argmax(1)
        out = {}
        for name in ESTIMATORS:
            if not self.defined(name):
                out[name] = None
                continue
            probabilities = self.probabilities(pixels, name)  # once per estimator: voxel-sized
            right = self._correctness(probabilities, name, predicted).reshape(n, -1)
            out[name] = _soft_dice(right, probabilities.reshape(n, -1, c), predicted.reshape(n, -1))
        return out


def _soft_dice(right: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray) -> float | None:
    """Mean foreground Dice from per-pixel correctness ``(N, P)``, probabilities
    ``(N, P, C)`` and the model's predicted classes ``(N, P)``; a class neither predicted
    nor estimated missed in an image counts Dice 1, as the true Dice does
    (:data:`medimbalance.metrics.EMPTY_MASK_POLICY`)."""
    top = np.take_along_axis(probabilities, predicted[..., None], 2)[..., 0]
    rest = np.maximum(1.0 - top, 1e-12)
    per_class = []
    for k in range(1, probabilities.shape[2]):
        is_k = predicted == k
        tp = (right * is_k).sum(1)
        fp = ((1 - right) * is_k).sum(1)
        share = np.where(is_k, 0.0, probabilities[..., k] / rest)  # where the error goes
        fn = ((1 - right) * share).sum(1)
        denominator = 2 * tp + fp + fn
        with np.errstate(invalid="ignore", divide="ignore"):  # nothing there, nothing missed:
            dice = np.where(denominator > 1e-9, 2 * tp / denominator, 1.0)  # 1, as the true Dice
        if np.isfinite(dice).any():
            per_class.append(float(np.nanmean(dice)))
    return float(np.mean(per_class)) if per_class else None


def fit_estimator(
    val_logits: np.ndarray,
    val_targets: np.ndarray,
    task: str,
    counts: np.ndarray | None = None,
) -> Estimator:
    """The estimators of a run fitted on its validation outputs (segmentation: one sample per
    voxel, class 0 the background); ``counts``: the training images (voxels) per class that
    NORCAL normalises by."""
    val_logits = np.asarray(val_logits, dtype=np.float64)
    if task == "segmentation":
        flat = np.moveaxis(val_logits, 1, -1).reshape(-1, val_logits.shape[1])
        return Estimator(flat, np.asarray(val_targets).reshape(-1), counts=counts, background=True)
    return Estimator(val_logits, val_targets, counts=counts)


def estimate_performance(
    estimator: Estimator,
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    task: str,
    classes: list[str],
) -> dict:
    """The true performance of ``logits`` on ``targets`` (accuracy; mean foreground Dice for
    segmentation) and every estimator's label-free estimate of it."""
    from .metrics import task_metrics

    metric = "dice" if task == "segmentation" else "accuracy"
    logits = np.asarray(logits, dtype=np.float64)
    true = task_metrics(task, targets, logits, classes, hausdorff=False)[metric]
    if task == "segmentation":
        return {"true": true, "estimates": estimator.dice_estimates(logits)}
    return {"true": true, "estimates": estimator.accuracy_estimates(logits)}
