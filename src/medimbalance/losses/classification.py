"""Classification losses: logits ``(B, C)``, integer targets ``(B,)``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.losses import FocalLoss as MonaiFocalLoss
from torch import nn

from ..targets import TargetStats, one_hot
from . import LOSSES
from .weights import (
    class_weights,
    grw_weights,
    label_aware_smoothing,
    ldam_margins,
    log_prior,
    per_class,
)


class WeightedCrossEntropy(nn.Module):
    """Cross-entropy with per-class weights, averaged over samples as ``Σ w_y ℓ / B``.

    (PyTorch's weighted mean divides by ``Σ w_y`` instead, which undoes the re-weighting of a
    batch with a single class.)
    """

    def __init__(self, weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(logits, targets, reduction="none")
        if self.weights is not None:
            loss = loss * self.weights.to(loss.dtype)[targets]
        return loss.mean()


class SoftmaxFocal(nn.Module):
    """Softmax focal loss ``−Σ_c y_c (1 − p_c)^γ log p_c`` per sample, batch mean, optionally
    class-weighted (class-balanced focal).

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017; computed by MONAI's
    ``FocalLoss`` (whose ``mean`` reduction also averages over classes, so we sum over them).
    """

    def __init__(self, gamma: float = 2.0, weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.focal = MonaiFocalLoss(
            to_onehot_y=True, use_softmax=True, gamma=gamma, reduction="none"
        )
        self.register_buffer("weights", weights)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        loss = self.focal(logits, targets[:, None]).sum(1)
        if self.weights is not None:
            loss = loss * self.weights.to(loss.dtype)[targets]
        return loss.mean()


class SigmoidClassBalanced(nn.Module):
    """Class-balanced sigmoid losses of Cui et al. ("Class-Balanced Loss Based on Effective
    Number of Samples", CVPR 2019, eqs. 6–7): each class is a one-vs-all binary problem on
    ``p_c = σ(z_c)``, and sample ``i`` of class ``y_i`` contributes

        w_{y_i} Σ_c (1 − p^t_{ic})^γ · BCE(z_{ic}, [c = y_i]),

    with ``p^t = p`` for the true class and ``1 − p`` for the others, summed over classes and
    averaged over the batch (the reference code divides the sum by the number of positive
    labels, one per sample). ``γ = 0`` is the class-balanced sigmoid cross-entropy. The
    modulating factor is computed as ``exp(γ · log σ(−s))`` with ``s = z`` for the true class and
    ``−z`` otherwise, which is ``(1 − p^t)^γ`` without a power of a small number.

    ``initial_bias`` (with ``prior_bias``): Cui et al. start the output layer's bias at
    ``−log((1 − π)/π)``, ``π = 1/C``, so that every class starts at probability ``π`` and the
    C − 1 negatives do not swamp the loss at the first step; the training sets it.
    """

    def __init__(self, weights: torch.Tensor, gamma: float = 0.0, prior_bias: bool = True) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be ≥ 0, got {gamma}")
        self.register_buffer("weights", weights)
        self.gamma, self.prior_bias = float(gamma), prior_bias

    def initial_bias(self, num_classes: int) -> float | None:
        """The output bias the loss wants to start from, or ``None``."""
        if not self.prior_bias:
            return None
        prior = 1.0 / num_classes
        return -math.log((1.0 - prior) / prior)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labels = one_hot(targets, logits.shape[1], logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        if self.gamma:
            signed = torch.where(labels > 0, logits, -logits)
            loss = loss * torch.exp(self.gamma * F.logsigmoid(-signed))
        weights = self.weights.to(loss.dtype)[targets]
        return (weights * loss.sum(1)).mean()


class LDAMLoss(nn.Module):
    """LDAM: cross-entropy on ``s · (z − m_y e_y)``, the true class's logit lowered by its margin;
    with deferred re-weighting (DRW), class-balanced weights switch on at ``drw_epoch``.

    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
    NeurIPS 2019 (``s = 30``, ``max_margin = 0.5``, DRW with effective-number weights, β = 0.9999);
    weighted batches are averaged by ``Σ w_y``, as in the paper's code.
    """

    def __init__(
        self,
        counts: Sequence[int],
        max_margin: float = 0.5,
        scale: float = 30.0,
        drw_epoch: int | None = None,
        beta: float = 0.9999,
    ) -> None:
        super().__init__()
        self.register_buffer("margins", torch.from_numpy(ldam_margins(counts, max_margin)))
        self.register_buffer(
            "drw_weights", torch.from_numpy(class_weights(counts, "effective", beta))
        )
        self.scale, self.drw_epoch, self.epoch = scale, drw_epoch, 1

    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop before every epoch (1-based)."""
        self.epoch = epoch

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        shifted = logits - one_hot(targets, logits.shape[1], logits.dtype) * per_class(
            self.margins, logits
        )
        deferred = self.drw_epoch is not None and self.epoch >= self.drw_epoch
        weight = self.drw_weights.to(logits.dtype) if deferred else None
        return F.cross_entropy(self.scale * shifted, targets, weight=weight)


class PriorShiftedCrossEntropy(nn.Module):
    """Cross-entropy on ``z + τ log π``: the logit-adjusted loss (Menon et al., "Long-tail
    learning via logit adjustment", ICLR 2021); with ``τ = 1`` it is the balanced softmax (Ren et
    al., "Balanced Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020)."""

    def __init__(self, counts: Sequence[int], tau: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("shift", tau * torch.from_numpy(log_prior(counts)))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.shift.to(logits.dtype), targets)


class VectorScalingLoss(nn.Module):
    """Vector-scaling loss (Kini et al., "Label-Imbalanced and Group-Sensitive Classification
    under Overparameterization", NeurIPS 2021): cross-entropy on ``Δ_c z_c + ι_c`` with the
    multiplicative ``Δ_c = (n_c / n_max)^γ`` and the additive ``ι_c = τ log π_c``. γ = 0 is
    logit adjustment; τ = 0 the multiplicative (CDT) adjustment alone."""

    def __init__(self, counts: Sequence[int], gamma: float = 0.2, tau: float = 1.0) -> None:
        super().__init__()
        n = torch.tensor(counts, dtype=torch.float64)
        self.register_buffer("scale", ((n / n.max()) ** gamma).float())
        self.register_buffer("shift", tau * torch.from_numpy(log_prior(counts)))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        adjusted = logits * per_class(self.scale, logits) + per_class(self.shift, logits)
        return F.cross_entropy(adjusted, targets)


class LADELoss(nn.Module):
    """LADE (Hong et al., "Disentangling Label Distribution for Long-tailed Visual
    Recognition", CVPR 2021): the prior-corrected cross-entropy on ``z + log π`` plus ``α`` ×
    the LADE regulariser, which estimates, per class ``c`` on the batch, the Donsker–Varadhan
    bound ``mean_{i: y_i = c} z_ic − (log Σ_i exp(z_ic − log π_c − log C) − log B)`` minus
    ``λ`` × the square of its second term, and adds ``−Σ_c π_c`` × that (the authors' code: a
    class absent from the batch contributes only its second term)."""

    def __init__(self, counts: Sequence[int], alpha: float = 0.1, remine_lambda: float = 0.1):
        super().__init__()
        self.register_buffer("log_prior", torch.from_numpy(log_prior(counts)))
        self.alpha, self.remine_lambda = alpha, remine_lambda

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_prior_ = self.log_prior.to(logits.dtype)
        ce = F.cross_entropy(logits + log_prior_, targets)
        num_classes = logits.shape[1]
        member = F.one_hot(targets, num_classes).to(logits.dtype)  # (B, C)
        first = (logits * member).sum(0) / (member.sum(0) + 1e-8)
        shifted = logits - log_prior_ - math.log(num_classes)
        second = torch.logsumexp(shifted, dim=0) - math.log(len(logits))
        bound = first - second - self.remine_lambda * second**2
        return ce - self.alpha * (log_prior_.exp() * bound).sum()


class LabelAwareSmoothing(nn.Module):
    """Cross-entropy with label-aware smoothing (Zhong et al. 2021, MiSLAS): a sample of class
    ``y`` is scored against ``(1 − ε_y)·onehot(y) + ε_y·u``, ``u`` uniform over the ``C``
    classes, i.e. ``(1 − ε_y)·(−log p_y) + ε_y·mean_c(−log p_c)``, batch mean. (The paper's
    eq. 3 spreads ``ε_y`` over the ``C − 1`` other classes; the authors' code, which gives
    their numbers, over all ``C``, as here.)"""

    def __init__(self, smoothing: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("smoothing", smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1)
        eps = self.smoothing.to(log_p.dtype)[targets]
        nll = -log_p.gather(1, targets[:, None]).squeeze(1)
        return ((1 - eps) * nll + eps * -log_p.mean(1)).mean()


def _weights(stats: TargetStats, scheme: str, beta: float = 0.9999) -> torch.Tensor:
    return torch.from_numpy(class_weights(stats.counts, scheme, beta))


@LOSSES.register("ce")
def cross_entropy(stats: TargetStats) -> nn.Module:
    """Softmax cross-entropy."""
    return WeightedCrossEntropy(None)


@LOSSES.register("weighted_ce")
def weighted_cross_entropy(
    stats: TargetStats, weighting: str = "inverse", beta: float = 0.9999
) -> nn.Module:
    """Cross-entropy weighted by inverse frequency or inverse effective number."""
    return WeightedCrossEntropy(_weights(stats, weighting, beta))


@LOSSES.register("cb_ce")
def class_balanced_ce(stats: TargetStats, beta: float = 0.9999) -> nn.Module:
    """Class-balanced cross-entropy (Cui et al. 2019): effective-number weights."""
    return WeightedCrossEntropy(_weights(stats, "effective", beta))


@LOSSES.register("focal")
def focal(stats: TargetStats, gamma: float = 2.0) -> nn.Module:
    """Softmax focal loss (Lin et al. 2017)."""
    return SoftmaxFocal(gamma)


@LOSSES.register("cb_focal")
def class_balanced_focal(
    stats: TargetStats, gamma: float = 1.0, beta: float = 0.9999, prior_bias: bool = True
) -> nn.Module:
    """Class-balanced focal loss as Cui et al. (2019) define it: sigmoid (one-vs-all) focal
    terms weighted by the inverse effective number of the sample's class, the output bias
    starting at the prior (``prior_bias``)."""
    return SigmoidClassBalanced(_weights(stats, "effective", beta), gamma, prior_bias)


@LOSSES.register("cb_sigmoid")
def class_balanced_sigmoid(
    stats: TargetStats, beta: float = 0.9999, prior_bias: bool = True
) -> nn.Module:
    """Class-balanced sigmoid cross-entropy (Cui et al. 2019): :func:`class_balanced_focal`
    at ``γ = 0``."""
    return SigmoidClassBalanced(_weights(stats, "effective", beta), 0.0, prior_bias)


@LOSSES.register("cb_softmax_focal")
def class_balanced_softmax_focal(
    stats: TargetStats, gamma: float = 1.0, beta: float = 0.9999
) -> nn.Module:
    """An adaptation, not Cui et al.'s form: the softmax focal loss (Lin et al. 2017) with
    class-balanced weights (about half of :func:`class_balanced_focal` at γ = 2, which also
    counts the C − 1 negative terms)."""
    return SoftmaxFocal(gamma, _weights(stats, "effective", beta))


@LOSSES.register("ldam")
def ldam(
    stats: TargetStats,
    max_margin: float = 0.5,
    scale: float = 30.0,
    drw_epoch: int | None = None,
    beta: float = 0.9999,
) -> nn.Module:
    """LDAM, with deferred re-weighting from ``drw_epoch`` when given (LDAM-DRW)."""
    return LDAMLoss(stats.counts, max_margin, scale, drw_epoch, beta)


@LOSSES.register("logit_adjusted")
def logit_adjusted(stats: TargetStats, tau: float = 1.0) -> nn.Module:
    """Logit-adjusted cross-entropy (Menon et al. 2021)."""
    return PriorShiftedCrossEntropy(stats.counts, tau)


@LOSSES.register("balanced_softmax")
def balanced_softmax(stats: TargetStats) -> nn.Module:
    """Balanced softmax cross-entropy (Ren et al. 2020)."""
    return PriorShiftedCrossEntropy(stats.counts, 1.0)


@LOSSES.register("grw_ce")
def generalized_reweighted_ce(stats: TargetStats, rho: float = 1.2) -> nn.Module:
    """Cross-entropy with generalized re-weighting (Zhang et al. 2021, DisAlign's stage-2
    loss): :func:`~medimbalance.losses.weights.grw_weights`."""
    return WeightedCrossEntropy(torch.from_numpy(grw_weights(stats.counts, rho)))


@LOSSES.register("label_aware_smoothing")
def label_aware_smoothing_ce(
    stats: TargetStats, smooth_head: float = 0.3, smooth_tail: float = 0.0, shape: str = "concave"
) -> nn.Module:
    """Label-aware smoothing (Zhong et al. 2021, MiSLAS's stage-2 loss): more smoothing for
    frequent classes (:func:`~medimbalance.losses.weights.label_aware_smoothing`)."""
    eps = label_aware_smoothing(stats.counts, smooth_head, smooth_tail, shape)
    return LabelAwareSmoothing(torch.from_numpy(eps))


@LOSSES.register("vs")
def vector_scaling(stats: TargetStats, gamma: float = 0.2, tau: float = 1.0) -> nn.Module:
    """Vector-scaling loss (Kini et al. 2021): multiplicative and additive logit adjustment."""
    return VectorScalingLoss(stats.counts, gamma, tau)


@LOSSES.register("lade")
def lade(stats: TargetStats, alpha: float = 0.1, remine_lambda: float = 0.1) -> nn.Module:
    """LADE (Hong et al. 2021): prior-corrected cross-entropy plus the LADE regulariser."""
    return LADELoss(stats.counts, alpha, remine_lambda)
