"""Source catalogue, MedMNIST and CIFAR conversion into the raw layout."""

import io
import pickle
import tarfile

import numpy as np
import pytest
import yaml
from conftest import REPO

from medimbalance.data import medmnist as medmnist_module
from medimbalance.data.cifar import convert_cifar
from medimbalance.data.io import load_array, read_json
from medimbalance.data.medmnist import convert_medmnist
from medimbalance.data.sources import (
    GENERATORS,
    SOURCES,
    catalogue,
    declared_geometry,
    download_for,
    load_function,
    raw_plan,
    task_of,
)


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
    with pytest.raises(ValueError, match="unknown medmnist flag 'mnist'; valid choices: pathmnist"):
        task_of({"source": "medmnist", "flag": "mnist"})
    with pytest.raises(ValueError, match=r"unknown medmnist size '32'; valid choices: 28, 64"):
        download_for({"source": "medmnist", "flag": "pathmnist", "size": 32})
    with pytest.raises(ValueError, match="unknown source 'mnist'; valid choices: synthetic_"):
        task_of({"source": "mnist"})


SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DATASET = SCHEMA["properties"]["datasets"]["additionalProperties"]


def schema_rules(source):
    """What the schema's ``allOf`` asks of one source: the ``then`` of each ``if`` naming it."""
    rules = DATASET["allOf"]
    return [r["then"] for r in rules if r["if"]["properties"]["source"]["const"] == source]


def test_the_schema_names_every_source_of_the_table_and_what_each_needs():
    assert DATASET["properties"]["source"]["enum"] == list(SOURCES)
    for name, source in SOURCES.items():
        rules = schema_rules(name)
        # every key the schema requires is one the source passes on or reads its input from
        required = {key for rule in rules for key in rule.get("required", [])}
        assert required <= {*source.keys, source.input_key}, name
        # a generator's parameters have a schema; no other source takes parameters
        has_parameters = any("generator" in rule.get("properties", {}) for rule in rules)
        assert has_parameters == (source.generator is not None), name
        assert source.generator is None or source.generator in GENERATORS
        assert source.converter is None or callable(load_function(source.converter))
    for generator in GENERATORS.values():
        assert callable(load_function(generator.writer))


def test_raw_plans_name_each_step_by_content():
    lesions = {"source": "synthetic_graded_lesions", "generator": {"n_per_class": 5}}
    plan = raw_plan(lesions, "multiclass")
    assert plan.generate == (plan.folder, "graded_lesions", {"n_per_class": 5})
    assert plan.folder.startswith("resources/synthetic/graded_lesions/") and plan.convert is None
    assert raw_plan({**lesions, "generator": {"n_per_class": 6}}, "multiclass") != plan
    tumours = raw_plan({"source": "synthetic_tumours", "generator": {"n": 4}}, "segmentation")
    manifest, spec = tumours.convert
    assert manifest == f"{tumours.generate[0]}/manifest.tsv"
    assert spec["args"]["classes"] == ["background", "edema", "non_enhancing", "enhancing"]
    brats = raw_plan({"source": "msd_brats", "shape": [64, 64, 64]}, "segmentation")
    archive = "resources/msd/Task01_BrainTumour.tar"
    assert brats.extract == (archive, archive.removesuffix(".tar"))
    assert brats.convert[0] == "resources/msd/Task01_BrainTumour"
    assert brats.convert[1]["args"] == {"shape": [64, 64, 64], "spacing": None}
    assert "md5" not in brats.convert[1]
    flag = {"source": "medmnist", "flag": "breastmnist", "size": 28}
    breast = raw_plan(flag, "binary")
    download = breast.download
    assert breast.convert == (
        download.path,
        {
            "source": "medmnist",
            "task": "binary",
            "args": {"flag": "breastmnist", "size": 28},
            "url": download.url,
            "md5": download.md5,
        },
    )
    folder = {"source": "folder", "manifest": "a.csv", "task": "binary", "classes": ["n", "y"]}
    first, second = raw_plan(folder, "binary"), raw_plan({**folder, "manifest": "b.csv"}, "binary")
    assert first.convert[0] == "a.csv" and first.folder != second.folder  # the input is in the key


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
    entry = {
        "task": "multilabel",
        "classes": list("abcd"),
        "license": "CC BY 4.0",
        "n_samples": {"train": 5, "val": 2, "test": 3},
    }
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
            add_pickle(
                tar,
                f"cifar-10-batches-py/data_batch_{i}",
                {
                    b"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8),
                    b"labels": [i % 10, 1, 2, 3],
                },
            )
        add_pickle(
            tar,
            "cifar-10-batches-py/test_batch",
            {b"data": np.zeros((3, 3072), np.uint8), b"labels": [9, 8, 7]},
        )
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


@pytest.mark.parametrize(
    "source, generator",
    [
        ("synthetic_graded_lesions", {"n_per_class": 5, "image_size": 12}),
        ("synthetic_findings", {"n": 20, "image_size": 16}),
        ("synthetic_findings", {"n": 20, "image_size": 16, "prevalence": [0.3, 0.2, 0.1]}),
        ("synthetic_std_regression", {"n_train": 4, "n_val": 2, "n_test": 2, "image_size": 9}),
    ],
)
def test_the_declared_geometry_is_what_the_generator_writes(tmp_path, source, generator):
    write = load_function(GENERATORS[SOURCES[source].generator].writer)
    write(generator, tmp_path)
    meta = read_json(tmp_path / "meta.json")
    declared = declared_geometry({"source": source, "generator": generator})
    assert declared["spatial_shape"] == meta["spatial_shape"]
    assert declared["channels"] == meta["channels"]
    expected_classes = 1 if meta["task"] == "regression" else len(meta["classes"])
    assert declared["classes"] == expected_classes
    resampled = declared_geometry({"source": source, "generator": generator}, {"shape": [20, 20]})
    assert resampled["spatial_shape"] == [20, 20]


def test_declared_geometry_of_downloads_and_folders():
    assert declared_geometry({"source": "cifar100"}) == {
        "spatial_shape": [32, 32],
        "channels": 3,
        "classes": 100,
    }
    derma = declared_geometry({"source": "medmnist", "flag": "dermamnist", "size": 64})
    assert derma == {"spatial_shape": [64, 64], "channels": 3, "classes": 7}
    assert declared_geometry({"source": "folder", "classes": ["a", "b"]}) == {"classes": 2}
    # the tumours' labels are the folder converter's fixed classes
    tumours = declared_geometry({"source": "synthetic_tumours", "generator": {"channels": 3}})
    assert tumours["classes"] == len(SOURCES["synthetic_tumours"].fixed["classes"])
    assert tumours["channels"] == 3
