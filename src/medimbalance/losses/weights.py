"""Weights from the training targets' counts, each formula once: class weights (inverse
frequency, inverse effective number), LDAM margins, the label prior, per-label BCE weights and
label-distribution-smoothing weights.

NumPy only (no torch), so the torch-free jobs use them too: the weighted sampler of
:mod:`medimbalance.balancing` and post-hoc logit adjustment in :mod:`medimbalance.calibration`.
The losses turn them into tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def inverse_effective_number(counts: Sequence[int] | np.ndarray, beta: float) -> np.ndarray:
    """``(1 − β) / (1 − β^{n_c})`` per class, float64: the inverse of the effective number of
    samples ``E_n = (1 − β^n) / (1 − β)`` (Cui et al., "Class-Balanced Loss Based on Effective
    Number of Samples", CVPR 2019). Raises ``ValueError`` for ``β`` outside ``[0, 1)``."""
    if not 0 <= beta < 1:
        raise ValueError(f"beta must lie in [0, 1), got {beta}")
    n = np.asarray(counts, dtype=np.float64)
    return (1.0 - beta) / (1.0 - np.power(beta, n))


def class_weights(
    counts: Sequence[int], scheme: str = "effective", beta: float = 0.9999
) -> np.ndarray:
    """Per-class weights ``(C,)`` float32, normalised to sum to ``C``.

    ``inverse``: ``w_c ∝ 1 / n_c``. ``effective``: ``w_c ∝`` :func:`inverse_effective_number`
    (Cui et al. 2019).
    """
    n = np.asarray(counts, dtype=np.float64)
    if (n <= 0).any():
        raise ValueError(
            f"every class needs at least one training image, got counts {list(counts)}"
        )
    if scheme == "inverse":
        w = 1.0 / n
    elif scheme == "effective":
        w = inverse_effective_number(n, beta)
    else:
        raise ValueError(f"unknown weighting {scheme!r}; valid choices: inverse, effective")
    return (w / w.sum() * len(n)).astype(np.float32)


def ldam_margins(counts: Sequence[int], max_margin: float = 0.5) -> np.ndarray:
    """LDAM margins ``m_c ∝ n_c^{−1/4}`` ``(C,)`` float32, scaled so the largest (rarest class)
    is ``max_margin``.

    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
    NeurIPS 2019.
    """
    m = 1.0 / np.power(np.asarray(counts, dtype=np.float64), 0.25)
    return (m * (max_margin / m.max())).astype(np.float32)


def log_prior(counts: Sequence[int]) -> np.ndarray:
    """``log π_c`` with ``π_c = n_c / Σ n``, the training label prior, ``(C,)`` float32."""
    n = np.asarray(counts, dtype=np.float64)
    return np.log(n / n.sum()).astype(np.float32)


def label_weights(positives: Sequence[int], total: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-label weights ``(w_pos, w_neg)`` float32 that give a label's positives and negatives
    equal total weight: ``w_pos = N / 2P``, ``w_neg = N / 2(N − P)`` (Wang et al., "ChestX-ray8",
    CVPR 2017, weighted over the training set instead of each batch)."""
    p = np.asarray(positives, dtype=np.float64)
    bad = np.flatnonzero((p <= 0) | (p >= total))
    if bad.size:
        raise ValueError(
            f"weighted BCE needs positives and negatives of every label; label(s) {bad.tolist()} "
            f"have {p[bad].astype(int).tolist()} positives among {total} training images"
        )
    return (total / (2 * p)).astype(np.float32), (total / (2 * (total - p))).astype(np.float32)


def lds_weights(
    values: np.ndarray, bins: int = 50, kernel_size: int = 5, sigma: float = 2.0, power: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Label-distribution-smoothing weights (Yang et al., "Delving into Deep Imbalanced
    Regression", ICML 2021): the histogram of training targets over ``bins`` equal bins is
    convolved with a Gaussian kernel (``kernel_size`` bins, ``sigma`` bins, peak 1); a target's
    weight is ``1 / density^power`` of its bin (``power`` 1: inverse, 0.5: square-root inverse),
    scaled so the training targets' mean weight is 1.

    Returns the bin edges ``(bins + 1,)`` and the weight of each bin ``(bins,)``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("label-distribution smoothing needs training targets")
    edges = np.linspace(values.min(), values.max(), bins + 1)
    if edges[-1] == edges[0]:
        edges = edges[0] + np.linspace(-0.5, 0.5, bins + 1)
    hist = np.histogram(values, edges)[0].astype(np.float64)
    half = kernel_size // 2
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    density = np.convolve(hist, kernel / kernel.max(), mode="same")
    density = np.maximum(density, density[density > 0].min())
    weights = density**-power
    return edges, weights * (len(values) / (hist * weights).sum())  # Σ over samples = N


def per_class(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-class values ``(C,)`` shaped to broadcast over ``like`` ``(B, C, *spatial)``, on its
    device and in its dtype."""
    return values.to(like.device, like.dtype).view(1, -1, *([1] * (like.ndim - 2)))
