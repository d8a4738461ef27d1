"""Array and JSON IO: preprocessed splits are memory-mappable ``.npy`` files plus ``meta.json``.

Every writer is atomic: it writes a temporary file in the target folder and renames it into
place only when complete, so a failed or killed job never leaves a file that looks finished; the
file then has the permissions the user's umask gives a new file (collaborators in a shared
project folder can read the results). Every reader names the file it could not read and says
what to do (:class:`UnreadableFileError`), instead of NumPy's or JSON's bare message.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


class UnreadableFileError(ValueError):
    """A file of the workflow that is missing pieces, garbled or of another format."""


def unreadable(path: str | os.PathLike, error: BaseException | str) -> UnreadableFileError:
    """The error for a file that cannot be read: names it, why, and what to do."""
    return UnreadableFileError(
        f"cannot read {path}: {error}. It is truncated, garbled or was not written by this "
        "workflow; delete it and rerun snakemake, which writes it again"
    )


def current_umask() -> int:
    """The process's umask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it 0600
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


def release(array: np.ndarray) -> None:
    """Drop the pages of a read-only memory-mapped ``array`` (``load_array(mmap=True)``) from
    this process's resident set; they stay in the page cache. Reading a dataset larger than
    RAM piece by piece then keeps the process's memory bounded instead of holding every page
    it has touched. Arrays that are not memory maps are left alone."""
    mapping = getattr(array, "_mmap", None)
    if mapping is not None and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (NumPy scalars and arrays become plain numbers and lists)."""
    text = json.dumps(obj, indent=2, default=_to_builtin) + "\n"
    with atomic_write(path, "w") as f:
        f.write(text)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path``; :class:`UnreadableFileError` names a file that is not JSON."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise unreadable(path, f"not valid JSON ({error})") from error


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save an array as ``.npy`` (no pickled objects: loading stays safe)."""
    with atomic_write(path) as f:
        np.save(f, array, allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Save named arrays as an uncompressed ``.npz``."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_array(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """Load a ``.npy`` array, memory-mapped read-only when ``mmap`` (bounded memory);
    :class:`UnreadableFileError` names a truncated or garbled file."""
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise unreadable(path, _numpy_reason(error)) from None  # numpy's advice would mislead
    if not isinstance(array, np.ndarray):  # an .npz archive under an .npy name
        array.close()
        raise unreadable(path, "it is an .npz archive, expected a single .npy array")
    return array


def load_validation(inputs: Any) -> tuple[np.ndarray, np.ndarray]:
    """A job's validation images (memory-mapped) and targets, from its ``val_images`` and
    ``val_targets`` inputs; only the rows in ``val_indices`` when it has that input (a profile
    that shapes the validation split)."""
    images, targets = load_array(inputs.val_images, mmap=True), load_array(inputs.val_targets)
    if "val_indices" not in inputs.keys():
        return images, targets
    rows = load_array(inputs.val_indices)
    return np.ascontiguousarray(images[rows]), targets[rows]


def load_npz(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read in full; :class:`UnreadableFileError` names a
    truncated or garbled file, or one without an array named in ``required``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, expected an .npz archive")
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise unreadable(path, _numpy_reason(error)) from None  # numpy's advice would mislead
    missing = [name for name in required if name not in arrays]
    if missing:
        raise unreadable(path, f"no array {missing[0]!r} (it holds {sorted(arrays)})")
    return arrays


def _numpy_reason(error: BaseException) -> str:
    # NumPy reads a file that is neither .npy nor .npz as a pickle and suggests allow_pickle=,
    # which would be wrong advice here: the workflow never writes pickles.
    if "allow_pickle" in str(error) or "pickle" in str(error):
        return "not a NumPy .npy or .npz file"
    return f"{type(error).__name__}: {error}"


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
