"""Losses by name, for every task. Each builder receives the training set's
:class:`TargetStats` (class counts, label positives, voxel counts or regression targets, for
re-weighting) and the loss's own keyword arguments (``loss_args`` in the config).

- classification: logits ``(B, C)``, integer targets ``(B,)``;
- multi-label: logits ``(B, L)``, multi-hot targets ``(B, L)`` (float);
- segmentation: logits ``(B, C, *spatial)``, integer masks ``(B, *spatial)`` or soft labels
  ``(B, C, *spatial)`` (mixup);
- regression: predictions ``(B, 1)``, targets ``(B,)``.

Every loss returns the batch mean. Count formulas live in one function each:
:func:`class_weights`, :func:`ldam_margins`, :func:`log_prior`, :func:`lds_weights`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss, GeneralizedDiceLoss
from monai.losses import FocalLoss as MonaiFocalLoss
from torch import nn

from .balancing import class_counts
from .registry import Registry
from .tasks import CLASS_TASKS

LossBuilder = Callable[..., nn.Module]
LOSSES: Registry[LossBuilder] = Registry("loss")


@dataclass(frozen=True, eq=False)
class TargetStats:
    """What re-weighting losses need to know about the training targets."""

    counts: tuple[int, ...] = ()  # images per class, positives per label, or voxels per class
    total: int = 0  # training images (voxels for segmentation)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))  # regression targets

    @classmethod
    def of(cls, stats: TargetStats | Sequence[int]) -> TargetStats:
        """``stats`` itself, or class counts wrapped as statistics."""
        if isinstance(stats, TargetStats):
            return stats
        counts = tuple(int(c) for c in stats)
        return cls(counts=counts, total=sum(counts))


def target_stats(
    task: str, targets: np.ndarray, rows: np.ndarray, num_classes: int, chunk: int = 64
) -> TargetStats:
    """Statistics of ``targets[rows]`` (the training set), read ``chunk`` rows at a time so a
    memory-mapped set of masks is never loaded whole."""
    rows = np.asarray(rows)
    if task in CLASS_TASKS:
        return TargetStats(tuple(class_counts(targets[rows], num_classes).tolist()), len(rows))
    if task == "multilabel":
        positives = np.asarray(targets[rows], np.int64).sum(0)
        return TargetStats(tuple(positives.tolist()), len(rows))
    if task == "segmentation":
        counts = np.zeros(num_classes, np.int64)
        for start in range(0, len(rows), chunk):
            masks = np.asarray(targets[np.sort(rows[start : start + chunk])])
            counts += np.bincount(masks.ravel(), minlength=num_classes)[:num_classes]
        return TargetStats(tuple(counts.tolist()), int(counts.sum()))
    values = np.asarray(targets[rows], np.float64)
    return TargetStats(total=len(values), values=values)


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


def per_class(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-class values ``(C,)`` shaped to broadcast over ``like`` ``(B, C, *spatial)``."""
    return values.to(like.device, like.dtype).view(1, -1, *([1] * (like.ndim - 2)))


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
        one_hot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        shifted = logits - one_hot * per_class(self.margins, logits)
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
def cross_entropy(stats: TargetStats) -> nn.Module:
    """Softmax cross-entropy."""
    return WeightedCrossEntropy(None)


@LOSSES.register("weighted_ce")
def weighted_cross_entropy(
    stats: TargetStats, weighting: str = "inverse", beta: float = 0.9999
) -> nn.Module:
    """Cross-entropy weighted by inverse frequency or inverse effective number."""
    return WeightedCrossEntropy(class_weights(stats.counts, weighting, beta))


@LOSSES.register("cb_ce")
def class_balanced_ce(stats: TargetStats, beta: float = 0.9999) -> nn.Module:
    """Class-balanced cross-entropy (Cui et al. 2019): effective-number weights."""
    return WeightedCrossEntropy(class_weights(stats.counts, "effective", beta))


@LOSSES.register("focal")
def focal(stats: TargetStats, gamma: float = 2.0) -> nn.Module:
    """Softmax focal loss (Lin et al. 2017)."""
    return SoftmaxFocal(gamma)


@LOSSES.register("cb_focal")
def class_balanced_focal(stats: TargetStats, gamma: float = 1.0, beta: float = 0.9999) -> nn.Module:
    """Class-balanced focal loss (Cui et al. 2019): effective-number weights on focal."""
    return SoftmaxFocal(gamma, class_weights(stats.counts, "effective", beta))


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


# ---- Multi-label ------------------------------------------------------------------------------


