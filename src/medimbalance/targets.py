"""Counting the training targets: class counts and the statistics that re-weighting losses
are built from, and one-hot labels.

Below both :mod:`medimbalance.balancing` and :mod:`medimbalance.losses`. NumPy only, so that the
torch-free jobs (profiles, resampling) count with it too; :func:`one_hot` uses only the methods
of the tensors it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .data.io import release
from .tasks import CLASS_TASKS

if TYPE_CHECKING:
    import torch


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Images per class, ``(num_classes,)`` int64."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


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
    task: str,
    targets: np.ndarray,
    rows: np.ndarray,
    num_classes: int,
    sizes: Sequence[Sequence[int]] | None = None,
    chunk: int = 64,
) -> TargetStats:
    """Statistics of ``targets[rows]`` (the training set), read ``chunk`` rows at a time so a
    memory-mapped set of masks is never loaded whole; padded masks of cases of different
    ``sizes`` (one per row of ``targets``) count each case's own voxels only."""
    rows = np.asarray(rows)
    if task in CLASS_TASKS:
        return TargetStats(tuple(class_counts(targets[rows], num_classes).tolist()), len(rows))
    if task == "multilabel":
        positives = np.asarray(targets[rows], np.int64).sum(0)
        return TargetStats(tuple(positives.tolist()), len(rows))
    if task == "segmentation":
        counts = np.zeros(num_classes, np.int64)
        if sizes is not None:
            for row in rows:
                case = np.asarray(targets[(int(row), *(slice(0, n) for n in sizes[row]))])
                counts += np.bincount(case.ravel(), minlength=num_classes)[:num_classes]
                release(targets)
            return TargetStats(tuple(counts.tolist()), int(counts.sum()))
        for start in range(0, len(rows), chunk):
            masks = np.asarray(targets[np.sort(rows[start : start + chunk])])
            counts += np.bincount(masks.ravel(), minlength=num_classes)[:num_classes]
            release(targets)
        return TargetStats(tuple(counts.tolist()), int(counts.sum()))
    values = np.asarray(targets[rows], np.float64)
    return TargetStats(total=len(values), values=values)


def one_hot(targets: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Class indices ``(B, *spatial)`` as one-hot ``(B, C, *spatial)`` in ``dtype``; soft labels
    (already ``(B, C, *spatial)`` floats) are returned as they are, in ``dtype``."""
    if targets.is_floating_point():
        return targets.to(dtype)
    labels = targets.long()
    hot = labels.new_zeros((*labels.shape, num_classes)).scatter_(-1, labels.unsqueeze(-1), 1)
    return hot.movedim(-1, 1).to(dtype)
