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


def grw_weights(counts: Sequence[int], rho: float = 1.2) -> np.ndarray:
    """Generalized re-weighting ``w_c ∝ (1 / r_c)^ρ``, ``r_c = n_c / Σ n``, normalised to sum
    to ``C``, float32 (Zhang et al., "Distribution Alignment: A Unified Framework for Long-tail
    Visual Recognition", CVPR 2021; their ImageNet-LT recipe uses ρ = 1.2). ρ = 0: no
    re-weighting; ρ = 1: inverse frequency."""
    n = np.asarray(counts, dtype=np.float64)
    if (n <= 0).any():
        raise ValueError(
            f"every class needs at least one training image, got counts {list(counts)}"
        )
    if rho < 0:
        raise ValueError(f"rho must be ≥ 0, got {rho}")
    w = (n.sum() / n) ** rho
    return (w / w.sum() * len(n)).astype(np.float32)


LAS_SHAPES = ("concave", "linear", "convex")


def label_aware_smoothing(
    counts: Sequence[int], head: float = 0.3, tail: float = 0.0, shape: str = "concave"
) -> np.ndarray:
    """Per-class smoothing ``ε_c`` of label-aware smoothing (Zhong et al., "Improving
    Calibration for Long-Tailed Recognition", CVPR 2021, eq. 5), float32: ``ε`` grows from
    ``tail`` at the rarest class (``n_K``) to ``head`` at the most frequent (``n_1``) along
    ``x = (n_c − n_K)/(n_1 − n_K)``: ``concave`` ``tail + (head − tail)·sin(πx/2)``,
    ``linear`` ``tail + (head − tail)·x``, ``convex`` ``head + (head − tail)·sin(3π/2 +
    πx/2)``. Equal counts give every class ``head``."""
    n = np.asarray(counts, dtype=np.float64)
    if shape not in LAS_SHAPES:
        raise ValueError(
            f"unknown smoothing shape {shape!r}; valid choices: {', '.join(LAS_SHAPES)}"
        )
    if not (0 <= tail <= 1 and 0 <= head <= 1):
        raise ValueError(f"smoothing must lie in [0, 1], got head {head}, tail {tail}")
    spread = n.max() - n.min()
    x = (n - n.min()) / spread if spread > 0 else np.ones_like(n)
    if shape == "concave":
        eps = tail + (head - tail) * np.sin(np.pi * x / 2)
    elif shape == "linear":
        eps = tail + (head - tail) * x
    else:
        eps = head + (head - tail) * np.sin(1.5 * np.pi + np.pi * x / 2)
    return eps.astype(np.float32)


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


LDS_FORMS = ("reference", "paper")
LDS_KERNELS = ("gaussian", "triang", "laplace")
LDS_CLIP = (5.0, 1000.0)  # the reference code's bounds on the counts for inverse weighting


def lds_kernel(
    kernel: str = "gaussian", size: int = 5, sigma: float = 2.0, form: str = "reference"
) -> np.ndarray:
    """The smoothing window of label-distribution smoothing, ``(size,)`` with peak 1.

    ``gaussian``, ``form="reference"``: the window of Yang et al.'s code, a unit impulse of
    ``size`` bins blurred by a Gaussian of ``sigma`` bins with reflecting edges (so the mass that
    falls outside the window folds back into it: with ``size`` 5 and ``sigma`` 2 the window is
    ``[0.86, 0.95, 1, 0.95, 0.86]``, against ``exp(−k²/2σ²) = [0.61, 0.88, 1, 0.88, 0.61]``, scipy's
    ``gaussian_filter1d`` truncating at 4σ);
    ``form="paper"``: the Gaussian density ``exp(−k²/2σ²)`` the paper writes. ``triang``: the
    triangle ``1 − |k|/(h+1)`` (``h = size // 2``); ``laplace``: ``exp(−|k|/σ)``.
    """
    if kernel not in LDS_KERNELS:
        raise ValueError(f"unknown LDS kernel {kernel!r}; valid choices: {', '.join(LDS_KERNELS)}")
    if form not in LDS_FORMS:
        raise ValueError(f"unknown LDS form {form!r}; valid choices: {', '.join(LDS_FORMS)}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the LDS kernel size must be an odd number of bins, got {size}")
    if sigma <= 0:
        raise ValueError(f"the LDS kernel sigma must be > 0, got {sigma}")
    half = size // 2
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    if kernel == "triang":
        window = 1 - np.abs(offsets) / (half + 1)
    elif kernel == "laplace":
        window = np.exp(-np.abs(offsets) / sigma)
    elif form == "paper":
        window = np.exp(-(offsets**2) / (2 * sigma**2))
    else:
        from scipy.ndimage import gaussian_filter1d

        impulse = (offsets == 0).astype(np.float64)
        window = gaussian_filter1d(impulse, sigma, mode="reflect")
    return window / window.max()


def lds_weights(
    values: np.ndarray,
    bins: int = 50,
    kernel_size: int = 5,
    sigma: float = 2.0,
    power: float = 1.0,
    form: str = "reference",
    kernel: str = "gaussian",
) -> tuple[np.ndarray, np.ndarray]:
    """Label-distribution-smoothing weights (Yang et al., "Delving into Deep Imbalanced
    Regression", ICML 2021) over ``bins`` equal bins of the training targets' range.

    ``form="reference"`` (default: what reproduces the paper's numbers) follows the authors'
    code: the bin counts ``n_b`` are first transformed — ``√n_b`` for square-root inverse
    weighting (``power`` 0.5), ``clip(n_b, 5, 1000)`` for inverse weighting (``power`` 1) — then
    convolved (zeros beyond the range) with :func:`lds_kernel`'s reference window, and a target
    weighs ``1 / smoothed`` of its bin. ``form="paper"`` follows the paper's text: the counts are
    smoothed with the Gaussian density as they are and a target weighs ``1 / smoothed^power``
    (any ``power`` > 0). Either way the weights are scaled so the training targets' mean weight
    is 1.

    Returns the bin edges ``(bins + 1,)`` and the weight of each bin ``(bins,)``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("label-distribution smoothing needs training targets")
    if form == "reference" and power not in (0.5, 1.0):
        raise ValueError(
            f"LDS power {power} has no reference form: Yang et al.'s code weighs by the "
            "square-root inverse (power 0.5) or the inverse (power 1); use form 'paper' for "
            "other powers"
        )
    if power <= 0:
        raise ValueError(f"LDS power must be > 0, got {power}")
    window = lds_kernel(kernel, kernel_size, sigma, form)
    edges = np.linspace(values.min(), values.max(), bins + 1)
    if edges[-1] == edges[0]:
        edges = edges[0] + np.linspace(-0.5, 0.5, bins + 1)
    hist = np.histogram(values, edges)[0].astype(np.float64)
    if form == "reference":
        counts = np.sqrt(hist) if power == 0.5 else np.clip(hist, *LDS_CLIP)
        weights = 1.0 / np.convolve(counts, window, mode="same")
    else:
        density = np.convolve(hist, window, mode="same")
        weights = np.maximum(density, density[density > 0].min()) ** -power
    return edges, weights * (len(values) / (hist * weights).sum())  # Σ over samples = N


def per_class(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-class values ``(C,)`` shaped to broadcast over ``like`` ``(B, C, *spatial)``, on its
    device and in its dtype."""
    return values.to(like.device, like.dtype).view(1, -1, *([1] * (like.ndim - 2)))
