"""Checksummed downloads against a local HTTP server (no internet)."""

import hashlib

import pytest

from medimbalance.data.download import (
    DownloadError,
    PermanentDownloadError,
    fetch,
    md5sum,
    verify,
)

BODY = bytes(range(256)) * 4000  # about 1 MB: several read chunks
MD5 = hashlib.md5(BODY).hexdigest()


def test_good_file_is_downloaded_then_skipped(file_server, tmp_path):
    file_server.files["data.npz"] = BODY
    dest = tmp_path / "resources" / "data.npz"
    assert fetch(f"{file_server.url}/data.npz", dest, MD5) is True
    assert dest.read_bytes() == BODY and md5sum(dest) == MD5
    assert fetch(f"{file_server.url}/data.npz", dest, MD5) is False  # present and valid
    assert len(file_server.requests) == 1
    assert sorted(p.name for p in dest.parent.iterdir()) == ["data.npz"]


def test_wrong_md5_names_url_both_checksums_and_the_manual_route(file_server, tmp_path):
    file_server.files["data.npz"] = BODY
    dest = tmp_path / "data.npz"
    with pytest.raises(PermanentDownloadError) as error:
        fetch(f"{file_server.url}/data.npz", dest, "0" * 32, pause=0)
    assert len(file_server.requests) == 1  # not downloaded again: the bytes would be the same
    message = str(error.value)
    assert f"{file_server.url}/data.npz" in message
    assert MD5 in message and "0" * 32 in message
    assert f"copy it to {dest}" in message
    assert list(tmp_path.iterdir()) == []  # neither the file nor a .part


def test_transfer_cut_halfway_leaves_no_file(file_server, tmp_path):
    file_server.files["data.npz"] = BODY
    dest = tmp_path / "data.npz"
    with pytest.raises(DownloadError, match=r"was cut short: 512000 of 1024000 bytes"):
        fetch(f"{file_server.url}/cut/data.npz", dest, MD5, attempts=3, pause=0)
    assert len(file_server.requests) == 3  # a transient failure: retried
    assert list(tmp_path.iterdir()) == []


def test_server_error_and_unreachable_host(file_server, tmp_path):
    file_server.files["data.npz"] = BODY
    with pytest.raises(DownloadError, match="500"):
        fetch(f"{file_server.url}/flaky/data.npz", tmp_path / "x.npz", MD5, attempts=1)
    assert fetch(f"{file_server.url}/flaky/data.npz", tmp_path / "x.npz", MD5)  # second try
    file_server.files["again.npz"] = BODY
    assert fetch(f"{file_server.url}/flaky/again.npz", tmp_path / "w.npz", MD5, pause=0)
    assert file_server.requests.count("/flaky/again.npz") == 2  # 500, then retried in the call
    with pytest.raises(PermanentDownloadError, match="404"):
        fetch(f"{file_server.url}/missing.npz", tmp_path / "y.npz", MD5, pause=0)
    assert file_server.requests.count("/missing.npz") == 1  # a missing file is not retried
    closed = "http://127.0.0.1:9/none.npz"  # discard port: nothing listens
    with pytest.raises(DownloadError, match=r"cannot download http://127\.0\.0\.1:9/none\.npz"):
        fetch(closed, tmp_path / "z.npz", MD5, timeout=5, attempts=2, pause=0)


def test_a_corrupt_file_in_place_is_replaced_by_a_good_one(file_server, tmp_path):
    file_server.files["data.npz"] = BODY
    dest = tmp_path / "data.npz"
    dest.write_bytes(b"partial")
    with pytest.raises(DownloadError, match=f"has MD5 {hashlib.md5(b'partial').hexdigest()}"):
        verify(dest, MD5, "http://example.org/data.npz")
    assert fetch(f"{file_server.url}/data.npz", dest, MD5) is True
    assert dest.read_bytes() == BODY
