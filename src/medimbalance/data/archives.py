"""Archives: tar extraction that no member can escape, and streaming reads of ``.npz`` members."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format


def check_members(
    tar: tarfile.TarFile, dest: Path, name: str, one_folder: bool = False
) -> list[tarfile.TarInfo]:
    """Members of ``tar``; ``ValueError`` naming the first that would land outside ``dest``.

    With ``one_folder``, every member must lie in one top-level folder (as the decathlon's
    ``Task01_BrainTumour/``), and links must stay inside that folder, which is what is kept.
    """
    members = tar.getmembers()
    tops = {Path(m.name).parts[0] for m in members if Path(m.name).parts}
    if one_folder and (len(tops) != 1 or not any(m.isdir() or "/" in m.name for m in members)):
        found = ", ".join(sorted(tops)[:5]) or "nothing"
        raise ValueError(
            f"{name}: expected every member inside one top-level folder (e.g. "
            f"Task01_BrainTumour/), found {found}; is this the right archive?"
        )
    inside = (dest / next(iter(tops))).resolve() if one_folder else dest
    for member in members:
        target = (dest / member.name).resolve()
        if not target.is_relative_to(inside):
            raise ValueError(
                f"{name}: member {member.name!r} would be written outside {inside}; "
                "refusing to extract"
            )
        if member.issym() or member.islnk():
            base = target.parent if member.issym() else dest  # hard links name archive paths
            link = (base / member.linkname).resolve()
            if not link.is_relative_to(inside):
                raise ValueError(f"{name}: link {member.name!r} points outside {inside}; refusing")
        if member.isdev():
            raise ValueError(f"{name}: member {member.name!r} is a device file; refusing")
    return members


def safe_extract(
    archive: str | os.PathLike, dest: str | os.PathLike, one_folder: bool = False
) -> Path:
    """Extract a tar archive into ``dest``: into a temporary folder first, renamed when complete.

    No member may escape ``dest`` (``../``, absolute paths, links out, devices), checked before
    anything is written; Python's ``data`` filter applies as a second line of defence. With
    ``one_folder`` the archive must hold one top-level folder that no link leaves
    (:func:`check_members`).
    """
    dest = Path(dest).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        with tarfile.open(archive) as tar:
            members = check_members(tar, staging, str(archive), one_folder)
            tar.extractall(staging, members=members, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def extract_one_folder(archive: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Extract an archive that holds one top-level folder (a decathlon task) to ``folder``.

    It is staged beside ``folder`` in ``<folder>.extract/`` (checked before anything is
    written: one top-level folder, no member or link leaving it), then moved into place; the
    staging folder is removed whether or not this succeeds.
    """
    folder = Path(folder)
    staging = folder.parent / (folder.name + ".extract")
    try:
        safe_extract(archive, staging, one_folder=True)
        (inner,) = [p for p in staging.iterdir() if p.is_dir()]
        inner.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def npz_keys(path: str | os.PathLike) -> list[str]:
    """Array names in an ``.npz`` file."""
    with zipfile.ZipFile(path) as z:
        return [n[: -len(".npy")] for n in z.namelist() if n.endswith(".npy")]


def npz_shape(path: str | os.PathLike, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one ``.npz`` member, read from its header only."""
    with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as f:
        shape, _, dtype = _header(f)
    return shape, dtype


def iter_npz_rows(path: str | os.PathLike, key: str, rows: int = 1024) -> Iterator[np.ndarray]:
    """Yield successive blocks of ``rows`` leading-axis entries of one ``.npz`` member.

    Decompresses as it reads: memory stays bounded by one block whatever the array's size.
    """
    with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as f:
        shape, fortran, dtype = _header(f)
        if fortran and len(shape) > 1:
            raise ValueError(f"{path}:{key} is stored in Fortran order; cannot stream it by rows")
        row_items = int(np.prod(shape[1:], dtype=np.int64))
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start)
            data = f.read(count * row_items * dtype.itemsize)
            if len(data) != count * row_items * dtype.itemsize:
                raise ValueError(f"{path}:{key} is truncated at row {start}")
            yield np.frombuffer(data, dtype=dtype).reshape((count, *shape[1:]))


def stream_npz_to_npy(
    path: str | os.PathLike,
    key: str,
    out: np.ndarray,
    offset: int = 0,
    transform: Callable[[np.ndarray], np.ndarray] = lambda a: a,
) -> int:
    """Copy one ``.npz`` member into ``out[offset:]`` block by block; returns rows copied."""
    copied = 0
    for block in iter_npz_rows(path, key):
        out[offset + copied : offset + copied + len(block)] = transform(block)
        copied += len(block)
    return copied


def _header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    major, _ = npy_format.read_magic(f)
    read = npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
    shape, fortran, dtype = read(f)
    return shape, fortran, dtype
