"""Fault injection, archives and downloads: a decathlon archive of the wrong shape or with a
link out of its folder is refused and leaves no staging folder; a download whose MD5 does not
match is not fetched again."""

import hashlib

import pytest
from test_archives import make_tar

from medimbalance.data.archives import extract_one_folder
from medimbalance.data.download import PermanentDownloadError, fetch


def tar(path, members):
    make_tar(path, members)
    return path


def test_a_decathlon_archive_is_moved_into_place_without_staging(tmp_path):
    archive = tar(tmp_path / "a.tar", [("Task01/dataset.json", b"{}"), ("Task01/l", "->x")])
    extract_one_folder(archive, tmp_path / "out" / "Task01_BrainTumour")
    assert (tmp_path / "out" / "Task01_BrainTumour" / "dataset.json").read_bytes() == b"{}"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Task01_BrainTumour"]


@pytest.mark.parametrize(
    "members, message",
    [
        (
            [("dataset.json", b"{}"), ("imagesTr/a.nii", b"1")],
            r"expected every member inside one top-level folder .* found dataset.json, imagesTr",
        ),
        ([("Task01/x", b"1"), ("Task02/y", b"2")], r"found Task01, Task02"),
        ([("Task01/x", b"1"), ("Task01/up", "->..")], r"link 'Task01/up' points outside"),
        ([("Task01/x", b"1"), ("Task01/a/b", "->../../y")], r"link 'Task01/a/b' points outside"),
    ],
    ids=["no top-level folder", "two folders", "inner .. link", "link to a sibling"],
)
def test_a_malformed_decathlon_archive_is_refused_and_leaves_nothing(tmp_path, members, message):
    archive = tar(tmp_path / "a.tar", members)
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match=message):
        extract_one_folder(archive, tmp_path / "out" / "Task01_BrainTumour")
    assert list((tmp_path / "out").iterdir()) == []  # no output, no .extract staging folder


def test_a_download_with_the_wrong_md5_is_fetched_once(file_server, tmp_path):
    body = b"x" * 100_000
    file_server.files["big.tar"] = body
    with pytest.raises(PermanentDownloadError, match=hashlib.md5(body).hexdigest()):
        fetch(f"{file_server.url}/big.tar", tmp_path / "big.tar", "0" * 32, pause=0)
    assert file_server.requests == ["/big.tar"]  # once, not once per retry
    assert list(tmp_path.iterdir()) == []
