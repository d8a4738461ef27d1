import numpy as np
import pytest

from medimbalance.data.io import load_array, save_array
from medimbalance.data.prepare import assign_splits, channel_stats, stratify_key, write_split


def test_official_split_is_kept_and_val_carved_when_missing():
    official = np.array([0] * 40 + [2] * 10)
    key = np.tile([0, 1], 25)
    parts = assign_splits(key, official, np.full(50, -1), 0.25, 0.2, seed=0)
    assert parts["test"].tolist() == list(range(40, 50))
    assert len(parts["val"]) == 10 and len(parts["train"]) == 30
    assert not set(parts["val"]) & set(parts["train"])
    with pytest.raises(ValueError, match="3 images have no split"):
        assign_splits(key, np.r_[official[:-3], [-1, -1, -1]], np.full(50, -1), 0.2, 0.2, 0)


def test_stratify_keys_per_task():
    multilabel = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0]])
    # prevalences 0.75, 0.25, 0.25 -> rarest present first (ties by index)
    assert stratify_key(multilabel, "multilabel").tolist() == [2, 0, -1, 1]
    masks = np.zeros((3, 4, 4), np.uint8)
    masks[1, 0, 0] = 2
    assert stratify_key(masks, "segmentation").tolist() == [0, 1, 0]
    targets = np.linspace(0, 1, 100)
    assert np.bincount(stratify_key(targets, "regression")).tolist() == [10] * 10


def test_channel_stats_match_numpy(rng):
    images = rng.normal(3, 2, (300, 2, 4, 4)).astype(np.float32)
    indices = np.arange(0, 300, 2)
    mean, std = channel_stats(images, indices)
    assert mean == pytest.approx(images[indices].mean(axis=(0, 2, 3)), rel=1e-5)
    assert std == pytest.approx(images[indices].std(axis=(0, 2, 3)), rel=1e-4)


def test_write_split_resizes_normalises_and_keeps_masks_aligned(tmp_path, rng):
    images = rng.integers(0, 255, (5, 2, 8, 8), dtype=np.uint8)
    masks = np.zeros((5, 8, 8), np.uint8)
    masks[:, :4, :4] = 1
    write_split(
        images,
        masks,
        np.array([0, 3]),
        tmp_path / "i.npy",
        tmp_path / "t.npy",
        [4, 4],
        (np.array([100.0, 50.0]), np.array([10.0, 5.0])),
    )
    out, out_masks = load_array(tmp_path / "i.npy"), load_array(tmp_path / "t.npy")
    assert out.shape == (2, 2, 4, 4) and out.dtype == np.float32
    assert out_masks.tolist()[0] == [[1, 1, 0, 0]] * 2 + [[0, 0, 0, 0]] * 2
    raw = images[[0, 3]].astype(np.float32)
    assert out[:, 0].mean() == pytest.approx((raw[:, 0].mean() - 100) / 10, abs=0.5)
    write_split(
        images, np.arange(5), np.array([4, 1]), tmp_path / "u.npy", tmp_path / "v.npy", None, None
    )
    assert load_array(tmp_path / "u.npy").dtype == np.uint8
    assert np.array_equal(load_array(tmp_path / "u.npy"), images[[4, 1]])
    assert load_array(tmp_path / "v.npy").tolist() == [4, 1]
    save_array(tmp_path / "ok.npy", np.zeros(1))


def test_a_patient_in_two_given_splits_is_refused():
    official = np.array([0, 0, 1, 2, 2])
    groups = np.array([0, 0, 1, 2, 2])
    parts = assign_splits(np.zeros(5), official, groups, 0.2, 0.2, seed=0)
    assert parts["val"].tolist() == [2]
    groups[2] = 0  # patient 0 now also in val
    with pytest.raises(
        ValueError,
        match=r"patient 'P-007' has images in several splits "
        r"\(train, val\)",
    ):
        assign_splits(np.zeros(5), official, groups, 0.2, 0.2, 0, ["P-007", "P-1", "P-2"])


def test_padded_cases_are_normalised_on_their_own_voxels(tmp_path, rng):
    from medimbalance.data.prepare import split_geometry

    sizes = [[4, 6], [6, 3], [5, 5]]
    images = np.zeros((3, 1, 6, 6), np.float32)
    masks = np.zeros((3, 6, 6), np.uint8)
    for i, (h, w) in enumerate(sizes):
        images[i, 0, :h, :w] = rng.normal(10, 3, (h, w))
        masks[i, :h, :w] = rng.integers(0, 2, (h, w))
    voxels = np.concatenate([images[i, 0, :h, :w].ravel() for i, (h, w) in enumerate(sizes)])
    mean, std = channel_stats(images, np.arange(3), sizes)
    assert mean == pytest.approx([voxels.mean()]) and std == pytest.approx([voxels.std()])
    write_split(
        images,
        masks,
        np.array([2, 0]),
        tmp_path / "i.npy",
        tmp_path / "t.npy",
        None,
        (mean, std),
        sizes,
    )
    out, out_masks = load_array(tmp_path / "i.npy"), load_array(tmp_path / "t.npy")
    assert (out[0, 0, 5:] == 0).all() and (out[0, 0, :, 5:] == 0).all()  # padding stays 0
    assert out[0, 0, :5, :5] == pytest.approx((images[2, 0, :5, :5] - mean[0]) / std[0], rel=1e-5)
    assert np.array_equal(out_masks, masks[[2, 0]])
    # Resampling to a fixed shape uses each case's own voxels, and the spacing scales with it.
    write_split(
        images,
        masks,
        np.array([1]),
        tmp_path / "r.npy",
        tmp_path / "m.npy",
        [12, 6],
        None,
        sizes,
    )
    assert load_array(tmp_path / "m.npy")[0].tolist()[::2] == masks[1, :6, :3].repeat(2, 1).tolist()
    meta = {"spatial_shape": [6, 6], "case_spacing": [[1, 1], [2, 1], [1, 3]], "case_sizes": sizes}
    parts = {"train": np.array([0, 2]), "test": np.array([1])}
    geometry = split_geometry(meta, parts, None)
    assert geometry["split_sizes"] == {"train": [[4, 6], [5, 5]], "test": [[6, 3]]}
    assert geometry["split_spacing"]["test"] == [[2, 1]]
    resized = split_geometry(meta, parts, [12, 6])
    assert "split_sizes" not in resized
    assert resized["split_spacing"]["test"] == [[1.0, 0.5]]  # 2 mm × 6/12, 1 mm × 3/6
