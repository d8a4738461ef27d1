"""Regression losses: predictions ``(B, 1)``, targets ``(B,)``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..targets import TargetStats
from . import LOSSES
from .weights import lds_weights


class WeightedMSE(nn.Module):
    """Mean squared error, each target weighted by its bin's weight (none: plain MSE)."""

    def __init__(self, edges: np.ndarray | None = None, weights: np.ndarray | None = None) -> None:
        super().__init__()
        as_tensor = lambda a: None if a is None else torch.tensor(a, dtype=torch.float32)  # noqa: E731
        self.register_buffer("edges", as_tensor(edges))
        self.register_buffer("weights", as_tensor(weights))

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        error = (predictions.reshape(-1) - targets.to(predictions.dtype)) ** 2
        if self.weights is None:
            return error.mean()
        edges = self.edges.to(targets.dtype)
        bins = (torch.searchsorted(edges, targets.contiguous(), right=True) - 1).clamp(
            0, len(self.weights) - 1
        )
        return (self.weights.to(error.dtype)[bins] * error).mean()


class BalancedMSE(nn.Module):
    """Balanced MSE by batch-based Monte-Carlo (BMC): Ren et al., "Balanced MSE for Imbalanced
    Visual Regression", CVPR 2022. Cross-entropy over the batch of the logits
    ``−(ŷ_i − y_j)² / 2σ²``, the true pair on the diagonal, scaled by ``2σ²`` (detached); the
    noise scale σ is learnt with the network when ``learn_sigma``."""

    def __init__(self, sigma: float = 1.0, learn_sigma: bool = True) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = nn.Parameter(torch.tensor(float(sigma)), requires_grad=learn_sigma)

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        variance = self.sigma.to(predictions.dtype) ** 2
        difference = predictions.reshape(-1, 1) - targets.to(predictions.dtype).reshape(1, -1)
        logits = -(difference**2) / (2 * variance)
        diagonal = torch.arange(len(logits), device=logits.device)
        return F.cross_entropy(logits, diagonal) * (2 * variance).detach()


@LOSSES.register("mse")
def mse(stats: TargetStats) -> nn.Module:
    """Mean squared error: the loss Thakoersingh (2021) trains the std-regression CNN with."""
    return WeightedMSE()


@LOSSES.register("lds_mse")
def lds_mse(
    stats: TargetStats, bins: int = 50, kernel_size: int = 5, sigma: float = 2.0, power: float = 1.0
) -> nn.Module:
    """MSE re-weighted by label-distribution smoothing (Yang et al. 2021, :func:`lds_weights`)."""
    return WeightedMSE(*lds_weights(stats.values, bins, kernel_size, sigma, power))


@LOSSES.register("balanced_mse")
def balanced_mse(stats: TargetStats, sigma: float = 1.0, learn_sigma: bool = True) -> nn.Module:
    """Balanced MSE, batch-based Monte-Carlo form (Ren et al. 2022)."""
    return BalancedMSE(sigma, learn_sigma)
