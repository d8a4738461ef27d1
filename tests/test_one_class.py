"""One-class learning: per-class autoencoders classify by smallest reconstruction error."""

import numpy as np
import pytest
import torch

from medimbalance.config import TrainConfig
from medimbalance.jobs.runtime import configure
from medimbalance.one_class import MEASURES, OneClassScorer, one_class_logits, train_one_class
from medimbalance.training import TensorSet


def stripes(n_per_class=40, seed=0, size=16):
    """Class 0: horizontal stripes, 1: vertical stripes, 2: checkerboard, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    patterns = [(yy // 2) % 2, (xx // 2) % 2, ((yy // 2) + (xx // 2)) % 2]
    images, labels = [], []
    for c, pattern in enumerate(patterns):
        for _ in range(n_per_class):
            shift = rng.integers(0, 4)
            image = np.roll(pattern, shift, axis=c % 2) * 160 + 40 + rng.normal(0, 15, (size, size))
            images.append(np.clip(image, 0, 255)[None])
            labels.append(c)
    return np.stack(images).astype(np.uint8), np.array(labels)


@pytest.fixture(scope="module")
def trained():
    configure(0, 1)
    images, labels = stripes()
    cfg = TrainConfig(epochs=25, batch_size=16, lr=3e-3)
    rows = np.arange(len(labels))
    models = train_one_class(
        images,
        labels,
        rows,
        classes=["h", "v", "c"],
        cfg=cfg,
        seed=0,
        measure="squared",
        task="multiclass",
        device=torch.device("cpu"),
    )
    return images, labels, models


@pytest.mark.parametrize("measure", MEASURES)
def test_each_class_is_recognised_by_its_own_autoencoder(trained, measure):
    from medimbalance.one_class import reconstruction_errors

    images, labels, (models, _, history) = trained
    assert {r["phase"] for r in history} == {"autoencoder[h]", "autoencoder[v]", "autoencoder[c]"}
    cpu = torch.device("cpu")
    own = [
        TensorSet.from_arrays(images[labels == c], labels[labels == c], cpu, "multiclass")
        for c in range(3)
    ]
    scorers = [
        OneClassScorer(measure, reconstruction_errors(m, d))
        for m, d in zip(models, own, strict=True)
    ]
    test_images, test_labels = stripes(20, seed=1)
    scores = one_class_logits(
        models, scorers, TensorSet.from_arrays(test_images, test_labels, cpu, "multiclass")
    )
    assert scores.shape == (60, 3)
    assert (scores.argmax(1) == test_labels).mean() >= 0.9


def test_measures_by_hand():
    errors = np.array([[3.0, -4.0], [1.0, 1.0]])
    assert OneClassScorer("absolute", errors)(errors).tolist() == [3.5, 1.0]
    assert OneClassScorer("squared", errors)(errors).tolist() == [12.5, 1.0]
    assert OneClassScorer("euclidean", errors)(errors).tolist() == [5.0, pytest.approx(2**0.5)]
    train = np.random.default_rng(0).normal(0, [1.0, 10.0], (500, 2))
    maha = OneClassScorer("mahalanobis", train)
    # a step of 10 along the wide axis is about as far as a step of 1 along the narrow one
    near, far = maha(np.array([[0.0, 10.0], [10.0, 0.0]]))
    assert near == pytest.approx(1.0, rel=0.15) and far == pytest.approx(10.0, rel=0.15)
    with pytest.raises(ValueError, match="unknown error measure 'cosine'"):
        OneClassScorer("cosine", errors)


def test_a_class_without_images_is_named():
    images, labels = stripes(4)
    with pytest.raises(ValueError, match="class 'c' has no training images"):
        train_one_class(
            images,
            labels,
            np.arange(8),
            classes=["h", "v", "c"],
            cfg=TrainConfig(epochs=1),
            seed=0,
            measure="squared",
            task="multiclass",
            device=torch.device("cpu"),
        )