def label_weights(positives: Sequence[int], total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-label weights ``(w_pos, w_neg)`` that give a label's positives and negatives equal
    total weight: ``w_pos = N / 2P``, ``w_neg = N / 2(N − P)`` (Wang et al., "ChestX-ray8",
    CVPR 2017, weighted over the training set instead of each batch)."""
    p = np.asarray(positives, dtype=np.float64)
    bad = np.flatnonzero((p <= 0) | (p >= total))
    if bad.size:
        raise ValueError(
            f"weighted BCE needs positives and negatives of every label; label(s) {bad.tolist()} "
            f"have {p[bad].astype(int).tolist()} positives among {total} training images"
        )
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return as_tensor(total / (2 * p)), as_tensor(total / (2 * (total - p)))


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
    return WeightedBCE(*label_weights(stats.counts, stats.total))


@LOSSES.register("focal_bce")
def focal_bce(stats: TargetStats, gamma: float = 2.0) -> nn.Module:
    """Sigmoid focal loss per label (Lin et al., ICCV 2017), MONAI ``FocalLoss``."""
    return MonaiFocalLoss(gamma=gamma, use_softmax=False)


# ---- Segmentation -----------------------------------------------------------------------------


def as_one_hot(targets: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Index masks ``(B, *spatial)`` as one-hot ``(B, C, *spatial)``; soft labels (already
    ``(B, C, *spatial)`` floats) are returned as they are."""
    if targets.is_floating_point():
        return targets.to(dtype)
    return F.one_hot(targets.long(), num_classes).movedim(-1, 1).to(dtype)


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
        labels = as_one_hot(targets, logits.shape[1], logits.dtype)
        return self.dice(logits, labels) + soft_cross_entropy(logits, labels, self.weights)


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
        labels = as_one_hot(targets, logits.shape[1], logits.dtype)
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
        labels = as_one_hot(targets, logits.shape[1], logits.dtype)
        margins = torch.full((logits.shape[1],), float(self.margin))
        if self.asymmetric:  # no margin on the background
            margins[0] = 0
        return soft_cross_entropy(logits - labels * per_class(margins, logits), labels)


@LOSSES.register("dice_ce")
def dice_ce(stats: TargetStats) -> nn.Module:
    """Soft Dice (MONAI ``DiceLoss``, softmax, background included) plus cross-entropy: the
    nnU-Net default (Isensee et al., Nature Methods 2021)."""
    return DiceWithLogLoss(DiceLoss(softmax=True))


@LOSSES.register("gdl_wll")
def gdl_wll(stats: TargetStats) -> nn.Module:
    """Generalized Dice loss (Sudre et al., DLMIA 2017; MONAI ``GeneralizedDiceLoss``, weights
    ``1/(Σ y_c)²``) plus the weighted log loss, class weights ∝ 1/voxel count over the training
    set normalised to sum to C: the first seed's sum of GDL and WLL for brain tumours."""
    return DiceWithLogLoss(
        GeneralizedDiceLoss(softmax=True), class_weights(stats.counts, "inverse")
    )


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


class Mixup(nn.Module):
    """Mixup for segmentation (Zhang et al., ICLR 2018): images and one-hot masks of a batch are
    blended with a shuffled copy of it, ``λ ~ Beta(α, α)``; wraps a loss that accepts soft
    labels.

    ``asymmetric=True`` (Li et al., TMI 2021) keeps foreground labels hard: a voxel that is
    foreground in either image keeps that foreground class (the first image's when both are),
    so mixing never softens the rare class's targets; only the images are blended there.
    The training loop calls :meth:`mix` on every training batch; evaluation uses the wrapped
    loss unchanged.
    """

    def __init__(self, loss: nn.Module, num_classes: int, alpha: float, asymmetric: bool) -> None:
        super().__init__()
        self.loss, self.num_classes = loss, num_classes
        self.alpha, self.asymmetric = alpha, asymmetric

    def mix(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        lam = float(np.random.default_rng(seed).beta(self.alpha, self.alpha))
        order = torch.randperm(len(images), generator=generator).to(images.device)
        first = as_one_hot(targets, self.num_classes, images.dtype)
        second = first[order]
        labels = lam * first + (1 - lam) * second
        if self.asymmetric:
            labels = torch.where(
                first[:, :1] < 1, first, torch.where(second[:, :1] < 1, second, labels)
            )
        return lam * images + (1 - lam) * images[order], labels

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, targets)


# ---- Regression -------------------------------------------------------------------------------


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
    """Mean squared error: the regression seed's loss."""
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


def build_loss(
    name: str,
    stats: TargetStats | Sequence[int],
    mixup: str = "none",
    mixup_alpha: float = 0.2,
    **kwargs,
) -> nn.Module:
    """Build the loss registered as ``name`` for a training set described by ``stats`` (or its
    class counts); ``kwargs`` are the loss's own parameters (``loss_args`` in the config).
    ``mixup`` ("mixup" or "asymmetric") wraps a segmentation loss in :class:`Mixup`."""
    stats = TargetStats.of(stats)
    builder = LOSSES.get(name)
    try:
        loss = builder(stats, **kwargs)
    except TypeError as error:
        raise ValueError(f"loss {name!r}: {error}") from None
    if mixup != "none":
        loss = Mixup(loss, len(stats.counts), mixup_alpha, asymmetric=mixup == "asymmetric")
    return loss
