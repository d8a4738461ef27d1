"""Seeded, stratified train/val/test splits, written once per dataset and reused by every run."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

SPLITS = ("train", "val", "test")


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int, stratify: bool = True
) -> dict[str, np.ndarray]:
    """Split sample indices ``0..N-1`` into train/val/test, stratified by ``labels`` ``(N,)``
    (a plain seeded split when ``stratify`` is false).

    Returns sorted int64 index arrays that partition ``range(N)``.
    """
    labels = np.asarray(labels)
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 to leave training data, "
            f"got {val_fraction} + {test_fraction}"
        )
    indices = np.arange(labels.size)
    rest, test = train_test_split(
        indices, test_size=test_fraction, stratify=labels if stratify else None, random_state=seed
    )
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1 - test_fraction),
        stratify=labels[rest] if stratify else None,
        random_state=seed + 1,
    )
    return {
        name: np.sort(part).astype(np.int64)
        for name, part in zip(SPLITS, (train, val, test), strict=True)
    }
