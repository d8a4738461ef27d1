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


class BalancedMSEGAI(nn.Module):
    """Balanced MSE by Gaussian-mixture analytic integration (GAI): Ren et al., "Balanced MSE
    for Imbalanced Visual Regression", CVPR 2022, eq. 6. The training-target density is a
    Gaussian mixture ``Σ_k φ_k N(μ_k, v_k)``; with noise variance ``σ²`` a prediction's loss is

    ``(ŷ − y)²/2σ² + ½ log σ² + log Σ_k φ_k N(ŷ; μ_k, v_k + σ²) · √(2π)``

    (the ``−log N(y; ŷ, σ²)`` of the true target plus the log of the balancing integral, both
    without their common ``½ log 2π``), scaled by ``2σ²`` (detached) so that its gradient
    matches MSE's, averaged over the batch; σ is learnt when ``learn_sigma``."""

    def __init__(
        self,
        means: np.ndarray,
        variances: np.ndarray,
        weights: np.ndarray,
        sigma: float = 1.0,
        learn_sigma: bool = True,
    ) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        for name, value in (("means", means), ("variances", variances), ("weights", weights)):
            self.register_buffer(name, torch.tensor(np.ravel(value), dtype=torch.float32))
        self.sigma = nn.Parameter(torch.tensor(float(sigma)), requires_grad=learn_sigma)

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        variance = self.sigma.to(predictions.dtype) ** 2
        pred = predictions.reshape(-1, 1)
        fit = (pred[:, 0] - targets.to(pred.dtype)) ** 2 / (2 * variance) + 0.5 * variance.log()
        spread = self.variances.to(pred.dtype) + variance  # (K,)
        components = (
            self.weights.to(pred.dtype).log()
            - 0.5 * spread.log()
            - (pred - self.means.to(pred.dtype)) ** 2 / (2 * spread)
        )
        return ((fit + torch.logsumexp(components, dim=1)) * (2 * variance).detach()).mean()


def target_mixture(
    values: np.ndarray, components: int = 8, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The means, variances and weights ``(K,)`` of a ``components``-Gaussian mixture fitted to
    the training targets by scikit-learn's EM (seeded, as Ren et al. fit theirs)."""
    from sklearn.mixture import GaussianMixture

    values = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    distinct = len(np.unique(values))
    if distinct < components:
        raise ValueError(
            f"balanced_mse form 'gai' fits {components} Gaussian components to the training "
            f"targets, which take only {distinct} distinct value(s); lower loss_args.components"
        )
    mixture = GaussianMixture(components, random_state=seed).fit(values)
    return mixture.means_.ravel(), mixture.covariances_.ravel(), mixture.weights_.ravel()


@LOSSES.register("lds_mse")
def lds_mse(
    stats: TargetStats,
    bins: int = 50,
    kernel_size: int = 5,
    sigma: float = 2.0,
    power: float = 1.0,
    form: str = "reference",
    kernel: str = "gaussian",
) -> nn.Module:
    """MSE re-weighted by label-distribution smoothing (Yang et al. 2021, :func:`lds_weights`):
    the reference code's form by default, the paper text's with ``form="paper"``."""
    return WeightedMSE(*lds_weights(stats.values, bins, kernel_size, sigma, power, form, kernel))


@LOSSES.register("balanced_mse")
def balanced_mse(
    stats: TargetStats,
    sigma: float = 1.0,
    learn_sigma: bool = True,
    form: str = "bmc",
    components: int = 8,
) -> nn.Module:
    """Balanced MSE (Ren et al. 2022): batch-based Monte-Carlo (``bmc``, no density estimate)
    or Gaussian-mixture analytic integration (``gai``, a ``components``-Gaussian mixture of the
    training targets)."""
    if form == "bmc":
        return BalancedMSE(sigma, learn_sigma)
    if form == "gai":
        return BalancedMSEGAI(*target_mixture(stats.values, components), sigma, learn_sigma)
    raise ValueError(f"unknown balanced_mse form {form!r}; valid choices: bmc, gai")


@LOSSES.register("mse")
def mse(stats: TargetStats) -> nn.Module:
    """Mean squared error: the loss Thakoersingh (2021) trains the std-regression CNN with."""
    return WeightedMSE()
