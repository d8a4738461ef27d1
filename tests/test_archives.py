import io
import tarfile
import zipfile

import numpy as np
import pytest

from medimbalance.data.archives import iter_npz_rows, npz_keys, npz_shape, safe_extract


def make_tar(path, members):
    """members: (name, bytes) for files, (name, '->target') for symlinks."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_normal_archive_is_extracted(tmp_path):
    make_tar(tmp_path / "a.tar", [("Task/dataset.json", b"{}"), ("Task/img/x.nii", b"abc")])
    out = safe_extract(tmp_path / "a.tar", tmp_path / "out")
    assert (out / "Task/img/x.nii").read_bytes() == b"abc"


@pytest.mark.parametrize(
    "members, message",
    [
        ([("ok.txt", b"1"), ("../evil.txt", b"x")], "'../evil.txt' would be written outside"),
        ([("/etc/evil.txt", b"x")], "would be written outside"),
        ([("Task/link", "->../../outside")], "link 'Task/link' points outside"),
    ],
)
def test_escaping_members_are_refused_before_anything_is_written(tmp_path, members, message):
    make_tar(tmp_path / "a.tar", members)
    with pytest.raises(ValueError, match=message):
        safe_extract(tmp_path / "a.tar", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar"]  # no output, no staging


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_members_stream_in_blocks(tmp_path, compressed):
    images = np.random.default_rng(0).integers(0, 255, (2500, 7, 5, 3), dtype=np.uint8)
    (np.savez_compressed if compressed else np.savez)(tmp_path / "d.npz", train_images=images)
    assert npz_keys(tmp_path / "d.npz") == ["train_images"]
    assert npz_shape(tmp_path / "d.npz", "train_images") == ((2500, 7, 5, 3), np.dtype("uint8"))
    blocks = list(iter_npz_rows(tmp_path / "d.npz", "train_images", rows=1000))
    assert [len(b) for b in blocks] == [1000, 1000, 500]
    assert np.array_equal(np.concatenate(blocks), images)


def test_truncated_npz_member_is_reported(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((10, 4), np.uint8))
    with zipfile.ZipFile(tmp_path / "t.npz", "w") as z:
        z.writestr("x.npy", buffer.getvalue()[:-8])
    with pytest.raises(ValueError, match="truncated at row 0"):
        list(iter_npz_rows(tmp_path / "t.npz", "x"))
