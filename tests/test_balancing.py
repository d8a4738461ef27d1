import numpy as np
import pytest

from medimbalance.balancing import (
    RESAMPLERS,
    SYNTHESIZERS,
    class_counts,
    generation_labels,
    resample,
    resampler_names,
    synthesize,
)
from medimbalance.tasks import GENERATIVE, RESAMPLE_ARGS, SYNTHESIZING


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
    with pytest.raises(
        ValueError, match="unknown resampler 'smoteish'; valid choices: enn, none, oss"
    ):
        resample("smoteish", indices, labels, 0)
    with pytest.raises(ValueError, match="equal length"):
        resample("ros", indices, labels[:-1], 0)
    assert RESAMPLERS.names() == ["enn", "none", "oss", "ros", "rus", "tomek"]
    assert SYNTHESIZERS.names() == ["smote"]
    assert resampler_names() == sorted([*RESAMPLERS.names(), "smote", *GENERATIVE])


@pytest.mark.parametrize(
    "name, ratio, expected",
    [
        ("ros", 1.0, [20, 20, 20]),
        ("ros", 0.5, [20, 10, 10]),
        ("ros", 0.05, [20, 6, 2]),
        ("rus", 1.0, [2, 2, 2]),
        ("rus", 0.5, [4, 4, 2]),
        ("rus", 0.25, [8, 6, 2]),
    ],
)
def test_partial_ratios_give_exact_counts(imbalanced, name, ratio, expected):
    indices, labels = imbalanced
    out = resample(name, indices, labels, 0, ratio=ratio)
    lookup = dict(zip(indices, labels, strict=True))
    assert class_counts([lookup[i] for i in out], 3).tolist() == expected


def test_impossible_targets_are_refused(imbalanced):
    indices, labels = imbalanced
    with pytest.raises(ValueError, match=r"resampler 'rus': ratio must lie in \(0, 1\], got 0"):
        resample("rus", indices, labels, 0, ratio=0)
    with pytest.raises(ValueError, match=r"cannot balance class\(es\) \[3\]: they have no train"):
        resample("ros", indices, labels, 0, num_classes=4)
    with pytest.raises(ValueError, match=r"resampler 'tomek': .*unexpected keyword.*'ratio'"):
        resample("tomek", indices, labels, 0, lambda rows: rows[:, None], ratio=0.5)


def line_features(positions):
    """Embeddings: index i sits at positions[i - 100] on a line."""
    return lambda rows: np.asarray(positions, dtype=float)[np.asarray(rows) - 100][:, None]


def test_tomek_removes_the_majority_side_of_each_link():
    positions = [*range(10), 9.6, 30.0]  # majority 0..9; minority at 9.6 (linked to 9) and 30
    labels = np.array([0] * 10 + [1, 1])
    indices = np.arange(100, 112)
    out = resample("tomek", indices, labels, 0, line_features(positions))
    assert out.tolist() == [*range(100, 109), 110, 111]  # only majority index 109 (at 9) goes


def test_enn_removes_majority_images_among_the_minority():
    positions = [0, 1, 2, 3, 4, 50.5, 50, 51, 52]  # majority image 105 sits in the minority
    labels = np.array([0] * 6 + [1] * 3)
    indices = np.arange(100, 109)
    out = resample("enn", indices, labels, 0, line_features(positions), n_neighbors=2)
    assert out.tolist() == [100, 101, 102, 103, 104, 106, 107, 108]


def test_one_sided_selection_keeps_the_minority_and_thins_the_majority():
    rng = np.random.default_rng(0)
    positions = np.concatenate([rng.normal(0, 1, 40), rng.normal(3, 0.5, 5)])
    labels = np.array([0] * 40 + [1] * 5)
    indices = np.arange(100, 145)
    out = resample("oss", indices, labels, 0, line_features(positions))
    kept = labels[out - 100]
    assert (kept == 1).sum() == 5 and 0 < (kept == 0).sum() < 40
    assert np.array_equal(out, resample("oss", indices, labels, 0, line_features(positions)))


def test_pca_features_embed_the_requested_rows():
    from medimbalance.balancing import pca_features

    images = np.random.default_rng(0).random((30, 1, 4, 4)).astype(np.float32)
    embed = pca_features(images, n_components=5)
    assert embed(np.array([3, 4, 5, 6, 7, 8, 9])).shape == (7, 5)
    assert embed(np.arange(3)).shape == (3, 3)  # at most as many components as images


def on_a_segment(point, a, b, tol=1e-4):
    """Whether ``point`` lies on the segment from ``a`` to ``b``."""
    d = b - a
    t = float(np.dot(point - a, d) / max(np.dot(d, d), 1e-12))
    return -tol <= t <= 1 + tol and np.allclose(a + t * d, point, atol=tol)


