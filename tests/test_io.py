"""Array and JSON IO: atomic writes with the umask's permissions; readers name a damaged file."""

import os
import stat

import numpy as np
import pytest

from medimbalance.data.io import (
    UnreadableFileError,
    atomic_memmap,
    load_array,
    load_npz,
    read_json,
    save_array,
    save_npz,
    write_json,
)


def test_round_trips_and_memory_map(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    save_array(tmp_path / "x" / "a.npy", a)
    mapped = load_array(tmp_path / "x" / "a.npy", mmap=True)
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, a)
    write_json(tmp_path / "m.json", {"n": np.int64(3), "v": np.float32(0.5), "a": a[0]})
    assert read_json(tmp_path / "m.json") == {"n": 3, "v": 0.5, "a": [0, 1, 2, 3]}
    save_npz(tmp_path / "p.npz", logits=a.astype(float))
    with np.load(tmp_path / "p.npz") as z:
        assert np.array_equal(z["logits"], a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "p.npz", "x"]


def test_failed_json_write_leaves_previous_file_intact(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"ok": 1})
    with pytest.raises(TypeError, match="cannot write object as JSON"):
        write_json(path, {"bad": object()})
    assert read_json(path) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary file left behind


def test_failed_array_write_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="pickle"):
        save_array(tmp_path / "a.npy", np.array([object()]))  # object arrays are refused
    assert list(tmp_path.iterdir()) == []


def half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble(path):
    path.write_bytes(b"\x00garbage\xff" * 64)


@pytest.mark.parametrize("damage", [half, garble, lambda p: p.write_bytes(b"")])
@pytest.mark.parametrize("kind", ["npy", "npy-mapped", "npz", "json"])
def test_an_unreadable_intermediate_is_named_with_what_to_do(tmp_path, kind, damage):
    arrays = {"logits": np.arange(4000.0).reshape(1000, 4), "targets": np.arange(1000)}
    path = tmp_path / f"file.{kind.split('-')[0]}"
    if kind == "json":
        write_json(path, {"classes": ["a", "b"] * 100})
        read = read_json
    elif kind == "npz":
        save_npz(path, **arrays)
        read = load_npz
    else:
        save_array(path, arrays["logits"])
        read = (lambda p: load_array(p, mmap=True)) if kind == "npy-mapped" else load_array
    damage(path)
    with pytest.raises(UnreadableFileError) as raised:
        read(path)
    message = str(raised.value)
    assert message.startswith(f"cannot read {path}: ")
    assert "delete it and rerun snakemake" in message
    assert "allow_pickle" not in message  # NumPy's advice for a non-NumPy file would mislead


def test_an_npz_without_an_expected_array_is_named(tmp_path):
    save_npz(tmp_path / "p.npz", val_logits=np.zeros(3))
    with pytest.raises(UnreadableFileError, match=r"p.npz: no array 'test_logits'"):
        load_npz(tmp_path / "p.npz", ("val_logits", "test_logits"))
    assert load_npz(tmp_path / "p.npz", ("val_logits",))["val_logits"].shape == (3,)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_have_the_permissions_of_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
        save_array(tmp_path / "a.npy", np.zeros(2))
        with atomic_memmap(tmp_path / "m.npy", np.uint8, (2,)) as out:
            out[:] = 1
    finally:
        os.umask(previous)
    for name in ("m.json", "a.npy", "m.npy"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
