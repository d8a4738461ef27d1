"""MedMNIST v3 ``.npz`` files → the raw-dataset layout, streamed (bounded memory).

Yang et al., "MedMNIST v2 — A large-scale lightweight benchmark for 2D and 3D biomedical image
classification", Scientific Data 2023. The official train/val/test split is kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .archives import npz_keys, npz_shape, stream_npz_to_npy
from .io import atomic_memmap
from .raw import SPLIT_CODES, write_raw
from .sources import medmnist_entry

SPLITS = ("train", "val", "test")


def convert_medmnist(npz: str | Path, flag: str, size: int, folder: str | Path) -> dict:
    """Convert a downloaded MedMNIST file into ``folder``; returns the metadata written.

    Raises ``ValueError`` naming the file when keys or split sizes differ from the catalogue.
    """
    entry = medmnist_entry(flag)
    keys = set(npz_keys(npz))
    missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in keys]
    if missing:
        raise ValueError(f"{npz} lacks the MedMNIST arrays {missing}")
    shapes = {s: npz_shape(npz, f"{s}_images")[0] for s in SPLITS}
    for s in SPLITS:
        if shapes[s][0] != entry["n_samples"][s]:
            raise ValueError(
                f"{npz}: {s} has {shapes[s][0]} images, MedMNIST {flag} has {entry['n_samples'][s]}"
            )
    sample = shapes["train"][1:]  # (H, W) or (H, W, 3)
    channels = 1 if len(sample) == 2 else sample[2]
    counts = [shapes[s][0] for s in SPLITS]
    shape = (sum(counts), channels, sample[0], sample[1])

    def to_nchw(block: np.ndarray) -> np.ndarray:
        return block[:, None] if block.ndim == 3 else block.transpose(0, 3, 1, 2)

    folder = Path(folder)
    with atomic_memmap(folder / "images.npy", np.uint8, shape) as images:
        offset = 0
        for s in SPLITS:
            offset += stream_npz_to_npy(npz, f"{s}_images", images, offset, to_nchw)
    with np.load(npz) as z:
        labels = [z[f"{s}_labels"] for s in SPLITS]
    if entry["task"] == "multilabel":
        targets = np.concatenate(labels).astype(np.uint8)
    else:
        targets = np.concatenate(labels).reshape(-1).astype(np.int64)
    split = np.repeat([SPLIT_CODES[s] for s in SPLITS], counts)
    meta = {
        "source": "medmnist",
        "flag": flag,
        "size": size,
        "task": entry["task"],
        "classes": entry["classes"],
        "channels": int(channels),
        "spatial_shape": [int(sample[0]), int(sample[1])],
        "license": entry["license"],
        "official_split": True,
    }
    write_raw(folder, targets, meta, split=split)
    return meta
