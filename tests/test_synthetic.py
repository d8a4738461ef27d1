import itertools

import numpy as np
import pytest

from medimbalance.data.synthetic import GradedLesionsSpec, make_graded_lesions


def test_shapes_dtypes_and_balanced_grades():
    spec = GradedLesionsSpec(n_per_class=7, image_size=20, num_grades=4)
    images, labels = make_graded_lesions(spec)
    assert images.shape == (28, 1, 20, 20) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [7, 7, 7, 7]
    assert spec.class_names == ["grade_0", "grade_1", "grade_2", "grade_3"]


def test_same_spec_gives_identical_bytes_and_other_seed_differs():
    a, _ = make_graded_lesions(GradedLesionsSpec(n_per_class=5, seed=3))
    b, _ = make_graded_lesions(GradedLesionsSpec(n_per_class=5, seed=3))
    c, _ = make_graded_lesions(GradedLesionsSpec(n_per_class=5, seed=4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_lesion_area_grows_with_grade():
    # The class-dependent structure: bright area (pixels well above background) rises by grade.
    images, labels = make_graded_lesions(GradedLesionsSpec(n_per_class=60, noise=0.0))
    bright = (images[:, 0] > 0.55 * 255).sum(axis=(1, 2))
    means = [bright[labels == g].mean() for g in range(5)]
    assert all(lo < hi for lo, hi in itertools.pairwise(means)), means


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_per_class": 0}, "n_per_class"),
        ({"image_size": 8}, "image_size"),
        ({"num_grades": 1}, "num_grades"),
        ({"noise": 2.0}, "noise"),
        ({"jitter": -1.0}, "jitter"),
    ],
)
def test_bad_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GradedLesionsSpec(**kwargs)


def test_findings_prevalence_and_co_occurrence():
    from medimbalance.data.synthetic import CHEST_PREVALENCE, FindingsSpec, make_findings

    spec = FindingsSpec(n=6000, image_size=16, correlation=0.4)
    images, labels = make_findings(spec)
    assert images.shape == (6000, 1, 16, 16) and labels.shape == (6000, 14)
    expected = np.array(list(CHEST_PREVALENCE.values()))
    # binomial standard error at n = 6000 is at most 0.005; allow four of them
    assert np.abs(labels.mean(0) - expected) == pytest.approx(0, abs=0.02)
    assert (expected < 0.02).sum() == 3  # fibrosis, pneumonia, hernia: rare, as in ChestX-ray14
    both = (labels[:, 0] & labels[:, 1]).mean()
    assert both > 1.3 * labels[:, 0].mean() * labels[:, 1].mean()  # co-occur beyond chance
    independent = make_findings(FindingsSpec(n=6000, image_size=16, correlation=0.0))[1]
    both0 = (independent[:, 0] & independent[:, 1]).mean()
    assert both0 == pytest.approx(independent[:, 0].mean() * independent[:, 1].mean(), abs=0.006)


def test_findings_are_visible_where_they_are_present():
    from medimbalance.data.synthetic import FindingsSpec, make_findings

    images, labels = make_findings(FindingsSpec(n=800, image_size=32, noise=0.0))
    # finding 0 draws in the top-left cell: brighter there when present
    cell = images[:, 0, :8, :8].mean(axis=(1, 2))
    assert cell[labels[:, 0] == 1].mean() > cell[labels[:, 0] == 0].mean() + 10


@pytest.mark.parametrize("shape, fraction", [((64, 64), 0.01), ((32, 32, 32), 0.005)])
def test_tumour_fraction_as_configured(shape, fraction):
    from medimbalance.data.synthetic import TumoursSpec, make_tumours

    images, masks = make_tumours(
        TumoursSpec(n=30, shape=shape, tumour_fraction=fraction, channels=3)
    )
    assert images.shape == (30, 3, *shape) and masks.shape == (30, *shape)
    assert (masks > 0).mean() == pytest.approx(fraction, rel=0.25)
    assert set(np.unique(masks)) == {0, 1, 2, 3}  # edema, non-enhancing core, enhancing rim
    assert (masks == 2).sum() < (masks == 3).sum() < (masks == 1).sum()


def test_std_regression_targets_equal_the_pixel_std():
    from medimbalance.data.synthetic import StdRegressionSpec, make_std_regression

    spec = StdRegressionSpec(n_train=500, n_val=50, n_test=60, seed=3)
    images, targets, split = make_std_regression(spec)
    assert images.shape == (610, 1, 52, 52) and images.dtype == np.float32
    assert np.allclose(targets, images.reshape(610, -1).std(axis=1), rtol=1e-5)
    assert 0.9 < targets.min() and targets.max() < 10.3  # U(1, 10) up to sampling error
    assert np.bincount(split).tolist() == [500, 50, 60]
    assert np.abs(images.reshape(610, -1).mean(1)).max() < 0.6  # zero-mean pixels
    normal = make_std_regression(StdRegressionSpec(10000, 1, 1, distribution=("normal", 5.5, 1.0)))[
        1
    ]
    assert normal.mean() == pytest.approx(5.5, abs=0.05) and normal.std() == pytest.approx(
        1, abs=0.05
    )
    with pytest.raises(ValueError, match="distribution must be"):
        StdRegressionSpec(distribution=("uniform", 5, 1))
