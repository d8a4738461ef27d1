"""Imbalance profiles: how many training images each class keeps, and which ones."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def exponential_counts(n_max: int, num_classes: int, mu: float) -> list[int]:
    """Long-tail class counts ``n_c = floor(n_max · mu^(c/(C−1)))`` for ``c = 0..C−1``.

    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019 (the
    CIFAR-LT construction; imbalance factor ``n_max / n_min = 1/mu``). ``mu = 1`` is balanced.
    """
    if not 0 < mu <= 1:
        raise ValueError(f"mu must lie in (0, 1], got {mu}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be ≥ 2, got {num_classes}")
    if n_max < 1:
        raise ValueError(f"n_max must be ≥ 1, got {n_max}")
    return [math.floor(n_max * mu ** (c / (num_classes - 1))) for c in range(num_classes)]


def subsample_to_counts(
    labels: np.ndarray, counts: Sequence[int], seed: int, class_names: Sequence[str] | None = None
) -> np.ndarray:
    """Keep ``counts[c]`` random samples of each class ``c``; sorted indices into ``labels``.

    Raises ``ValueError`` naming the class when a count is 0 (the class would vanish) or exceeds
    what the class has.
    """
    labels = np.asarray(labels)
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(counts))]
    rng = np.random.default_rng(seed)
    kept = []
    for c, n_c in enumerate(counts):
        members = np.flatnonzero(labels == c)
        if n_c < 1:
            raise ValueError(f"the profile leaves class {names[c]!r} with no training images")
        if n_c > members.size:
            raise ValueError(
                f"the profile asks for {n_c} images of class {names[c]!r}, "
                f"but the training split has only {members.size}"
            )
        kept.append(rng.permutation(members)[:n_c])
    return np.sort(np.concatenate(kept)).astype(np.int64)


def profile_counts(kind: str, available: Sequence[int], params: dict) -> list[int]:
    """Per-class target counts for a named profile, given the per-class counts available."""
    if kind == "exponential":
        n_max = params.get("n_max") or min(available)
        return exponential_counts(int(n_max), len(available), float(params["mu"]))
    raise ValueError(f"unknown profile kind {kind!r}; valid choices: exponential")
