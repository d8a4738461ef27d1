"""Resampling of the training set, on indices: the images are never copied.

Every resampler maps ``(indices (N,), labels (N,), seed, features, **args)`` to resampled
indices ``(M,)`` that may repeat (oversampling) or drop (undersampling, cleaning) entries of
``indices``. ``features`` is a callable returning one embedding row per index; only the
boundary-cleaning resamplers call it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .registry import Registry

# imbalanced-learn is imported inside the resamplers that use it: it takes over a second to
# import, and most workflow jobs (training, `none`) only need class_counts.

Features = Callable[[np.ndarray], np.ndarray]
Resampler = Callable[..., np.ndarray]
RESAMPLERS: Registry[Resampler] = Registry("resampler")


def target_counts(counts: dict[int, int], direction: str, ratio: float = 1.0) -> dict[int, int]:
    """Images per class after random over- or undersampling to ``ratio``.

    ``over``: every class grows to at least ``ceil(ratio · n_max)``; ``under``: every class
    shrinks to at most ``floor(n_min / ratio)``. ``ratio = 1`` balances fully; smaller ratios
    balance partially (the smallest class ends at ``ratio`` times the largest).
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio}")
    if direction == "over":
        goal = math.ceil(ratio * max(counts.values()) - 1e-9)
        return {c: max(n, goal) for c, n in counts.items()}
    goal = math.floor(min(counts.values()) / ratio + 1e-9)
    return {c: min(n, goal) for c, n in counts.items()}


@RESAMPLERS.register("none")
def no_resampling(indices: np.ndarray, labels: np.ndarray, seed: int, features=None) -> np.ndarray:
    """Keep the imbalanced set as it is (the baseline)."""
    return np.asarray(indices, dtype=np.int64).copy()


@RESAMPLERS.register("ros")
def random_oversampling(
    indices: np.ndarray, labels: np.ndarray, seed: int, features=None, ratio: float = 1.0
) -> np.ndarray:
    """Random oversampling: repeat random members of each class up to ``ratio`` times the
    majority count (1: fully balanced).

    Buda et al., "A systematic study of the class imbalance problem in convolutional neural
    networks", Neural Networks 2018 (ROS); imbalanced-learn's ``RandomOverSampler``.
    """
    from imblearn.over_sampling import RandomOverSampler

    goal = target_counts(_counts(labels), "over", ratio)
    return _imblearn(RandomOverSampler(sampling_strategy=goal, random_state=seed), indices, labels)


@RESAMPLERS.register("rus")
def random_undersampling(
    indices: np.ndarray, labels: np.ndarray, seed: int, features=None, ratio: float = 1.0
) -> np.ndarray:
    """Random undersampling: drop random members of each class down to the minority count
    divided by ``ratio`` (1: fully balanced).

    Buda et al. 2018 (RUS); imbalanced-learn's ``RandomUnderSampler``.
    """
    from imblearn.under_sampling import RandomUnderSampler

    goal = target_counts(_counts(labels), "under", ratio)
    return _imblearn(RandomUnderSampler(sampling_strategy=goal, random_state=seed), indices, labels)


@RESAMPLERS.register("tomek")
def tomek_links(
    indices: np.ndarray, labels: np.ndarray, seed: int, features: Features | None = None
) -> np.ndarray:
    """Remove the majority-side member of every Tomek link (two images of different classes
    that are each other's nearest neighbour) in the embedding: "elimination of redundant
    examples near the boundary between classes" (Tomek 1976; imbalanced-learn ``TomekLinks``;
    every class but the smallest is cleaned)."""
    from imblearn.under_sampling import TomekLinks

    return _clean(TomekLinks(), indices, labels, features)


@RESAMPLERS.register("enn")
def edited_nearest_neighbours(
    indices: np.ndarray,
    labels: np.ndarray,
    seed: int,
    features: Features | None = None,
    n_neighbors: int = 3,
) -> np.ndarray:
    """Edited nearest neighbours (Wilson 1972): drop images of the cleaned classes whose
    ``n_neighbors`` nearest neighbours in the embedding disagree with their class (all must
    agree; imbalanced-learn ``EditedNearestNeighbours``)."""
    from imblearn.under_sampling import EditedNearestNeighbours

    return _clean(EditedNearestNeighbours(n_neighbors=n_neighbors), indices, labels, features)


@RESAMPLERS.register("oss")
def one_sided_selection(
    indices: np.ndarray, labels: np.ndarray, seed: int, features: Features | None = None
) -> np.ndarray:
    """One-sided selection (Kubat and Matwin 1997): keep a 1-NN-consistent subset of the
    majority classes, then remove Tomek links (imbalanced-learn ``OneSidedSelection``)."""
    from imblearn.under_sampling import OneSidedSelection

    return _clean(OneSidedSelection(random_state=seed), indices, labels, features)


def pca_features(images: np.ndarray, n_components: int = 32, seed: int = 0) -> Features:
    """Embedding by a PCA of the pixels, fitted on the rows it is asked for (read from the
    memory-mapped ``images`` only then)."""

    def embed(rows: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        flat = np.asarray(images[np.asarray(rows)], dtype=np.float32).reshape(len(rows), -1)
        k = min(n_components, *flat.shape)
        return PCA(n_components=k, random_state=seed).fit_transform(flat)

    return embed


def resample(
    name: str,
    indices: np.ndarray,
    labels: np.ndarray,
    seed: int,
    features: Features | None = None,
    num_classes: int | None = None,
    **args,
) -> np.ndarray:
    """Apply the resampler registered as ``name`` with its ``args``; ``labels[i]`` is the class
    of ``indices[i]``. With ``num_classes``, a class without images is an error for every
    resampler but ``none`` (it cannot be over- or undersampled)."""
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(labels)
    if indices.shape != labels.shape or indices.ndim != 1:
        raise ValueError(
            "indices and labels must be 1-D of equal length, "
            f"got {indices.shape} and {labels.shape}"
        )
    resampler = RESAMPLERS.get(name)
    if name != "none" and num_classes is not None:
        empty = np.flatnonzero(class_counts(labels, num_classes) == 0)
        if empty.size:
            raise ValueError(
                f"resampler {name!r} cannot balance class(es) {empty.tolist()}: "
                "they have no training images"
            )
    try:
        return resampler(indices, labels, seed, features, **args)
    except (TypeError, ValueError) as error:
        raise ValueError(f"resampler {name!r}: {error}") from None


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Images per class, ``(num_classes,)`` int64."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def _counts(labels: np.ndarray) -> dict[int, int]:
    """Images per class present in ``labels`` (the form imbalanced-learn's strategies take)."""
    counts = class_counts(labels, int(np.max(labels)) + 1)
    return {c: int(n) for c, n in enumerate(counts) if n}


def _imblearn(sampler, indices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    resampled, _ = sampler.fit_resample(indices.reshape(-1, 1), labels)
    return np.asarray(resampled, dtype=np.int64).ravel()


def _clean(sampler, indices: np.ndarray, labels: np.ndarray, features: Features | None):
    """Run a cleaning under-sampler on the embeddings of ``indices``; return the kept indices."""
    if features is None:
        raise ValueError("boundary cleaning needs image embeddings (features)")
    sampler.fit_resample(features(indices), labels)
    return indices[np.sort(sampler.sample_indices_)]
