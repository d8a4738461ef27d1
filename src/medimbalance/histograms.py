"""Logit histograms of segmentation runs: training against test, per class.

Li, Kamnitsas and Glocker (IEEE TMI 2021) show that under class imbalance the logits of the
under-represented foreground move towards (and across) the decision boundary on unseen data,
while those of the training data stay well separated. Every segmentation run records, for each
class ``c``, the histogram of the logit ``z_c`` over the voxels whose true class is ``c``, on
its training images (the profile's) and on the test split, in fixed bins (:data:`EDGES`, the
outermost bins also count what lies beyond them). Counts are accumulated batch by batch (case
by case for a method on patches, by sliding windows), so memory does not grow with the data.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

EDGES = np.linspace(-50.0, 50.0, 401)  # 0.25-wide bins; beyond: the outermost ones
TRAINING_CASES = 32  # training cases a method on patches infers whole for its histogram


def accumulate(counts: np.ndarray, logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Add to ``counts`` ``(C, bins)`` the logits ``(B, C, *spatial)`` of each class over the
    voxels whose target ``(B, *spatial)`` is that class."""
    edges = torch.as_tensor(EDGES, dtype=torch.float32)
    for c in range(counts.shape[0]):
        values = logits[:, c][targets == c].float().cpu().clamp(EDGES[0], EDGES[-1])
        if values.numel():
            index = torch.bucketize(values, edges[1:-1], right=True)
            counts[c] += torch.bincount(index, minlength=counts.shape[1]).numpy()


@torch.no_grad()
def logit_histograms(model: nn.Module, data, num_classes: int, batch_size: int = 64) -> np.ndarray:
    """Counts ``(C, bins)`` of every class's logit over its voxels in ``data`` (a training or
    test set of the training loop's kinds, or whole cases by sliding windows)."""
    from .training import forward, ordered_indices

    model.eval()
    counts = np.zeros((num_classes, len(EDGES) - 1), np.int64)
    if hasattr(data, "logits"):  # whole cases (medimbalance.patches.CaseSet)
        for i in range(len(data)):
            accumulate(counts, data.logits(model, i), data.case(i)[1])
        return counts
    for idx in ordered_indices(data, batch_size):
        accumulate(counts, forward(model, data.batch(idx)), data.targets(idx))
    return counts
