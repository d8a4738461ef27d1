import numpy as np
import pytest

from medimbalance.data.profiles import (
    class_profile_counts,
    exponential_counts,
    fraction_subset,
    impose_profile,
    proportional_counts,
    resampling_summary,
    shape_validation,
    step_counts,
    subsample_to_counts,
    target_distribution_subset,
    target_summary,
)


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


def test_step_counts_as_in_buda_et_al():
    # 10 classes, half minority, rho = 10: 5 x 5000 and 5 x 500 (Buda et al. 2018)
    assert step_counts(5000, 10, 0.5, 10) == [5000] * 5 + [500] * 5
    assert step_counts(100, 5, 0.2, 4) == [100] * 4 + [25]
    with pytest.raises(ValueError, match="0 minority classes of 10"):
        step_counts(100, 10, 0.01, 2)
    with pytest.raises(ValueError, match="rho must be"):
        step_counts(100, 10, 0.5, 0.5)


def test_class_profile_counts_defaults_and_minority_fraction():
    assert class_profile_counts("exponential", [50, 40, 60], {"mu": 1.0}, "abc") == [40, 40, 40]
    assert class_profile_counts("exponential", [50, 40, 60], {"mu": 0.25, "n_max": 20}, "abc") == [
        20,
        10,
        5,
    ]
    # keep all 900 benign; malignant becomes 10 %: floor(0.1 / 0.9 * 900) = 100
    counts = class_profile_counts("minority_fraction", [900, 400], {"fraction": 0.1}, ["b", "m"])
    assert counts == [900, 100]
    with pytest.raises(ValueError, match="minority class 'x' is not one of"):
        class_profile_counts("minority_fraction", [9, 4], {"fraction": 0.1, "minority": "x"}, "bm")


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


@pytest.mark.parametrize("fraction, n", [(0.05, 5), (0.1, 10), (0.2, 20), (0.5, 50), (0.001, 1)])
def test_training_fraction_subsets(fraction, n):
    kept = fraction_subset(100, fraction, seed=0)
    assert len(kept) == n and len(set(kept)) == n and kept.max() < 100


def test_target_distribution_subsets_follow_the_distribution():
    pool = np.random.default_rng(0).uniform(1, 10, 60000)
    uniform = target_distribution_subset(pool, ("uniform", 1, 5), n=5000, seed=0)
    assert len(uniform) == 5000 and pool[uniform].max() <= 5 and pool[uniform].min() >= 1
    assert np.histogram(pool[uniform], 4, (1, 5))[0] == pytest.approx([1250] * 4, rel=0.1)
    normal = pool[target_distribution_subset(pool, ("normal", 5.5, 1.0), n=5000, seed=0)]
    assert normal.mean() == pytest.approx(5.5, abs=0.05) and normal.std() == pytest.approx(
        1, abs=0.05
    )
    with pytest.raises(ValueError, match=r"supplies only .* the profile asks for 50000"):
        target_distribution_subset(pool, ("normal", 5.5, 1.0), n=50000, seed=0)


