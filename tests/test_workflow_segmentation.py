"""Segmentation at native resolution through real Snakemake: 3D cases of different sizes with
anisotropic voxels, patch training, sliding-window inference, BraTS regions, HD95 in mm."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_study

from medimbalance.metrics import segmentation_metrics

SEG3D = REPO / "tests" / "configs" / "seg3d.yaml"
pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    return run_study(tmp_path_factory.mktemp("seg3d"), SEG3D) / "results/seg3d"


def test_cases_keep_their_size_and_spacing(seg_run):
    meta = json.loads((seg_run / "data/tumours/meta.json").read_text())
    sizes = [size for split in ("train", "val", "test") for size in meta["split_sizes"][split]]
    assert len({tuple(s) for s in sizes}) > 1  # no resizing: the cases differ
    assert meta["spatial_shape"] == np.max(sizes, axis=0).tolist()  # stored padded
    assert all(s == [1.0, 1.0, 2.0] for s in meta["split_spacing"]["test"])
    assert meta["regions"]["tumour_core"] == [2, 3]
    test = np.load(seg_run / "data/tumours/test_targets.npy")
    for mask, size in zip(test, meta["split_sizes"]["test"], strict=True):
        outside = np.ones(mask.shape, bool)
        outside[tuple(slice(0, n) for n in size)] = False
        assert not mask[outside].any()  # the padding is background


def test_patch_methods_are_scored_per_region_in_mm(seg_run):
    meta = json.loads((seg_run / "data/tumours/meta.json").read_text())
    for method in ("dice_ce", "ce_80", "asym_all"):
        run = seg_run / f"runs/tumours/natural/{method}/seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["hd95_unit"] == "mm" and set(metrics["per_region"]) >= {"dice", "hd95"}
        assert list(metrics["regions"]) == ["whole_tumour", "tumour_core", "enhancing_tumour"]
        assert all(v is not None for v in metrics["per_region"]["hd95"])
        with np.load(run / "predictions.npz") as p:  # label maps of whole cases, not logits
            labels, sizes = p["test_labels"], meta["split_sizes"]["test"]
            assert "test_logits" not in p.files and labels.dtype == np.uint8
            assert labels.shape[1:] == tuple(meta["spatial_shape"])
            for case, size in zip(labels, sizes, strict=True):  # background beyond each case
                inside = np.zeros(case.shape, bool)
                inside[tuple(slice(0, n) for n in size)] = True
                assert not case[~inside].any() and case[inside].max() <= 3
        history = json.loads((run / "history.json").read_text())["epochs"]
        assert len(history) == 2 and all("val_dice" in r for r in history)
    table = pd.read_csv(seg_run / "tables/tumours_natural.csv")
    assert {"dice[tumour_core]", "hd95[tumour_core]", "hd95"} <= set(table["metric"])
    assert "HD95 (mm)" in (seg_run / "tables/tumours_natural.md").read_text()


def test_a_patch_model_is_scored_on_another_sites_cases_of_other_sizes(seg_run):
    own = json.loads((seg_run / "data/tumours/meta.json").read_text())
    other = json.loads((seg_run / "data/tumours/test_on/tumours_b/meta.json").read_text())
    assert other["spatial_shape"] != own["spatial_shape"]  # larger cases, by sliding windows
    assert other["split_spacing"]["test"][0] == [0.8, 0.8, 2.0]
    run = seg_run / "runs/tumours/natural/ce_80/seed0/test_on/tumours_b"
    with np.load(run / "predictions.npz") as p:
        assert p["test_labels"].shape == p["test_targets"].shape
        assert p["test_labels"].shape[1:] == tuple(other["spatial_shape"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == other["splits"]["test"] and metrics["hd95_unit"] == "mm"
    with np.load(run / "predictions.npz") as p:  # scored on the other site's own case sizes
        again = segmentation_metrics(
            p["test_targets"],
            p["test_labels"],
            metrics["classes"],
            spacing=other["split_spacing"]["test"],
            sizes=other["split_sizes"]["test"],
        )
    assert metrics["dice"] == pytest.approx(again["dice"])
    assert metrics["hd95"] == pytest.approx(again["hd95"])
    cross = (seg_run / "tables/tumours_natural_test_on.md").read_text()
    assert "tumours_b" in cross


def test_every_segmentation_method_has_training_and_test_logit_histograms(seg_run):
    meta = json.loads((seg_run / "data/tumours/meta.json").read_text())
    for method in ("dice_ce", "ce_80", "asym_all"):
        metrics = json.loads(
            (seg_run / f"runs/tumours/natural/{method}/seed0/metrics.json").read_text()
        )
        found = metrics["logit_histograms"]
        training, test = np.asarray(found["training"]), np.asarray(found["test"])
        assert training.shape == test.shape == (4, len(found["edges"]) - 1)
        # The test histogram counts every voxel of the test cases once, by its true class.
        masks = np.load(seg_run / "data/tumours/test_targets.npy")
        sizes = meta["split_sizes"]["test"]
        truth = sum(
            np.bincount(m[tuple(slice(0, n) for n in s)].ravel(), minlength=4)
            for m, s in zip(masks, sizes, strict=True)
        )
        assert test.sum(1).tolist() == truth.tolist()
    assert (seg_run / "figures/tumours_natural_logit_histograms.png").stat().st_size > 10_000


def test_flips_at_test_time_are_reported_beside_each_method(seg_run):
    for method in ("dice_ce", "asym_all"):
        run = seg_run / f"runs/tumours/natural/{method}/seed0"
        with np.load(run / "predictions.npz") as p:
            assert p["test_tta_labels"].shape == p["test_labels"].shape
        metrics = json.loads((run / "metrics.json").read_text())
        assert set(metrics["tta"]["per_region"]) >= {"dice", "hd95"}
    table = pd.read_csv(seg_run / "tables/tumours_natural.csv")
    assert list(dict.fromkeys(table["method"])) == [
        "dice_ce",
        "dice_ce + flips",
        "ce_80",
        "ce_80 + flips",
        "asym_all",
        "asym_all + flips",
    ]
