"""Array and JSON IO: preprocessed splits are memory-mappable ``.npy`` files plus ``meta.json``.

Every writer is atomic: it writes a temporary file in the target folder and renames it into
place only when complete, so a failed or killed job never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def replaced_when_done(path: str | os.PathLike, suffix: str) -> Iterator[str]:
    """A temporary file name beside ``path``: renamed to ``path`` when the block succeeds,
    deleted when it fails, so ``path`` is either complete or untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it to ``path``, else delete it."""
    with replaced_when_done(path, ".tmp") as tmp, open(tmp, mode) as f:
        yield f


@contextlib.contextmanager
def atomic_memmap(path: str | os.PathLike, dtype, shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """A writable ``.npy`` memory map at a temporary name, renamed to ``path`` when the block
    succeeds (deleted otherwise): arrays larger than RAM are written with bounded memory."""
    with replaced_when_done(path, ".npy") as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (NumPy scalars and arrays become plain numbers and lists)."""
    text = json.dumps(obj, indent=2, default=_to_builtin) + "\n"
    with atomic_write(path, "w") as f:
        f.write(text)


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save an array as ``.npy`` (no pickled objects: loading stays safe)."""
    with atomic_write(path) as f:
        np.save(f, array, allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save named arrays as an uncompressed ``.npz``."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_array(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """Load a ``.npy`` array, memory-mapped read-only when ``mmap`` (bounded memory)."""
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
