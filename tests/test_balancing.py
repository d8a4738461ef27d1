import numpy as np
import pytest

from medimbalance.balancing import RESAMPLERS, class_counts, resample


@pytest.fixture
def imbalanced():
    labels = np.array([0] * 20 + [1] * 6 + [2] * 2)
    indices = np.arange(100, 128)  # indices into some larger array
    return indices, labels


def test_ros_oversamples_every_class_to_the_majority(imbalanced):
    indices, labels = imbalanced
    out = resample("ros", indices, labels, seed=0)
    lookup = dict(zip(indices, labels, strict=True))
    assert class_counts([lookup[i] for i in out], 3).tolist() == [20, 20, 20]
    assert set(out) == set(indices)  # only repeats, every original kept


def test_rus_undersamples_every_class_to_the_minority(imbalanced):
    indices, labels = imbalanced
    out = resample("rus", indices, labels, seed=0)
    lookup = dict(zip(indices, labels, strict=True))
    assert class_counts([lookup[i] for i in out], 3).tolist() == [2, 2, 2]
    assert len(set(out)) == 6 and set(out) <= set(indices)


def test_resampling_is_seeded(imbalanced):
    indices, labels = imbalanced
    assert np.array_equal(resample("ros", indices, labels, 3), resample("ros", indices, labels, 3))
    assert not np.array_equal(
        resample("rus", indices, labels, 3), resample("rus", indices, labels, 4)
    )


def test_none_returns_the_set_unchanged(imbalanced):
    indices, labels = imbalanced
    assert np.array_equal(resample("none", indices, labels, 0), indices)


def test_unknown_resampler_and_bad_shapes(imbalanced):
    indices, labels = imbalanced
    with pytest.raises(ValueError, match="unknown resampler 'smoteish'; valid choices: none, ros"):
        resample("smoteish", indices, labels, 0)
    with pytest.raises(ValueError, match="equal length"):
        resample("ros", indices, labels[:-1], 0)
    assert RESAMPLERS.names() == ["none", "ros", "rus"]
