"""Counting the training targets of every task, and one-hot labels."""

import numpy as np
import torch

from medimbalance.targets import TargetStats, class_counts, one_hot, target_stats


def test_target_stats_of_every_task():
    classes = np.array([0, 2, 2, 1])
    assert target_stats("multiclass", classes, np.array([1, 2, 3]), 3).counts == (0, 1, 2)
    multi = np.array([[1, 0], [1, 1], [0, 0]], np.uint8)
    stats = target_stats("multilabel", multi, np.array([0, 1, 2]), 2)
    assert stats.counts == (2, 1) and stats.total == 3
    masks = np.zeros((3, 4, 4), np.uint8)
    masks[0, 0, :3] = 1
    masks[2, 1, 1] = 2
    stats = target_stats("segmentation", masks, np.array([0, 2, 2]), 3, chunk=1)
    assert stats.counts == (43, 3, 2) and stats.total == 48  # image 2 counted twice
    stats = target_stats("regression", np.array([1.0, 2.5, 4.0]), np.array([2, 0]), 1)
    assert stats.values.tolist() == [4.0, 1.0]


def test_class_counts_and_counts_as_stats():
    assert class_counts([2, 0, 2], 4).tolist() == [1, 0, 2, 0]
    stats = TargetStats.of([3, 1])
    assert stats.counts == (3, 1) and stats.total == 4
    assert TargetStats.of(stats) is stats


def test_one_hot_of_masks_and_soft_labels():
    masks = torch.tensor([[[0, 2], [1, 0]]])
    labels = one_hot(masks, 3, torch.float32)
    assert labels.shape == (1, 3, 2, 2) and labels.dtype == torch.float32
    assert labels[0, :, 0, 1].tolist() == [0, 0, 1] and labels.sum(1).eq(1).all()
    assert one_hot(torch.tensor([1, 0]), 2, torch.float64).tolist() == [[0, 1], [1, 0]]
    soft = torch.full((1, 3, 2, 2), 1 / 3, dtype=torch.float64)
    assert torch.equal(one_hot(soft, 3, torch.float64), soft)
