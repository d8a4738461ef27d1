"""Segmentation losses: logits ``(B, C, *spatial)``, integer masks ``(B, *spatial)`` or soft
labels ``(B, C, *spatial)`` (after mixup)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, GeneralizedDiceLoss, TverskyLoss
from torch import nn

from ..targets import TargetStats, one_hot
from . import LOSSES
from .weights import class_weights, per_class


def soft_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """``−Σ_c w_c y_c log softmax(z)_c``, averaged over images and voxels (``w = 1`` by default):
    the (weighted) log loss, for one-hot or soft labels ``(B, C, *spatial)``."""
    terms = labels * F.log_softmax(logits, dim=1)
    if weights is not None:
        terms = terms * per_class(weights, logits)
    return -terms.sum(1).mean()


class DiceWithLogLoss(nn.Module):
    """A Dice-type overlap loss (on softmax probabilities) plus the (weighted) log loss."""

    def __init__(self, dice: nn.Module, weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.dice = dice
        self.register_buffer("weights", weights)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labels = one_hot(targets, logits.shape[1], logits.dtype)
        return self.dice(logits, labels) + soft_cross_entropy(logits, labels, self.weights)


class OverlapLoss(nn.Module):
    """A MONAI overlap loss (Dice, Tversky) on softmax probabilities of one-hot or soft labels."""

    def __init__(self, overlap: nn.Module) -> None:
        super().__init__()
        self.overlap = overlap

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.overlap(logits, one_hot(targets, logits.shape[1], logits.dtype))


class SegmentationCE(nn.Module):
    """Cross-entropy per voxel, averaged over images and voxels (one-hot or soft labels)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return soft_cross_entropy(logits, one_hot(targets, logits.shape[1], logits.dtype))


def fbeta_weights(beta: float) -> tuple[float, float]:
    """The Tversky weights ``(α, β_T)`` of false positives and false negatives whose index is
    the F-β score: ``F_β = TP / (TP + FP/(1 + β²) + β² FN/(1 + β²))`` (Salehi et al., "Tversky
    loss function for image segmentation", MLMI 2017; Hashemi et al. 2018)."""
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return 1 / (1 + beta**2), beta**2 / (1 + beta**2)


class SegmentationFocal(nn.Module):
    """Softmax focal loss per voxel, ``−Σ_c (1 − p_c)^γ y_c log p_c``, averaged over voxels.

    ``asymmetric=True`` applies the focal down-weighting to the background (class 0) only and
    keeps plain cross-entropy on the rare foreground classes, so their loss is not suppressed
    once fitted: the asymmetric focal loss of Li, Kamnitsas and Glocker, "Analyzing Overfitting
    under Class Imbalance in Neural Networks for Image Segmentation", IEEE TMI 2021.
    """

    def __init__(self, gamma: float = 2.0, asymmetric: bool = False) -> None:
        super().__init__()
        self.gamma, self.asymmetric = gamma, asymmetric

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labels = one_hot(targets, logits.shape[1], logits.dtype)
        log_p = F.log_softmax(logits, dim=1)
        modulation = (1 - log_p.exp()).pow(self.gamma)
        if self.asymmetric:  # no down-weighting of the foreground
            modulation = torch.cat([modulation[:, :1], torch.ones_like(modulation[:, 1:])], 1)
        return -(modulation * labels * log_p).sum(1).mean()


class LargeMarginLoss(nn.Module):
    """Cross-entropy on ``z − m y``: each voxel's true-class logit lowered by an additive margin
    ``m``. ``asymmetric=True`` applies the margin to foreground classes only (Li et al., TMI
    2021): the rare class must win by ``m``, pushing its logits away from the boundary."""

    def __init__(self, margin: float = 1.0, asymmetric: bool = False) -> None:
        super().__init__()
        self.margin, self.asymmetric = margin, asymmetric

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labels = one_hot(targets, logits.shape[1], logits.dtype)
        margins = torch.full((logits.shape[1],), float(self.margin))
        if self.asymmetric:  # no margin on the background
            margins[0] = 0
        return soft_cross_entropy(logits - labels * per_class(margins, logits), labels)


class MarginFocalLoss(nn.Module):
    """Large margin and focal loss together (Li et al., TMI 2021, the combinations of Table
    II): the focal loss of :class:`SegmentationFocal` on the logits ``z − m y`` of
    :class:`LargeMarginLoss`. ``asymmetric=True`` takes both asymmetric forms: the margin on the
    foreground classes only, the focal down-weighting on the background only."""

    def __init__(self, margin: float = 1.0, gamma: float = 2.0, asymmetric: bool = False):
        super().__init__()
        self.margin, self.asymmetric = margin, asymmetric
        self.focal = SegmentationFocal(gamma, asymmetric)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        labels = one_hot(targets, logits.shape[1], logits.dtype)
        margins = torch.full((logits.shape[1],), float(self.margin))
        if self.asymmetric:
            margins[0] = 0
        return self.focal(logits - labels * per_class(margins, logits), labels)


