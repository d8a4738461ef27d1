import numpy as np
import pytest

from medimbalance.data.splits import stratified_split


def test_partition_is_disjoint_complete_and_stratified():
    labels = np.repeat(np.arange(5), 100)
    parts = stratified_split(labels, val_fraction=0.15, test_fraction=0.25, seed=0)
    joined = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(joined), np.arange(500))
    assert [len(parts[s]) for s in ("train", "val", "test")] == [300, 75, 125]
    for name, size in (("train", 60), ("val", 15), ("test", 25)):
        assert np.bincount(labels[parts[name]]).tolist() == [size] * 5


def test_same_seed_same_split_other_seed_other_split():
    labels = np.repeat(np.arange(3), 40)
    a = stratified_split(labels, 0.2, 0.2, seed=1)
    b = stratified_split(labels, 0.2, 0.2, seed=1)
    c = stratified_split(labels, 0.2, 0.2, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


@pytest.mark.parametrize("val, test", [(0.0, 0.2), (0.2, 1.0), (-0.1, 0.2), (0.5, 0.5)])
def test_bad_fractions(val, test):
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(np.repeat(np.arange(2), 10), val, test, seed=0)
