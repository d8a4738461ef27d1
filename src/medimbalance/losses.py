"""Losses by name. Each builder receives the training set's class counts (for re-weighting)
and the loss's own keyword arguments (``loss_args`` in the config).

Classification losses take logits ``(B, C)`` and integer targets ``(B,)`` and return the batch
mean. Class-count formulas live in one function each: :func:`class_weights`,
:func:`ldam_margins`, :func:`log_prior`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import FocalLoss as MonaiFocalLoss
from torch import nn

from .registry import Registry

LossBuilder = Callable[..., nn.Module]
LOSSES: Registry[LossBuilder] = Registry("loss")


# ---- Class-count formulas --------------------------------------------------------------------


def class_weights(
    counts: Sequence[int], scheme: str = "effective", beta: float = 0.9999
) -> torch.Tensor:
    """Per-class weights ``(C,)``, normalised to sum to ``C``.

    ``inverse``: ``w_c ∝ 1 / n_c``. ``effective``: ``w_c ∝ (1 − β) / (1 − β^{n_c})``, the inverse
    effective number of samples (Cui et al., "Class-Balanced Loss Based on Effective Number of
    Samples", CVPR 2019).
    """
    n = np.asarray(counts, dtype=np.float64)
    if (n <= 0).any():
        raise ValueError(
            f"every class needs at least one training image, got counts {list(counts)}"
        )
    if scheme == "inverse":
        w = 1.0 / n
    elif scheme == "effective":
        if not 0 <= beta < 1:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        w = (1.0 - beta) / (1.0 - np.power(beta, n))
    else:
        raise ValueError(f"unknown weighting {scheme!r}; valid choices: inverse, effective")
    return torch.tensor(w / w.sum() * len(n), dtype=torch.float32)


def ldam_margins(counts: Sequence[int], max_margin: float = 0.5) -> torch.Tensor:
    """LDAM margins ``m_c ∝ n_c^{−1/4}``, scaled so the largest (rarest class) is ``max_margin``.

    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
    NeurIPS 2019.
    """
    m = 1.0 / np.power(np.asarray(counts, dtype=np.float64), 0.25)
    return torch.tensor(m * (max_margin / m.max()), dtype=torch.float32)


def log_prior(counts: Sequence[int]) -> torch.Tensor:
    """``log π_c`` with ``π_c = n_c / Σ n``: the training label prior."""
    n = np.asarray(counts, dtype=np.float64)
    return torch.tensor(np.log(n / n.sum()), dtype=torch.float32)


# ---- Losses ----------------------------------------------------------------------------------


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
        self.register_buffer("margins", ldam_margins(counts, max_margin))
        self.register_buffer("drw_weights", class_weights(counts, "effective", beta))
        self.scale, self.drw_epoch, self.epoch = scale, drw_epoch, 1

    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop before every epoch (1-based)."""
        self.epoch = epoch

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        shifted = logits - F.one_hot(targets, logits.shape[1]).to(logits.dtype) * self.margins.to(
            logits.dtype
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
        self.register_buffer("shift", tau * log_prior(counts))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.shift.to(logits.dtype), targets)


def posthoc_logit_adjustment(
    logits: np.ndarray, counts: Sequence[int], tau: float = 1.0
) -> np.ndarray:
    """Post-hoc logit adjustment: ``z − τ log π`` at prediction time (Menon et al., ICLR 2021)."""
    return logits - tau * log_prior(counts).numpy()


@LOSSES.register("ce")
def cross_entropy(class_counts: Sequence[int]) -> nn.Module:
    """Softmax cross-entropy."""
    return WeightedCrossEntropy(None)


@LOSSES.register("weighted_ce")
def weighted_cross_entropy(
    class_counts: Sequence[int], weighting: str = "inverse", beta: float = 0.9999
) -> nn.Module:
    """Cross-entropy weighted by inverse frequency or inverse effective number."""
    return WeightedCrossEntropy(class_weights(class_counts, weighting, beta))


@LOSSES.register("cb_ce")
def class_balanced_ce(class_counts: Sequence[int], beta: float = 0.9999) -> nn.Module:
    """Class-balanced cross-entropy (Cui et al. 2019): effective-number weights."""
    return WeightedCrossEntropy(class_weights(class_counts, "effective", beta))


@LOSSES.register("focal")
def focal(class_counts: Sequence[int], gamma: float = 2.0) -> nn.Module:
    """Softmax focal loss (Lin et al. 2017)."""
    return SoftmaxFocal(gamma)


@LOSSES.register("cb_focal")
def class_balanced_focal(
    class_counts: Sequence[int], gamma: float = 1.0, beta: float = 0.9999
) -> nn.Module:
    """Class-balanced focal loss (Cui et al. 2019): effective-number weights on focal."""
    return SoftmaxFocal(gamma, class_weights(class_counts, "effective", beta))


@LOSSES.register("ldam")
def ldam(
    class_counts: Sequence[int],
    max_margin: float = 0.5,
    scale: float = 30.0,
    drw_epoch: int | None = None,
    beta: float = 0.9999,
) -> nn.Module:
    """LDAM, with deferred re-weighting from ``drw_epoch`` when given (LDAM-DRW)."""
    return LDAMLoss(class_counts, max_margin, scale, drw_epoch, beta)


@LOSSES.register("logit_adjusted")
def logit_adjusted(class_counts: Sequence[int], tau: float = 1.0) -> nn.Module:
    """Logit-adjusted cross-entropy (Menon et al. 2021)."""
    return PriorShiftedCrossEntropy(class_counts, tau)


@LOSSES.register("balanced_softmax")
def balanced_softmax(class_counts: Sequence[int]) -> nn.Module:
    """Balanced softmax cross-entropy (Ren et al. 2020)."""
    return PriorShiftedCrossEntropy(class_counts, 1.0)


def build_loss(name: str, class_counts: Sequence[int], **kwargs) -> nn.Module:
    """Build the loss registered as ``name`` for a training set with ``class_counts``;
    ``kwargs`` are the loss's own parameters (``loss_args`` in the config)."""
    builder = LOSSES.get(name)
    try:
        return builder(class_counts, **kwargs)
    except TypeError as error:
        raise ValueError(f"loss {name!r}: {error}") from None
