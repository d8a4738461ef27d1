"""Every data source through real Snakemake: synthetic tasks, downloads from a local server
(MedMNIST with a failing first attempt, an MSD-style archive), and a folder of PNGs."""

import io
import json
import tarfile

import nibabel
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from conftest import run_snakemake

from medimbalance.data.download import md5sum

pytestmark = pytest.mark.workflow


def breastmnist_npz(path, rng):
    arrays = {}
    for split, n in (("train", 546), ("val", 78), ("test", 156)):
        labels = (rng.random(n) < 0.73).astype(np.uint8)[:, None]
        images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8) + 120 * labels[:, :, None]
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images.astype(np.uint8), labels
    np.savez_compressed(path, **arrays)


def msd_tar(path, rng, cases=6):
    with tarfile.open(path, "w") as tar:

        def add(name, data):
            info = tarfile.TarInfo(f"Task01_BrainTumour/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        training = []
        for i in range(cases):
            image = rng.normal(size=(12, 12, 8, 4)).astype(np.float32)
            mask = np.zeros((12, 12, 8), np.uint8)
            mask[4:8, 4:8, 2:6], mask[5:7, 5:7, 3:5] = 1, 3
            for kind, array in (("imagesTr", image), ("labelsTr", mask)):
                buffer = io.BytesIO()
                file_map = nibabel.Nifti1Image(array, np.eye(4)).make_file_map(
                    {"image": buffer, "header": buffer}
                )
                nibabel.Nifti1Image(array, np.eye(4)).to_file_map(file_map)
                add(f"{kind}/BRATS_{i:03d}.nii", buffer.getvalue())
            training.append(
                {"image": f"./imagesTr/BRATS_{i:03d}.nii", "label": f"./labelsTr/BRATS_{i:03d}.nii"}
            )
        labels = {
            "0": "background",
            "1": "edema",
            "2": "non-enhancing tumor",
            "3": "enhancing tumour",
        }
        add("dataset.json", json.dumps({"labels": labels, "training": training}).encode())


@pytest.fixture(scope="module")
def suite(tmp_path_factory, request):
    from conftest import FileServer

    root = tmp_path_factory.mktemp("suite")
    rng = np.random.default_rng(0)
    server = FileServer()
    request.addfinalizer(server.close)
    breastmnist_npz(root / "breastmnist.npz", rng)
    msd_tar(root / "msd.tar", rng)
    server.files["breastmnist.npz"] = (root / "breastmnist.npz").read_bytes()
    server.files["msd.tar"] = (root / "msd.tar").read_bytes()
    (root / "pngs").mkdir()
    rows = []
    for i in range(24):
        sitk.WriteImage(
            sitk.GetImageFromArray(np.full((12, 12), 10 * i, np.uint8)), str(root / f"pngs/{i}.png")
        )
        rows.append({"path": f"{i}.png", "label": "ab"[i % 2], "patient_id": f"p{i // 4}"})
    pd.DataFrame(rows).to_csv(root / "pngs/manifest.csv", index=False)
    split = {"val": 0.2, "test": 0.2}
    config = {
        "study": "suite",
        "datasets": {
            "findings": {
                "source": "synthetic_findings",
                "split": split,
                "profiles": ["half"],
                "generator": {"n": 200, "image_size": 16},
            },
            "tumours": {
                "source": "synthetic_tumours",
                "split": split,
                "profiles": ["half"],
                "generator": {"n": 10, "shape": [24, 24], "tumour_fraction": 0.01},
            },
            "tumours3d": {
                "source": "synthetic_tumours",
                "split": split,
                "profiles": ["half"],
                "generator": {"n": 6, "shape": [16, 16, 16], "channels": 3},
            },
            "regression": {
                "source": "synthetic_std_regression",
                "split": split,
                "profiles": ["u15"],
                "preprocess": {"normalize": "none"},
                "generator": {"n_train": 3000, "n_val": 50, "n_test": 50},
            },
            "breast": {
                "source": "medmnist",
                "flag": "breastmnist",
                "split": split,
                "url": f"{server.url}/flaky/breastmnist.npz",
                "md5": md5sum(root / "breastmnist.npz"),
                "preprocess": {"shape": [16, 16], "normalize": "zscore"},
                "profiles": ["natural", "minority10"],
            },
            "brats": {
                "source": "msd_brats",
                "shape": [8, 8, 8],
                "split": split,
                "url": f"{server.url}/msd.tar",
                "md5": md5sum(root / "msd.tar"),
                "profiles": ["half"],
            },
            "pngs": {
                "source": "folder",
                "manifest": str(root / "pngs/manifest.csv"),
                "task": "binary",
                "classes": ["a", "b"],
                "split": split,
                "profiles": ["natural"],
            },
        },
        "profiles": {
            "natural": {"kind": "natural"},
            "half": {"kind": "fraction", "fraction": 0.5},
            "u15": {"kind": "target_distribution", "distribution": ["uniform", 1, 5], "n": 500},
            "minority10": {"kind": "minority_fraction", "fraction": 0.1, "minority": "malignant"},
        },
        "methods": {},
        "training": {"epochs": 1, "batch_size": 8, "lr": 0.001},
        "seeds": [0],
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    done = run_snakemake(
        "--cores", "2", "--configfile", str(root / "config.yaml"), "--directory", str(root)
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return root, server


def test_download_was_retried_after_a_server_error(suite):
    root, server = suite
    assert server.requests.count("/flaky/breastmnist.npz") == 2  # 500, then the file
    assert md5sum(root / "resources/medmnist/breastmnist.npz") == md5sum(root / "breastmnist.npz")


def test_medmnist_keeps_official_split_and_is_resized_and_normalised(suite):
    root, _ = suite
    data = root / "results/suite/data/breast"
    assert np.load(data / "train_images.npy", mmap_mode="r").shape == (546, 1, 16, 16)
    assert np.load(data / "val_images.npy").dtype == np.float32
    train = np.load(data / "train_images.npy")
    assert abs(train.mean()) < 0.05 and abs(train.std() - 1) < 0.05
    meta = json.loads((data / "meta.json").read_text())
    assert meta["splits"] == {"train": 546, "val": 78, "test": 156}
    counts = pd.read_csv(data / "minority10/class_counts.tsv", sep="\t")
    benign = counts.set_index("class").loc["normal, benign", "kept"]
    malignant = counts.set_index("class").loc["malignant", "kept"]
    assert malignant == int(0.1 / 0.9 * benign)


def test_msd_archive_is_downloaded_extracted_and_converted(suite):
    root, _ = suite
    meta = json.loads((root / "results/suite/data/brats/meta.json").read_text())
    assert meta["classes"] == ["background", "edema", "non-enhancing_tumor", "enhancing_tumour"]
    assert meta["regions"] == {
        "whole_tumour": [1, 2, 3],
        "tumour_core": [2, 3],
        "enhancing_tumour": [3],
    }
    images = np.load(root / "results/suite/data/brats/train_images.npy")
    assert images.shape[1:] == (4, 8, 8, 8)
    masks = np.load(root / "results/suite/data/brats/train_targets.npy")
    assert masks.shape[1:] == (8, 8, 8) and set(np.unique(masks)) <= {0, 1, 3}


def test_synthetic_tasks_and_their_profiles(suite):
    root, _ = suite
    data = root / "results/suite/data"
    assert np.load(data / "findings/train_targets.npy").shape[1] == 14
    kept = np.load(data / "tumours/half/train_indices.npy")
    assert len(kept) == round(0.5 * len(np.load(data / "tumours/train_targets.npy")))
    # two tumour datasets with the same options but other generators stay apart
    assert json.loads((data / "tumours/meta.json").read_text())["spatial_shape"] == [24, 24]
    volumes = np.load(data / "tumours3d/train_images.npy")
    assert volumes.shape[1:] == (3, 16, 16, 16)
    targets = np.load(data / "regression/train_targets.npy")
    u15 = targets[np.load(data / "regression/u15/train_indices.npy")]
    assert len(u15) == 500 and u15.min() >= 1 and u15.max() <= 5
    for figure in (root / "results/suite/figures").iterdir():
        assert figure.read_bytes()[:4] == b"\x89PNG"
    assert len(list((root / "results/suite/figures").iterdir())) == 8


def test_folder_source_splits_patients_apart(suite):
    root, _ = suite
    splits = json.loads((root / "results/suite/data/pngs/splits.json").read_text())
    patients = {s: {i // 4 for i in splits[s]} for s in ("train", "val", "test")}
    assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]


def test_a_replaced_image_is_converted_again(suite):
    # (last in this module: it changes the suite's folder source)
    root, _ = suite
    image = root / "pngs" / "3.png"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((12, 12), 255, np.uint8)), str(image))
    plan = run_snakemake(
        "-n", "--configfile", str(root / "config.yaml"), "--directory", str(root), "data"
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "convert_source" in plan.stdout and "prepare_dataset" in plan.stdout