@LOSSES.register("dice_ce")
def dice_ce(stats: TargetStats) -> nn.Module:
    """Soft Dice (MONAI ``DiceLoss``, softmax, background included) plus cross-entropy: the
    nnU-Net default (Isensee et al., Nature Methods 2021)."""
    return DiceWithLogLoss(DiceLoss(softmax=True))


@LOSSES.register("gdl_wll")
def gdl_wll(stats: TargetStats) -> nn.Module:
    """Generalized Dice loss (Sudre et al., DLMIA 2017; MONAI ``GeneralizedDiceLoss``, weights
    ``1/(Σ y_c)²``) plus the weighted log loss, class weights ∝ 1/voxel count over the training
    set normalised to sum to C: the sum of GDL and WLL that Li et al. (TMI 2021) train brain
    tumour segmentation with."""
    weights = torch.from_numpy(class_weights(stats.counts, "inverse"))
    return DiceWithLogLoss(GeneralizedDiceLoss(softmax=True), weights)


@LOSSES.register("seg_focal")
def seg_focal(stats: TargetStats, gamma: float = 2.0) -> nn.Module:
    """Focal loss per voxel (Lin et al., ICCV 2017), every class down-weighted."""
    return SegmentationFocal(gamma)


@LOSSES.register("asym_focal")
def asym_focal(stats: TargetStats, gamma: float = 2.0) -> nn.Module:
    """Asymmetric focal loss: down-weighting on the background only (Li et al., TMI 2021)."""
    return SegmentationFocal(gamma, asymmetric=True)


@LOSSES.register("large_margin")
def large_margin(stats: TargetStats, margin: float = 1.0) -> nn.Module:
    """Large-margin cross-entropy: an additive margin on every class's true logit."""
    return LargeMarginLoss(margin)


@LOSSES.register("asym_large_margin")
def asym_large_margin(stats: TargetStats, margin: float = 1.0) -> nn.Module:
    """Asymmetric large-margin loss: the margin on foreground logits only (Li et al., TMI 2021)."""
    return LargeMarginLoss(margin, asymmetric=True)


@LOSSES.register("seg_ce")
def seg_ce(stats: TargetStats) -> nn.Module:
    """Plain cross-entropy per voxel: Table II's "CE" baseline (Li et al., TMI 2021)."""
    return SegmentationCE()


@LOSSES.register("dice")
def dice(stats: TargetStats, include_background: bool = True) -> nn.Module:
    """Soft Dice alone (MONAI ``DiceLoss``, softmax; Milletari et al. 2016), mean over classes
    and images."""
    return OverlapLoss(DiceLoss(softmax=True, include_background=include_background))


@LOSSES.register("tversky")
def tversky(
    stats: TargetStats, alpha: float = 0.3, beta: float = 0.7, include_background: bool = True
) -> nn.Module:
    """Tversky loss ``1 − TP/(TP + α FP + β FN)`` per class (MONAI ``TverskyLoss``, softmax;
    Salehi et al. 2017, whose α = 0.3, β = 0.7 weigh false negatives more)."""
    return OverlapLoss(
        TverskyLoss(softmax=True, alpha=alpha, beta=beta, include_background=include_background)
    )


@LOSSES.register("fbeta")
def fbeta(stats: TargetStats, beta: float = 2.0, include_background: bool = True) -> nn.Module:
    """F-β loss ``1 − F_β`` as the Tversky loss with ``α = 1/(1 + β²)``, ``β_T = β²/(1 + β²)``
    (:func:`fbeta_weights`): Table II's F2, F4 and F8 rows are ``beta`` 2, 4 and 8."""
    a, b = fbeta_weights(beta)
    return OverlapLoss(
        TverskyLoss(softmax=True, alpha=a, beta=b, include_background=include_background)
    )


@LOSSES.register("margin_focal")
def margin_focal(stats: TargetStats, margin: float = 1.0, gamma: float = 2.0) -> nn.Module:
    """Large margin + focal loss, symmetric (Li et al., TMI 2021)."""
    return MarginFocalLoss(margin, gamma)


@LOSSES.register("asym_margin_focal")
def asym_margin_focal(stats: TargetStats, margin: float = 1.0, gamma: float = 2.0) -> nn.Module:
    """Asymmetric large margin + asymmetric focal loss (Li et al., TMI 2021)."""
    return MarginFocalLoss(margin, gamma, asymmetric=True)
