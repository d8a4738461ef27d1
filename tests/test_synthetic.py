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
