"""Source catalogue, MedMNIST and CIFAR conversion into the raw layout."""

import io
import pickle
import tarfile

import numpy as np
import pytest

from medimbalance.data import medmnist as medmnist_module
from medimbalance.data.cifar import convert_cifar
from medimbalance.data.io import load_array, read_json
from medimbalance.data.medmnist import convert_medmnist
from medimbalance.data.sources import catalogue, download_for, task_of


def test_catalogue_covers_every_2d_flag_at_every_size():
    flags = catalogue()["medmnist"]
    assert len(flags) == 12
    for flag, entry in flags.items():
        assert sorted(entry["files"]) == [28, 64, 128, 224]
        for f in entry["files"].values():
            assert len(f["md5"]) == 32 and f["file"].startswith(flag)
    d = download_for({"source": "medmnist", "flag": "retinamnist", "size": 224})
    assert d.path == "resources/medmnist/retinamnist_224.npz"
    assert d.md5 == "eae7e3b6f3fcbda4ae613ebdcbe35348"
    assert d.url == "https://zenodo.org/records/10519652/files/retinamnist_224.npz?download=1"
    assert download_for({"source": "cifar10"}).md5 == "c58f30108f718f92721af3b95e74349a"
    assert download_for({"source": "msd_brats"}).md5 == "240a19d752f0d9e9101544901065d872"
    mirror = download_for({"source": "cifar100", "url": "http://m/c.tgz", "md5": "a" * 32})
    assert (mirror.url, mirror.md5) == ("http://m/c.tgz", "a" * 32)
    assert download_for({"source": "synthetic_findings"}) is None


def test_tasks_by_source():
    assert task_of({"source": "medmnist", "flag": "chestmnist"}) == "multilabel"
    assert task_of({"source": "medmnist", "flag": "breastmnist"}) == "binary"
    assert task_of({"source": "synthetic_tumours"}) == "segmentation"
    assert task_of({"source": "folder", "task": "regression"}) == "regression"
    with pytest.raises(ValueError, match="unknown MedMNIST flag 'mnist'"):
        task_of({"source": "medmnist", "flag": "mnist"})


def fake_medmnist(path, counts, sample, label_shape, rng, compressed=False):
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, *sample), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, *label_shape), dtype=np.uint8)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


def test_breastmnist_layout_official_split(tmp_path, rng):
    arrays = fake_medmnist(tmp_path / "b.npz", (546, 78, 156), (28, 28), (1,), rng)
    meta = convert_medmnist(tmp_path / "b.npz", "breastmnist", 28, tmp_path / "raw")
    images = load_array(tmp_path / "raw/images.npy")
    assert images.shape == (780, 1, 28, 28)
    assert np.array_equal(images[546:624, 0], arrays["val_images"])
    targets = load_array(tmp_path / "raw/targets.npy")
    assert targets.shape == (780,) and targets.dtype == np.int64
    assert np.bincount(load_array(tmp_path / "raw/split.npy")).tolist() == [546, 78, 156]
    assert meta["task"] == "binary" and meta["classes"] == ["malignant", "normal, benign"]
    assert read_json(tmp_path / "raw/meta.json")["n"] == 780


def test_rgb_and_multilabel_conversion(tmp_path, rng, monkeypatch):
    entry = {"task": "multilabel", "classes": list("abcd"), "license": "CC BY 4.0",
             "n_samples": {"train": 5, "val": 2, "test": 3}}  # fmt: skip
    monkeypatch.setattr(medmnist_module, "medmnist_entry", lambda flag: entry)
    arrays = fake_medmnist(tmp_path / "c.npz", (5, 2, 3), (8, 8, 3), (4,), rng, compressed=True)
    convert_medmnist(tmp_path / "c.npz", "fake", 28, tmp_path / "raw")
    images = load_array(tmp_path / "raw/images.npy")
    assert images.shape == (10, 3, 8, 8)
    assert np.array_equal(images[0], arrays["train_images"][0].transpose(2, 0, 1))
    assert load_array(tmp_path / "raw/targets.npy").shape == (10, 4)


def test_wrong_split_sizes_name_the_file(tmp_path, rng):
    fake_medmnist(tmp_path / "b.npz", (500, 78, 156), (28, 28), (1,), rng)
    with pytest.raises(
        ValueError, match=r"b.npz: train has 500 images, MedMNIST breastmnist has 546"
    ):
        convert_medmnist(tmp_path / "b.npz", "breastmnist", 28, tmp_path / "raw")
    assert not (tmp_path / "raw" / "images.npy").exists()


def add_pickle(tar, name, obj):
    data = pickle.dumps(obj)
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_cifar10_and_cifar100(tmp_path, rng):
    with tarfile.open(tmp_path / "c10.tar.gz", "w:gz") as tar:
        for i in range(1, 6):
            add_pickle(tar, f"cifar-10-batches-py/data_batch_{i}",
                       {b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8),
                        b"labels": [i % 10, 1, 2, 3]})  # fmt: skip
        add_pickle(tar, "cifar-10-batches-py/test_batch",
                   {b"data": np.zeros((3, 3072), np.uint8), b"labels": [9, 8, 7]})  # fmt: skip
    meta = convert_cifar(tmp_path / "c10.tar.gz", "cifar10", tmp_path / "raw10")
    assert load_array(tmp_path / "raw10/images.npy").shape == (23, 3, 32, 32)
    assert load_array(tmp_path / "raw10/targets.npy")[-3:].tolist() == [9, 8, 7]
    assert np.bincount(load_array(tmp_path / "raw10/split.npy")).tolist() == [20, 0, 3]
    assert meta["classes"][0] == "airplane"

    with tarfile.open(tmp_path / "c100.tar.gz", "w:gz") as tar:
        for part, n in (("train", 6), ("test", 2)):
            batch = {b"data": np.ones((n, 3072), np.uint8), b"fine_labels": [0, 1] * (n // 2)}
            add_pickle(tar, f"cifar-100-python/{part}", batch)
        add_pickle(tar, "cifar-100-python/meta", {b"fine_label_names": [b"apple", b"fish"]})
    assert convert_cifar(tmp_path / "c100.tar.gz", "cifar100", tmp_path / "r")["classes"] == [
        "apple",
        "fish",
    ]


def test_cifar_refuses_code_in_pickles_and_foreign_archives(tmp_path):
    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    with tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as tar:
        add_pickle(tar, "cifar-10-batches-py/data_batch_1", {b"data": Evil()})
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        convert_cifar(tmp_path / "evil.tar.gz", "cifar10", tmp_path / "raw")
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as tar:
        add_pickle(tar, "something/else", {})
    with pytest.raises(ValueError, match="lacks cifar-10-batches-py/data_batch_1"):
        convert_cifar(tmp_path / "other.tar.gz", "cifar10", tmp_path / "raw")