def test_impose_profile_checks_task_and_summarises():
    labels = np.repeat(np.arange(3), 20)
    kept = impose_profile({"kind": "exponential", "mu": 0.25}, labels, "multiclass", "abc")
    assert np.bincount(labels[kept]).tolist() == [20, 10, 5]
    summary = target_summary(labels, kept, "multiclass", ["a", "b", "c"])
    assert summary.to_dict("list") == {
        "class": ["a", "b", "c"],
        "available": [20] * 3,
        "kept": [20, 10, 5],
    }
    with pytest.raises(ValueError, match="applies to multiclass, binary data, not segmentation"):
        impose_profile({"kind": "step", "mu": 0.5, "rho": 2}, labels, "segmentation", "abc")
    masks = np.zeros((4, 5, 5), np.uint8)
    masks[0, 1, 1], masks[1, 2, 2] = 1, 2
    kept = impose_profile({"kind": "fraction", "fraction": 0.5}, masks, "segmentation", "xyz")
    seg = target_summary(masks, kept, "segmentation", ["bg", "a", "b"])
    assert seg["available"].tolist() == [4, 1, 1] and seg["kept"].iloc[0] == 2
    # With voxels: the voxels of each label, over the split and over the kept masks.
    seg = target_summary(masks, np.array([0, 2]), "segmentation", ["bg", "a", "b"], voxels=True)
    assert seg["available_voxels"].tolist() == [98, 1, 1]  # 4 masks of 25 voxels
    assert seg["kept_voxels"].tolist() == [49, 1, 0]
    assert seg["kept"].tolist() == [2, 1, 0]
    # Synthetic image–mask pairs count as images containing each label.
    new = np.zeros((3, 5, 5), np.uint8)
    new[0, 0, 0], new[1, 0, 0], new[2] = 2, 2, 1  # labels {0, 2}, {0, 2}, {1}
    both = np.array([0, 2])
    summary = resampling_summary(masks, both, both, "segmentation", ["bg", "a", "b"], new)
    assert summary["synthetic"].tolist() == [2, 1, 2]
    assert summary["after"].tolist() == [4, 2, 2]  # kept [2, 1, 0] + synthetic
    # Synthetic multi-label images count as images with each finding of their vectors.
    findings = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0]], np.uint8)
    new = np.array([[0, 1, 1], [0, 0, 1]], np.uint8)
    rows = np.arange(3)
    summary = resampling_summary(findings, rows, rows, "multilabel", ["a", "b", "c"], new)
    assert summary["before"].tolist() == [2, 1, 0]
    assert summary["synthetic"].tolist() == [0, 1, 2]
    assert summary["after"].tolist() == [2, 2, 2]


def test_validation_keeps_the_largest_subset_in_the_training_proportions():
    # training 40, 20, 10 -> proportions 4/7, 2/7, 1/7; 30 validation images per class allow
    # scale min(30 / (4/7), 30 / (2/7), 30 / (1/7)) = 52.5 -> floor(30, 15, 7.5) = 30, 15, 7
    assert proportional_counts([4 / 7, 2 / 7, 1 / 7], [30, 30, 30], "abc") == [30, 15, 7]
    # the rarest class keeps at least one image
    assert proportional_counts([0.98, 0.01, 0.01], [10, 10, 10], "abc") == [10, 1, 1]
    with pytest.raises(ValueError, match="no images of class 'b'"):
        proportional_counts([0.5, 0.5, 0.0], [10, 0, 10], "abc")


def test_shape_validation_follows_each_profile_kind():
    train = np.repeat([0, 1, 2], [40, 20, 10])
    val = np.repeat([0, 1, 2], 30)
    kept = np.arange(len(train))
    profile = {"kind": "exponential", "mu": 0.25}
    rows = shape_validation(profile, train, kept, val, "multiclass", "abc")
    assert np.bincount(val[rows]).tolist() == [30, 15, 7]
    assert np.array_equal(rows, np.unique(rows))  # sorted, no repeats
    # natural and fraction profiles train on the split's own distribution: all kept
    for natural in ({"kind": "natural"}, {"kind": "fraction", "fraction": 0.5}):
        assert np.array_equal(
            shape_validation(natural, train, kept, val, "multiclass", "abc"), np.arange(90)
        )
    # regression: the validation targets are rejection-sampled to the profile's distribution
    pool = np.random.default_rng(0).uniform(1, 10, 9000)
    profile = {"kind": "target_distribution", "distribution": ["uniform", 1, 5], "n": 100}
    rows = shape_validation(profile, pool[:100], np.arange(100), pool, "regression", [])
    assert pool[rows].max() <= 5 and pool[rows].min() >= 1
    # every accepted image is kept (not the profile's n): most of the pool's images in [1, 5]
    # (acceptance is scaled by the fullest histogram bin, so not all of them)
    assert 0.75 * np.sum(pool <= 5) < len(rows) <= np.sum(pool <= 5)
