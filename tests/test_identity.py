"""Content keys: equal for equal values and file contents, different otherwise."""

from medimbalance.identity import config_key, file_digest, run_identity


def test_config_keys_ignore_key_order_and_see_every_value():
    assert config_key({"a": 1, "b": [2, 3]}) == config_key({"b": [2, 3], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})
    assert len(config_key({"a": 1})) == 12 and len(config_key({"a": 1}, None)) == 64


def test_run_identity_follows_the_content_of_the_inputs(tmp_path):
    data = tmp_path / "x.npy"
    data.write_bytes(b"first")
    before = run_identity({"seed": 0}, {"images": data})
    assert run_identity({"seed": 0}, {"images": data}) == before
    assert run_identity({"seed": 1}, {"images": data}) != before
    data.write_bytes(b"other")  # same name, same config, other data
    assert run_identity({"seed": 0}, {"images": data}) != before


def test_a_folder_digest_covers_its_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"1")
    first = file_digest(tmp_path / "d")
    (tmp_path / "d" / "a").write_bytes(b"2")
    assert file_digest(tmp_path / "d") != first


def test_run_identity_follows_the_library_code(tmp_path, monkeypatch):
    from medimbalance import identity

    data = tmp_path / "x.npy"
    data.write_bytes(b"first")
    real = identity.library_digest
    assert len(real()) == 64 and real.__wrapped__() == real()  # every .py file, read once
    before = run_identity({"seed": 0}, {"images": data})
    # the library's code is part of what a run is: other code, other identity
    monkeypatch.setattr(identity, "library_digest", lambda: "0" * 64)
    assert run_identity({"seed": 0}, {"images": data}) != before
