"""Training vs test logit histograms of segmentation runs (medimbalance.histograms)."""

import numpy as np
import torch

from medimbalance.histograms import EDGES, accumulate, logit_histograms
from medimbalance.training import TensorSet


def test_counts_equal_numpy_histograms_of_each_class_over_its_voxels(rng):
    logits = torch.from_numpy(rng.normal(0, 8, (3, 4, 10, 10)).astype(np.float32))
    targets = torch.from_numpy(rng.integers(0, 4, (3, 10, 10)))
    counts = np.zeros((4, len(EDGES) - 1), np.int64)
    accumulate(counts, logits, targets)
    for c in range(4):
        values = logits[:, c][targets == c].numpy()
        # Beyond the outer edges values count in the outermost bins.
        expected = np.histogram(np.clip(values, EDGES[0], EDGES[-1]), EDGES)[0]
        np.testing.assert_array_equal(counts[c], expected)
        assert counts[c].sum() == (targets == c).sum()


def test_histograms_of_a_model_batch_by_batch():
    class Fixed(torch.nn.Module):  # logits 2·x for class 1, −x for class 0
        def forward(self, x):
            return torch.cat([-x, 2 * x], 1)

    images = np.array([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.5, -1.0], [9.0, 60.0]]]], np.float32)
    masks = np.array([[[0, 1], [1, 1]], [[0, 0], [1, 0]]], np.uint8)
    data = TensorSet.from_arrays(images, masks, torch.device("cpu"), "segmentation")
    counts = logit_histograms(Fixed(), data, 2, batch_size=1)
    # Class 1 over its voxels: 2·2, 2·3, 2·4, 2·9 → 4, 6, 8, 18; class 0: −1, −0.5, 1 and
    # −60, beyond the range: in the first bin.
    bins = lambda *v: np.searchsorted(EDGES, v, side="right") - 1  # noqa: E731
    assert sorted(np.repeat(np.arange(len(EDGES) - 1), counts[1])) == sorted(bins(4, 6, 8, 18))
    assert sorted(np.repeat(np.arange(len(EDGES) - 1), counts[0])) == sorted(
        [*bins(-1, -0.5, 1), 0]
    )
