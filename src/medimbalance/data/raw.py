"""The raw-dataset layout every source writes, so that one preparation rule serves them all.

A raw dataset is a folder with:

- ``images.npy`` ``(N, C, *spatial)``: uint8 (photographs, X-rays) or float32 (MRI, CT);
- ``targets.npy``: ``(N,)`` int64 class, ``(N, L)`` uint8 multi-hot labels, ``(N,)`` float32
  regression target, or ``(N, *spatial)`` uint8 segmentation mask;
- ``split.npy`` ``(N,)`` int8: the source's official split (0 train, 1 val, 2 test) or -1;
- ``groups.npy`` ``(N,)`` int64: patient (or other grouping) id, or -1 when unknown;
- ``meta.json``: source, task, classes, channels, spatial shape and provenance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import save_array, write_json
from .sources import RAW_FILES as FILES  # noqa: F401  (re-exported: the layout's file names)

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
UNASSIGNED = -1


def write_raw(
    folder: str | Path,
    targets: np.ndarray | None,
    meta: dict,
    split: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    n: int | None = None,
) -> None:
    """Write targets, split, groups and meta.json beside an ``images.npy`` already in ``folder``.

    ``meta`` gains ``n``; ``split``/``groups`` default to -1 (none). ``targets`` ``None``:
    ``targets.npy`` is already written (masks, case by case), and ``n`` gives its length.
    """
    folder = Path(folder)
    n = len(targets) if targets is not None else n
    split = np.full(n, UNASSIGNED, np.int8) if split is None else np.asarray(split, np.int8)
    groups = np.full(n, UNASSIGNED, np.int64) if groups is None else np.asarray(groups, np.int64)
    if len(split) != n or len(groups) != n:
        raise ValueError(f"split ({len(split)}) and groups ({len(groups)}) must have {n} entries")
    if targets is not None:
        save_array(folder / "targets.npy", targets)
    save_array(folder / "split.npy", split)
    save_array(folder / "groups.npy", groups)
    write_json(folder / "meta.json", {**meta, "n": n})
