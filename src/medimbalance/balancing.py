"""Resampling of the training set: on indices (the images are never copied), or by creating
new minority images.

Every resampler (``RESAMPLERS``) maps ``(indices (N,), labels (N,), seed, features, **args)`` to
resampled indices ``(M,)`` that may repeat (oversampling) or drop (undersampling, cleaning)
entries of ``indices``. ``features`` is a callable returning one embedding row per index; only
the boundary-cleaning resamplers call it.

Every synthesizer (``SYNTHESIZERS``) keeps the training set and maps ``(images, indices, labels,
seed, features, **args)`` to new images and their labels, which training appends to the set.
``GENERATIVE`` names the synthesizers backed by a trained generative model
(:mod:`medimbalance.gan`, :mod:`medimbalance.diffusion`); the workflow trains that model in a
rule of its own.

A weighted random sampler (:func:`sample_weights`) leaves the set as it is and changes how
training draws from it: ``class_balanced`` draws every class equally often, ``sqrt`` in
proportion to the square root of its count, ``effective_number`` by Cui et al.'s inverse
effective number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .config import SAMPLERS
from .losses.weights import inverse_effective_number
from .registry import Registry
from .targets import class_counts
from .tasks import GENERATIVE

# imbalanced-learn is imported inside the resamplers that use it: it takes over a second to
# import, and most workflow jobs never resample.

Features = Callable[[np.ndarray], np.ndarray]
Resampler = Callable[..., np.ndarray]
RESAMPLERS: Registry[Resampler] = Registry("resampler")
Synthesizer = Callable[..., tuple[np.ndarray, np.ndarray]]
SYNTHESIZERS: Registry[Synthesizer] = Registry("synthesizer")


def resampler_names() -> list[str]:
    """Every value ``methods.<name>.resample`` can take."""
    return sorted([*RESAMPLERS.names(), *SYNTHESIZERS.names(), *GENERATIVE])


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
    pixels = pixel_features(images)

    def embed(rows: np.ndarray) -> np.ndarray:
        from sklearn.decomposition import PCA

        flat = pixels(rows)
        k = min(n_components, *flat.shape)
        return PCA(n_components=k, random_state=seed).fit_transform(flat)

    return embed


@SYNTHESIZERS.register("smote")
def smote(
    images: np.ndarray,
    indices: np.ndarray,
    labels: np.ndarray,
    seed: int,
    features: Features | None = None,
    ratio: float = 1.0,
    k_neighbors: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """SMOTE (Chawla et al., JAIR 2002): each new image of a class lies at a uniform random
    point on the segment between a random member and one of its ``k_neighbors`` nearest
    neighbours of the same class, until the class has ``ratio`` times the majority count.

    Neighbours are found in the embedding when ``features`` is given, otherwise in pixel space
    (then this is imbalanced-learn's ``SMOTE`` algorithm); the interpolation is always of the
    pixels, so the new samples are images. Integer images are rounded back to their dtype.
    """
    from sklearn.neighbors import NearestNeighbors

    if k_neighbors < 1:
        raise ValueError(f"k_neighbors must be ≥ 1, got {k_neighbors}")
    goal = target_counts(_counts(labels), "over", ratio)
    rng = np.random.default_rng(seed)
    new_images, new_labels = [], []
    embedding = None if features is None else features(indices)  # one embedding for all
    for c, want in goal.items():
        members = np.flatnonzero(labels == c)
        need = want - len(members)
        if need <= 0:
            continue
        if len(members) < 2:
            raise ValueError(f"class {c} has {len(members)} image; SMOTE needs at least 2")
        pixels = np.asarray(images[indices[members]], dtype=np.float32)
        space = pixels.reshape(len(members), -1) if embedding is None else embedding[members]
        k = min(k_neighbors, len(members) - 1)
        # Column 0 is each image itself (or an exact duplicate of it: either way not a partner).
        _, neighbours = NearestNeighbors(n_neighbors=k + 1).fit(space).kneighbors(space)
        base = rng.integers(len(members), size=need)
        partner = neighbours[base, rng.integers(1, k + 1, size=need)]
        step = rng.random(need, dtype=np.float32).reshape(-1, *[1] * (pixels.ndim - 1))
        new = pixels[base] + step * (pixels[partner] - pixels[base])
        new_images.append(_as_dtype(new, images.dtype))
        new_labels.append(np.full(need, c, dtype=np.int64))
    if not new_images:
        return np.empty((0, *images.shape[1:]), images.dtype), np.empty(0, np.int64)
    return np.concatenate(new_images), np.concatenate(new_labels)


def generation_labels(
    labels: np.ndarray, num_classes: int, ratio: float = 1.0, name: str = "cdcgan"
) -> np.ndarray:
    """The labels of the images a generative model (resampler ``name``) must add so that every
    class of ``labels`` reaches ``ratio`` times the majority count (as random oversampling
    would)."""
    _, labels = _checked(name, np.arange(len(labels)), labels, num_classes)
    counts = _counts(labels)
    try:
        goal = target_counts(counts, "over", ratio)
    except ValueError as error:
        raise ValueError(f"resample_args.ratio: {error}") from None
    return np.repeat(np.array(list(goal), np.int64), [goal[c] - counts[c] for c in goal])


def pixel_features(images: np.ndarray) -> Features:
    """The flattened pixels of the rows asked for, as the embedding."""

    def embed(rows: np.ndarray) -> np.ndarray:
        return np.asarray(images[np.asarray(rows)], dtype=np.float32).reshape(len(rows), -1)

    return embed


def _as_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` in the images' dtype: integers rounded and clipped to the dtype's range."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def synthesize(
    name: str,
    images: np.ndarray,
    indices: np.ndarray,
    labels: np.ndarray,
    seed: int,
    features: Features | None = None,
    num_classes: int | None = None,
    **args,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the synthesizer registered as ``name``: new images of the classes of
    ``labels`` (aligned with ``indices``, rows of ``images``) and their labels."""
    indices, labels = _checked(name, indices, labels, num_classes)
    synthesizer = SYNTHESIZERS.get(name)
    try:
        return synthesizer(images, indices, labels, seed, features, **args)
    except (TypeError, ValueError) as error:
        raise ValueError(f"synthesizer {name!r}: {error}") from None


def _checked(
    name: str, indices: np.ndarray, labels: np.ndarray, num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and labels as arrays; raises ``ValueError`` for misaligned ones, and (with
    ``num_classes``) for a class without images, which cannot be balanced."""
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(labels)
    if indices.shape != labels.shape or indices.ndim != 1:
        raise ValueError(
            "indices and labels must be 1-D of equal length, "
            f"got {indices.shape} and {labels.shape}"
        )
    if name != "none" and num_classes is not None:
        empty = np.flatnonzero(class_counts(labels, num_classes) == 0)
        if empty.size:
            raise ValueError(
                f"resampler {name!r} cannot balance class(es) {empty.tolist()}: "
                "they have no training images"
            )
    return indices, labels


# ---- Weighted random sampling (no resampling: training draws by these weights) -------------


def class_draw_probabilities(counts: Sequence[int], scheme: str, beta: float = 0.999) -> np.ndarray:
    """Probability that one draw of the sampler is of each class, ``(C,)``.

    ``class_balanced``: ``1/C`` each; ``sqrt``: ``∝ √n_c``; ``effective_number``:
    ``∝ n_c (1 − β) / (1 − β^{n_c})`` (each sample weighted by its class's inverse effective
    number, Cui et al., CVPR 2019); ``none``: ``∝ n_c``. Classes without samples get 0.
    """
    n = np.asarray(counts, dtype=np.float64)
    if scheme == "none":
        per_sample = np.ones_like(n)
    elif scheme == "class_balanced":
        per_sample = 1.0 / np.maximum(n, 1)
    elif scheme == "sqrt":
        per_sample = 1.0 / np.sqrt(np.maximum(n, 1))
    elif scheme == "effective_number":
        try:
            per_sample = inverse_effective_number(np.maximum(n, 1), beta)
        except ValueError as error:
            raise ValueError(f"sampler_beta: {error}") from None
    else:
        raise ValueError(f"sampler: unknown {scheme!r}; valid choices: {', '.join(SAMPLERS)}")
    mass = n * per_sample
    return mass / mass.sum()


def sample_weights(
    labels: np.ndarray, num_classes: int, scheme: str, beta: float = 0.999
) -> np.ndarray:
    """One weight per sample, ``(N,)`` float64, for a weighted random sampler: each class's draw
    probability (:func:`class_draw_probabilities`) shared by its members. Multi-hot labels
    ``(N, L)`` take :func:`multilabel_sample_weights` (``class_balanced`` only)."""
    if np.ndim(labels) == 2:
        if scheme != "class_balanced":
            raise ValueError(
                f"sampler {scheme!r} is for single-label data; multi-label data takes "
                "class_balanced"
            )
        return multilabel_sample_weights(labels)
    labels = np.asarray(labels, dtype=np.int64)
    counts = class_counts(labels, num_classes)
    per_class = class_draw_probabilities(counts, scheme, beta) / np.maximum(counts, 1)
    return per_class[labels]


def multilabel_sample_weights(labels: np.ndarray) -> np.ndarray:
    """Class-aware sampling of multi-label data (Shen et al. 2016, as Wu et al.'s 2020
    distribution-balanced re-sampling starts from): a draw picks a label uniformly, then an
    image uniformly among those holding it, so image ``i`` is drawn with probability ``∝ Σ_{c ∈
    pos(i)} 1/n_c``. Images without any positive label form one more group of their own (they
    would otherwise never be drawn), so each of the ``L + 1`` groups is drawn equally often.
    Returns ``(N,)`` float64 summing to 1; a label without positives is left out."""
    y = np.asarray(labels) > 0.5
    groups = np.concatenate([y, ~y.any(1, keepdims=True)], axis=1)
    counts = groups.sum(0)
    present = counts > 0
    weights = (groups[:, present] / counts[present]).sum(1)
    return weights / weights.sum()


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
    resampler = RESAMPLERS.get(name)
    indices, labels = _checked(name, indices, labels, num_classes)
    try:
        return resampler(indices, labels, seed, features, **args)
    except (TypeError, ValueError) as error:
        raise ValueError(f"resampler {name!r}: {error}") from None


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
