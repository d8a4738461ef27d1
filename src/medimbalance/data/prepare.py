"""Preparation of a raw dataset for a study: splits and preprocessing, with bounded memory.

Splits: the source's official split when it has one (validation carved from training when the
source has none); otherwise a seeded split, grouped by patient when patient ids are known (no
patient in two splits) and stratified by a task-appropriate key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from .io import atomic_memmap, release, save_array
from .raw import SPLIT_CODES, UNASSIGNED
from .splits import SPLITS, stratified_split

CHUNK_BYTES = 64 * 1024**2  # working memory of one preprocessing step (as float64)


def rows_per_chunk(sample_shape: Sequence[int]) -> int:
    """Images per step so that one step's float64 block stays within ``CHUNK_BYTES``."""
    return max(1, CHUNK_BYTES // (8 * int(np.prod(sample_shape))))


def stratify_key(targets: np.ndarray, task: str) -> np.ndarray:
    """One stratification label per sample: the class; for multi-label the rarest finding
    present (or none); for segmentation whether any foreground is present; for regression the
    decile of the target."""
    if task in ("multiclass", "binary"):
        return np.asarray(targets)
    if task == "multilabel":
        prevalence = targets.mean(axis=0)
        order = np.argsort(prevalence)  # rarest first
        ranked = targets[:, order].astype(bool)
        return np.where(ranked.any(1), order[ranked.argmax(1)], -1)
    if task == "segmentation":  # masks may be memory-mapped and larger than RAM: in chunks
        step = max(1, CHUNK_BYTES // max(1, int(np.prod(targets.shape[1:]))))
        return np.concatenate(
            [
                np.asarray(targets[i : i + step]).reshape(len(targets[i : i + step]), -1).any(1)
                for i in range(0, len(targets), step)
            ]
        ).astype(np.int64)
    edges = np.quantile(targets, np.linspace(0, 1, 11)[1:-1])
    return np.searchsorted(edges, targets)


def assign_splits(
    key: np.ndarray,
    official: np.ndarray,
    groups: np.ndarray,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    group_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Sorted train/val/test indices (see the module docstring for the rules)."""
    n = len(key)
    if (official >= 0).any():
        if (official == UNASSIGNED).any():
            raise ValueError(f"{int((official == UNASSIGNED).sum())} images have no split")
        check_groups_apart(official, groups, group_names)
        parts = {s: np.flatnonzero(official == code) for s, code in SPLIT_CODES.items()}
        if len(parts["val"]) == 0:  # e.g. CIFAR: carve validation from training
            train, val = train_test_split(
                parts["train"],
                test_size=val_fraction,
                random_state=seed,
                stratify=key[parts["train"]] if _can_stratify(key[parts["train"]]) else None,
            )
            parts["train"], parts["val"] = train, val
        return {s: np.sort(parts[s]).astype(np.int64) for s in SPLITS}
    if (groups >= 0).any():
        outer = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
        rest, test = next(outer.split(np.zeros(n), groups=groups))
        inner = GroupShuffleSplit(
            n_splits=1, test_size=val_fraction / (1 - test_fraction), random_state=seed + 1
        )
        train, val = next(inner.split(rest, groups=groups[rest]))
        parts = {"train": rest[train], "val": rest[val], "test": test}
        return {s: np.sort(parts[s]).astype(np.int64) for s in SPLITS}
    return stratified_split(key, val_fraction, test_fraction, seed, _can_stratify(key))


def check_groups_apart(
    split: np.ndarray, groups: np.ndarray, names: Sequence[str] | None = None
) -> None:
    """``ValueError`` naming the first patient (group) whose images lie in two splits;
    ``names[g]`` is group ``g``'s patient id."""
    known = groups >= 0
    pairs = np.unique(np.stack([groups[known], split[known]], 1), axis=0)
    ids, counts = np.unique(pairs[:, 0], return_counts=True)
    if (counts > 1).any():
        patient = int(ids[counts > 1][0])
        where = sorted(s for s, c in SPLIT_CODES.items() if c in pairs[pairs[:, 0] == patient, 1])
        name = names[patient] if names is not None else patient
        raise ValueError(
            f"patient {name!r} has images in several splits ({', '.join(where)}); "
            "a patient's images must share one split"
        )


def _can_stratify(key: np.ndarray) -> bool:
    """Stratify only when every stratum has at least three members (one per split)."""
    _, counts = np.unique(key, return_counts=True)
    return bool(counts.min() >= 3)


def crop(array: np.ndarray, size: Sequence[int] | None) -> np.ndarray:
    """The low corner ``size`` of ``array``'s trailing axes: a padded case without its padding
    (``array`` unchanged when ``size`` is ``None``)."""
    if size is None:
        return array
    lead = array.ndim - len(size)
    return array[(slice(None),) * lead + tuple(slice(0, int(n)) for n in size)]


def channel_stats(
    images: np.ndarray, indices: np.ndarray, sizes: Sequence | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over ``images[indices]`` ``(N, C, ...)``, in chunks; with
    ``sizes`` (each case's size in the padded array) over each case's own voxels only."""
    channels = images.shape[1]
    total, total_sq, count = np.zeros(channels), np.zeros(channels), 0
    step = rows_per_chunk(images.shape[1:])
    for start in range(0, len(indices), step):
        chunk = indices[start : start + step]
        block = np.asarray(images[chunk], np.float64)
        if sizes is None:
            flat = block.swapaxes(0, 1).reshape(channels, -1)
        else:
            flat = np.concatenate(
                [
                    crop(b, sizes[i]).reshape(channels, -1)
                    for b, i in zip(block, chunk, strict=True)
                ],
                axis=1,
            )
        total += flat.sum(1)
        total_sq += (flat**2).sum(1)
        count += flat.shape[1]
        release(images)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0))
    return mean, np.where(std > 0, std, 1.0)


def write_split(
    images: np.ndarray,
    targets: np.ndarray,
    indices: np.ndarray,
    images_out: str | Path,
    targets_out: str | Path,
    shape: Sequence[int] | None,
    stats: tuple[np.ndarray, np.ndarray] | None,
    sizes: Sequence | None = None,
) -> None:
    """Copy ``images[indices]`` (resampled to ``shape``, z-scored with ``stats``) in chunks.

    Masks follow their images (nearest-neighbour resampling) and are written chunk by chunk
    too. uint8 images stay uint8 unless normalised. With ``sizes`` (padded cases), ``shape``
    resamples each case's own voxels, and z-scoring leaves the padding at 0.
    """
    from .folder import resize

    spatial = tuple(shape) if shape else images.shape[2:]
    dtype = np.float32 if stats is not None or images.dtype != np.uint8 else np.uint8
    is_mask = targets.ndim == images.ndim - 1 and targets.shape[1:] == images.shape[2:]
    step = rows_per_chunk((images.shape[1], *np.maximum(images.shape[2:], spatial)))
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(
            atomic_memmap(images_out, dtype, (len(indices), images.shape[1], *spatial))
        )
        out_targets = None
        if is_mask:
            out_targets = stack.enter_context(
                atomic_memmap(targets_out, targets.dtype, (len(indices), *spatial))
            )
        for start in range(0, len(indices), step):
            chunk = indices[start : start + step]
            block = np.asarray(images[chunk])
            masks = np.asarray(targets[chunk]) if is_mask else None
            if shape:
                case = [None] * len(chunk) if sizes is None else [sizes[i] for i in chunk]
                block = np.stack(
                    [
                        resize(crop(b, c).astype(np.float32), spatial, order=1)
                        for b, c in zip(block, case, strict=True)
                    ]
                )
                if masks is not None:
                    masks = np.stack(
                        [
                            resize(crop(m, c)[None], spatial, order=0)[0]
                            for m, c in zip(masks, case, strict=True)
                        ]
                    )
            if stats is not None:
                mean, std = stats
                shape_c = (1, -1) + (1,) * (block.ndim - 2)
                block = (block - mean.reshape(shape_c)) / std.reshape(shape_c)
                if sizes is not None and not shape:  # the padding stays 0
                    for b, i in zip(block, chunk, strict=True):
                        valid = np.zeros(b.shape[1:], bool)
                        valid[tuple(slice(0, int(n)) for n in sizes[i])] = True
                        b[:, ~valid] = 0
            out[start : start + len(chunk)] = (
                block.astype(dtype) if dtype != np.uint8 else np.round(block).astype(np.uint8)
            )
            if out_targets is not None:
                out_targets[start : start + len(chunk)] = masks
            release(images), release(targets)  # the chunk is read: drop its mapped pages
    if not is_mask:
        save_array(targets_out, np.asarray(targets[indices]))


def split_geometry(meta: dict, parts: dict[str, np.ndarray], shape: Sequence[int] | None) -> dict:
    """The prepared dataset's per-split case geometry from the raw ``meta``:
    ``split_spacing`` (each case's voxel spacing, mm per axis) and, for padded cases kept at
    their own size, ``split_sizes``; after resampling to ``shape`` the spacing scales and every
    case has that size."""
    spacing, sizes = meta.get("case_spacing"), meta.get("case_sizes")
    out = {}
    if spacing is not None:
        full = sizes or [meta["spatial_shape"]] * len(spacing)
        if shape:
            spacing = [
                [s * n / m for s, n, m in zip(sp, size, shape, strict=True)]
                for sp, size in zip(spacing, full, strict=True)
            ]
        out["split_spacing"] = {k: [list(spacing[i]) for i in v] for k, v in parts.items()}
    if sizes is not None and not shape:
        out["split_sizes"] = {k: [list(sizes[i]) for i in v] for k, v in parts.items()}
    return out
