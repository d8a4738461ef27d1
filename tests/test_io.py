import numpy as np
import pytest

from medimbalance.data.io import load_array, read_json, save_array, save_npz, write_json


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
