"""CIFAR-10 / CIFAR-100 python archives → the raw-dataset layout (the long-tail baselines).

Krizhevsky, "Learning multiple layers of features from tiny images", 2009. The official test
set is kept; validation images are carved from the training set when the dataset is prepared.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import ClassVar

import numpy as np

from .io import save_array
from .raw import SPLIT_CODES, write_raw

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
MEMBERS = {
    "cifar10": {
        "train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
        "test": ["cifar-10-batches-py/test_batch"],
        "label_key": b"labels",
    },
    "cifar100": {
        "train": ["cifar-100-python/train"],
        "test": ["cifar-100-python/test"],
        "meta": "cifar-100-python/meta",
        "label_key": b"fine_labels",
    },
}


class _ArraysOnly(pickle.Unpickler):
    """Unpickle CIFAR batches: dicts of bytes, lists and NumPy arrays, nothing executable."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def _load(tar: tarfile.TarFile, member: str, archive: Path) -> dict:
    try:
        data = tar.extractfile(member).read()
    except KeyError:
        raise ValueError(f"{archive} lacks {member}: not a CIFAR python archive") from None
    return _ArraysOnly(io.BytesIO(data), encoding="bytes").load()


def convert_cifar(archive: str | Path, which: str, folder: str | Path) -> dict:
    """Convert ``cifar-10-python.tar.gz`` or ``cifar-100-python.tar.gz`` into ``folder``."""
    if which not in MEMBERS:
        raise ValueError(f"unknown CIFAR variant {which!r}; valid choices: cifar10, cifar100")
    spec, archive, folder = MEMBERS[which], Path(archive), Path(folder)
    images, labels, split = [], [], []
    with tarfile.open(archive) as tar:
        for part in ("train", "test"):
            for member in spec[part]:
                batch = _load(tar, member, archive)
                images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(batch[spec["label_key"]], np.int64))
                split.append(np.full(len(labels[-1]), SPLIT_CODES[part], np.int8))
        if which == "cifar100":
            names = [n.decode() for n in _load(tar, spec["meta"], archive)[b"fine_label_names"]]
        else:
            names = list(CIFAR10_CLASSES)
    save_array(folder / "images.npy", np.concatenate(images))
    meta = {
        "source": which,
        "task": "multiclass",
        "classes": names,
        "channels": 3,
        "spatial_shape": [32, 32],
        "official_split": True,
    }
    write_raw(folder, np.concatenate(labels), meta, split=np.concatenate(split))
    return meta
