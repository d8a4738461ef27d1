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
