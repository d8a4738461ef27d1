import numpy as np
import pytest

from medimbalance.data.profiles import exponential_counts, profile_counts, subsample_to_counts


@pytest.mark.parametrize(
    "mu, expected",
    [
        # CIFAR-10-LT counts of Cui et al. 2019 / Cao et al. 2019 (n_max = 5000).
        (0.1, [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]),
        (0.01, [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]),
        (0.005, [5000, 2775, 1540, 854, 474, 263, 146, 81, 45, 25]),
        (1.0, [5000] * 10),
    ],
)
def test_exponential_counts_match_cifar_lt(mu, expected):
    assert exponential_counts(5000, 10, mu) == expected


def test_demo_profile_counts():
    # floor(240 * 0.05 ** (c / 4)) by hand: 240, 113.49.., 53.66.., 25.37.., 12
    assert exponential_counts(240, 5, 0.05) == [240, 113, 53, 25, 12]


@pytest.mark.parametrize("mu", [0.0, -0.5, 1.5])
def test_mu_outside_unit_interval_is_rejected(mu):
    with pytest.raises(ValueError, match="mu must lie in"):
        exponential_counts(100, 5, mu)


def test_n_max_defaults_to_smallest_available_class():
    assert profile_counts("exponential", [50, 40, 60], {"mu": 1.0}) == [40, 40, 40]
    assert profile_counts("exponential", [50, 40, 60], {"mu": 0.25, "n_max": 20}) == [20, 10, 5]
    with pytest.raises(ValueError, match="unknown profile kind 'step'"):
        profile_counts("step", [5, 5], {"mu": 0.5})


def test_subsample_keeps_exact_counts_seeded():
    labels = np.repeat(np.arange(3), 30)
    kept = subsample_to_counts(labels, [30, 12, 3], seed=7)
    assert np.bincount(labels[kept]).tolist() == [30, 12, 3]
    assert np.array_equal(kept, np.unique(kept))  # sorted, no repeats
    assert np.array_equal(kept, subsample_to_counts(labels, [30, 12, 3], seed=7))
    assert not np.array_equal(kept, subsample_to_counts(labels, [30, 12, 3], seed=8))


def test_subsample_errors_name_the_class():
    labels = np.repeat(np.arange(2), 5)
    with pytest.raises(ValueError, match="class 'tumour' with no training images"):
        subsample_to_counts(labels, [5, 0], seed=0, class_names=["normal", "tumour"])
    with pytest.raises(ValueError, match=r"asks for 9 images of class 'normal'.*only 5"):
        subsample_to_counts(labels, [9, 1], seed=0, class_names=["normal", "tumour"])