@pytest.mark.parametrize("ratio, expected", [(1.0, [20, 20, 20]), (0.5, [20, 10, 10])])
def test_smote_adds_exact_counts_of_interpolated_images(imbalanced, ratio, expected):
    indices, labels = imbalanced
    images = np.random.default_rng(0).random((128, 1, 2, 3)).astype(np.float32)
    new, new_labels = synthesize("smote", images, indices, labels, 0, ratio=ratio, k_neighbors=2)
    assert new.shape == (len(new_labels), 1, 2, 3) and new.dtype == np.float32
    counts = class_counts(labels, 3) + class_counts(new_labels, 3)
    assert counts.tolist() == expected
    for image, c in zip(new, new_labels, strict=True):  # on a segment between two of its class
        members = images[indices[labels == c]].reshape(int((labels == c).sum()), -1)
        assert any(
            on_a_segment(image.ravel(), a, b) for a in members for b in members if a is not b
        )


def test_smote_finds_neighbours_in_the_embedding_and_keeps_the_dtype():
    # Class 1 holds three 2-pixel images a, b, c. In pixel space a's and b's nearest neighbour
    # is each other and c's is a; the embedding (a at 0, c at 1, b at 10) pairs a and b with c.
    a, b, c = (0, 0), (50, 0), (0, 100)
    images = np.array([a, b, c, *[(200, 200)] * 20], np.uint8).reshape(23, 1, 1, 2)
    labels = np.array([1, 1, 1] + [0] * 20)
    indices = np.arange(23)
    positions = np.array([0.0, 10.0, 1.0] + [50.0] * 20)
    embedding = lambda rows: positions[rows][:, None]  # noqa: E731
    pairs = {
        "embedding": [(a, c), (b, c)],
        "pixels": [(a, b), (a, c)],
    }
    for space, features in (("embedding", embedding), ("pixels", None)):
        new, new_labels = synthesize("smote", images, indices, labels, 3, features, k_neighbors=1)
        assert new.dtype == np.uint8 and new_labels.tolist() == [1] * 17
        for image in new.reshape(17, 2).astype(float):
            assert any(
                on_a_segment(image, np.array(p, float), np.array(q, float), tol=1.0)
                for p, q in pairs[space]
            ), (space, image)


def test_smote_refuses_a_class_it_cannot_interpolate(imbalanced):
    indices, labels = imbalanced
    labels = labels.copy()
    labels[-1] = 3  # classes 2 and 3 have one image each
    images = np.zeros((128, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="synthesizer 'smote': class 2 has 1 image; SMOTE needs"):
        synthesize("smote", images, indices, labels, 0)
    with pytest.raises(ValueError, match=r"cannot balance class\(es\) \[4\]"):
        synthesize("smote", images, indices, labels, 0, num_classes=5)


def test_generation_labels_fill_every_class_to_the_target(imbalanced):
    _, labels = imbalanced
    assert class_counts(generation_labels(labels, 3), 3).tolist() == [0, 14, 18]
    assert class_counts(generation_labels(labels, 3, ratio=0.5), 3).tolist() == [0, 4, 8]
    with pytest.raises(ValueError, match=r"resampler 'cdcgan' cannot balance class\(es\) \[3\]"):
        generation_labels(labels, 4)
    with pytest.raises(ValueError, match=r"resample_args.ratio: ratio must lie in \(0, 1\]"):
        generation_labels(labels, 3, ratio=2.0)


def test_every_synthesizing_resampler_is_known():
    assert sorted(SYNTHESIZING) == sorted([*SYNTHESIZERS.names(), *GENERATIVE])


def test_the_resample_args_table_covers_every_resampler_and_the_schema():
    import yaml
    from conftest import REPO

    assert sorted(RESAMPLE_ARGS) == resampler_names()
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    method = schema["properties"]["methods"]["additionalProperties"]["properties"]
    keys = set(method["resample_args"]["properties"])
    assert keys == {key for takes in RESAMPLE_ARGS.values() for key in takes}


def test_class_aware_sampling_of_multilabel_data_by_hand():
    from medimbalance.balancing import multilabel_sample_weights, sample_weights

    # labels a (3 images), b (1 image, shared with a), and one image with no label
    y = np.array([[1, 0], [1, 0], [1, 1], [0, 0]])
    w = multilabel_sample_weights(y)
    # groups a: 3 images, b: 1, none: 1 → image weights 1/3, 1/3, 1/3 + 1, 1; total 3
    assert w == pytest.approx(np.array([1 / 3, 1 / 3, 4 / 3, 1.0]) / 3)
    assert sample_weights(y, 2, "class_balanced") == pytest.approx(w)
    drawn = np.random.default_rng(0).choice(4, 30000, p=w)
    # an image holding b: drawn whenever b is picked (1/3), and a third of the times a is (1/9)
    assert (y[drawn, 1] == 1).mean() == pytest.approx(4 / 9, abs=0.01)
    with pytest.raises(ValueError, match="sampler 'sqrt' is for single-label data"):
        sample_weights(y, 2, "sqrt")
