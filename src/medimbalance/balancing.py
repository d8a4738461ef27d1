"""Resampling of the training set, on indices: the images are never copied.

Every resampler maps ``(indices (N,), labels (N,), seed)`` to resampled indices ``(M,)`` that
may repeat (oversampling) or drop (undersampling) entries of ``indices``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .registry import Registry

# imbalanced-learn is imported inside the resamplers that use it: it takes over a second to
# import, and most workflow jobs (training, `none`) only need class_counts.

Resampler = Callable[[np.ndarray, np.ndarray, int], np.ndarray]
RESAMPLERS: Registry[Resampler] = Registry("resampler")


@RESAMPLERS.register("none")
def no_resampling(indices: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Keep the imbalanced set as it is (the baseline)."""
    return np.asarray(indices, dtype=np.int64).copy()


@RESAMPLERS.register("ros")
def random_oversampling(indices: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Random oversampling: repeat random members of each class up to the majority count.

    Buda et al., "A systematic study of the class imbalance problem in convolutional neural
    networks", Neural Networks 2018 (ROS); imbalanced-learn's ``RandomOverSampler``.
    """
    from imblearn.over_sampling import RandomOverSampler

    return _imblearn(RandomOverSampler(random_state=seed), indices, labels)


@RESAMPLERS.register("rus")
def random_undersampling(indices: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Random undersampling: drop random members of each class down to the minority count.

    Buda et al. 2018 (RUS); imbalanced-learn's ``RandomUnderSampler``.
    """
    from imblearn.under_sampling import RandomUnderSampler

    return _imblearn(RandomUnderSampler(random_state=seed), indices, labels)


def resample(name: str, indices: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Apply the resampler registered as ``name``; ``labels[i]`` is the class of ``indices[i]``."""
    indices = np.asarray(indices, dtype=np.int64)
    labels = np.asarray(labels)
    if indices.shape != labels.shape or indices.ndim != 1:
        raise ValueError(
            "indices and labels must be 1-D of equal length, "
            f"got {indices.shape} and {labels.shape}"
        )
    return RESAMPLERS.get(name)(indices, labels, seed)


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Images per class, ``(num_classes,)`` int64."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def _imblearn(sampler, indices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    resampled, _ = sampler.fit_resample(indices.reshape(-1, 1), labels)
    return np.asarray(resampled, dtype=np.int64).ravel()
