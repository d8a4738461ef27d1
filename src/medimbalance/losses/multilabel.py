"""Multi-label losses: logits ``(B, L)``, multi-hot targets ``(B, L)`` (float)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import FocalLoss as MonaiFocalLoss
from torch import nn

from ..targets import TargetStats
from . import LOSSES
from .weights import label_weights


class WeightedBCE(nn.Module):
    """Binary cross-entropy per label, ``−(w_pos y log σ(z) + w_neg (1 − y) log(1 − σ(z)))``,
    averaged over images and labels; without weights, plain BCE."""

    def __init__(self, pos: torch.Tensor | None = None, neg: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos", pos)
        self.register_buffer("neg", neg)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype)
        weight = None
        if self.pos is not None:
            weight = targets * self.pos.to(logits.dtype) + (1 - targets) * self.neg.to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, targets, weight=weight)


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al., "Asymmetric Loss For Multi-Label Classification", ICCV
    2021, eqs. 1–4): per label, with ``p = σ(z)`` and the shifted probability ``p_m = max(p − m,
    0)`` of the negatives,

    ``−y (1 − p)^{γ+} log p − (1 − y) p_m^{γ−} log(1 − p_m)``,

    summed over labels and averaged over the batch (the reference code sums over the batch too;
    the log is clamped at ``1e-8`` as there). The focusing weights carry gradient, as in the
    paper's formula (the authors' training script detaches them)."""

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05) -> None:
        super().__init__()
        if min(gamma_pos, gamma_neg, clip) < 0 or clip >= 1:
            raise ValueError(
                f"asl needs gamma_pos, gamma_neg ≥ 0 and clip in [0, 1), got {gamma_pos}, "
                f"{gamma_neg}, {clip}"
            )
        self.gamma_pos, self.gamma_neg, self.clip = gamma_pos, gamma_neg, clip

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y = targets.to(logits.dtype)
        p = torch.sigmoid(logits)
        p_neg = (1 - p + self.clip).clamp(max=1)  # 1 − p_m
        positive = y * torch.log(p.clamp(min=1e-8)) * (1 - p) ** self.gamma_pos
        negative = (1 - y) * torch.log(p_neg.clamp(min=1e-8)) * (1 - p_neg) ** self.gamma_neg
        return -(positive + negative).sum(1).mean()


@LOSSES.register("bce")
def bce(stats: TargetStats) -> nn.Module:
    """Binary cross-entropy with logits, one sigmoid per label."""
    return WeightedBCE()


@LOSSES.register("weighted_bce")
def weighted_bce(stats: TargetStats) -> nn.Module:
    """Weighted BCE: each label's positives and negatives weigh equally (:func:`label_weights`)."""
    pos, neg = label_weights(stats.counts, stats.total)
    return WeightedBCE(torch.from_numpy(pos), torch.from_numpy(neg))


@LOSSES.register("focal_bce")
def focal_bce(stats: TargetStats, gamma: float = 2.0) -> nn.Module:
    """Sigmoid focal loss per label (Lin et al., ICCV 2017), MONAI ``FocalLoss``."""
    return MonaiFocalLoss(gamma=gamma, use_softmax=False)


@LOSSES.register("asl")
def asymmetric(
    stats: TargetStats, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05
) -> nn.Module:
    """Asymmetric loss (Ridnik et al. 2021; their recommended γ+ = 0, γ− = 4, m = 0.05)."""
    return AsymmetricLoss(gamma_pos, gamma_neg, clip)
