"""Folder source: manifests over real DICOM and NIfTI files (nibabel's test data) and PNGs."""

from pathlib import Path

import nibabel
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from medimbalance.data.folder import convert_folder, read_image, read_manifest
from medimbalance.data.io import load_array, read_json
from medimbalance.data.prepare import assign_splits

NIB_DATA = Path(nibabel.__file__).parent / "tests" / "data"


def write_png(path, value, size=(20, 24), rgb=False):
    array = np.full((*size, 3) if rgb else size, value, np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=rgb), str(path))


def manifest(tmp_path, rows, name="manifest.csv"):
    sep = "\t" if name.endswith(".tsv") else ","
    pd.DataFrame(rows).to_csv(tmp_path / name, sep=sep, index=False)
    return tmp_path / name


def test_png_classification_with_patients_and_resizing(tmp_path):
    rows = []
    for i in range(12):
        write_png(tmp_path / f"im{i}.png", 20 * i)
        rows.append(
            {
                "path": f"im{i}.png",
                "label": ["benign", "malignant"][i % 2],
                "patient_id": f"p{i // 3}",
            }
        )
    meta = convert_folder(
        manifest(tmp_path, rows), "binary", ["benign", "malignant"], [10, 12], tmp_path / "raw"
    )
    images = load_array(tmp_path / "raw/images.npy")
    assert images.shape == (12, 1, 10, 12) and images.dtype == np.uint8
    assert images[5].min() == images[5].max() == 100  # a flat image stays flat when resized
    assert load_array(tmp_path / "raw/targets.npy").tolist() == [0, 1] * 6
    groups = load_array(tmp_path / "raw/groups.npy")
    assert groups.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert meta["channels"] == 1 and read_json(tmp_path / "raw/meta.json")["n"] == 12
    parts = assign_splits(
        np.zeros(12), np.full(12, -1), groups, val_fraction=0.25, test_fraction=0.25, seed=0
    )
    patients = [set(groups[parts[s]]) for s in ("train", "val", "test")]
    assert all(p for p in patients)
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])


def test_rgb_png_and_multilabel(tmp_path):
    for i in range(3):
        write_png(tmp_path / f"c{i}.png", 50, rgb=True)
    rows = [{"path": f"c{i}.png", "labels": lab} for i, lab in enumerate(["a|c", "", "b"])]
    convert_folder(
        manifest(tmp_path, rows, "m.tsv"), "multilabel", ["a", "b", "c"], None, tmp_path / "raw"
    )
    assert load_array(tmp_path / "raw/images.npy").shape == (3, 3, 20, 24)
    assert load_array(tmp_path / "raw/targets.npy").tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]


def test_real_dicom_files_with_a_numeric_target_and_splits(tmp_path):
    rows = [
        {"path": str(NIB_DATA / "0.dcm"), "target": "1.5", "split": "train"},
        {"path": str(NIB_DATA / "1.dcm"), "target": "2.5", "split": "test"},
    ]
    meta = convert_folder(
        manifest(tmp_path, rows), "regression", ["value"], [64, 64], tmp_path / "raw"
    )
    images = load_array(tmp_path / "raw/images.npy")
    assert images.shape == (2, 1, 64, 64) and images.dtype == np.float32
    assert images.std() > 0
    assert load_array(tmp_path / "raw/targets.npy").tolist() == [1.5, 2.5]
    assert load_array(tmp_path / "raw/split.npy").tolist() == [0, 2] and meta["official_split"]


def test_real_nifti_volume_with_a_mask(tmp_path):
    volume = read_image(NIB_DATA / "anatomical.nii")
    assert volume.shape == (1, 33, 41, 25)
    mask = (volume[0] > np.percentile(volume, 90)).astype(np.uint8)
    nibabel.save(nibabel.Nifti1Image(mask, np.eye(4)), tmp_path / "mask.nii.gz")
    rows = [{"path": str(NIB_DATA / "anatomical.nii"), "mask": "mask.nii.gz"}]
    convert_folder(
        manifest(tmp_path, rows),
        "segmentation",
        ["background", "bright"],
        [16, 16, 16],
        tmp_path / "raw",
    )
    assert load_array(tmp_path / "raw/images.npy").shape == (1, 1, 16, 16, 16)
    masks = load_array(tmp_path / "raw/targets.npy")
    assert masks.shape == (1, 16, 16, 16) and set(np.unique(masks)) == {0, 1}


def test_four_dimensional_nifti_becomes_channels():
    assert read_image(NIB_DATA / "example4d.nii.gz").shape == (2, 128, 96, 24)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing column", r"missing manifest column 'label'"),
        ("duplicate path", r"image listed more than once: .*a\.png"),
        (
            "unknown label",
            r"row 3 has label 'tumor', not one of the classes \['normal', 'tumour'\]",
        ),
        ("corrupt image", r"cannot read image .*broken\.png"),
        ("missing image", r"cannot read image .*nowhere\.png"),
        ("bad split", r"split must be train, val, test or empty, got 'training' \(row 2\)"),
    ],
)
def test_bad_manifests_name_the_problem_and_leave_nothing(tmp_path, case, message):
    write_png(tmp_path / "a.png", 10)
    write_png(tmp_path / "b.png", 20)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    rows = [{"path": "a.png", "label": "normal"}, {"path": "b.png", "label": "tumour"}]
    if case == "missing column":
        rows = [{"path": "a.png", "class": "normal"}]
    elif case == "duplicate path":
        rows.append({"path": "a.png", "label": "normal"})
    elif case == "unknown label":
        rows[1]["label"] = "tumor"
    elif case == "corrupt image":
        rows.append({"path": "broken.png", "label": "normal"})
    elif case == "missing image":
        rows.append({"path": "nowhere.png", "label": "normal"})
    else:
        rows = [{**r, "split": "training"} for r in rows]
    with pytest.raises(ValueError, match=message):
        convert_folder(
            manifest(tmp_path, rows), "binary", ["normal", "tumour"], None, tmp_path / "raw"
        )
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_mask_image_shape_mismatch_names_both_files(tmp_path):
    write_png(tmp_path / "img.png", 10, size=(20, 24))
    write_png(tmp_path / "msk.png", 1, size=(20, 20))
    path = manifest(tmp_path, [{"path": "img.png", "mask": "msk.png"}])
    with pytest.raises(
        ValueError, match=r"mask .*msk\.png has shape \(20, 20\), but image .*img\.png"
    ):
        convert_folder(path, "segmentation", ["bg", "fg"], None, tmp_path / "raw")


def test_manifest_relative_paths_resolve_against_its_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "sub" / "x.png", 1)
    table = read_manifest(manifest(tmp_path / "sub", [{"path": "x.png", "label": "a"}]), "binary")
    assert table["path"].iloc[0] == str((tmp_path / "sub" / "x.png").resolve())


def write_case(folder, name, image, mask, spacing):
    """A NIfTI image/mask pair whose header gives ``spacing`` (mm per axis)."""
    affine = np.diag([*spacing, 1.0])
    nibabel.save(nibabel.Nifti1Image(image, affine), folder / f"{name}.nii.gz")
    nibabel.save(nibabel.Nifti1Image(mask, affine), folder / f"{name}_mask.nii.gz")
    return {"path": f"{name}.nii.gz", "mask": f"{name}_mask.nii.gz"}


def test_volumes_of_different_sizes_keep_their_spacing_and_are_padded(tmp_path, rng):
    sizes = [(10, 12, 6), (14, 9, 8), (12, 12, 7)]
    spacings = [(0.5, 0.5, 3.0), (1.0, 1.0, 2.0), (0.8, 0.8, 2.5)]
    rows, images, masks = [], [], []
    for i, (size, spacing) in enumerate(zip(sizes, spacings, strict=True)):
        images.append(rng.normal(size=size).astype(np.float32) + 5)
        masks.append((rng.random(size) < 0.2).astype(np.uint8) * rng.integers(1, 3, size))
        rows.append(write_case(tmp_path, f"c{i}", images[-1], masks[-1].astype(np.uint8), spacing))
    meta = convert_folder(
        manifest(tmp_path, rows), "segmentation", ["bg", "a", "b"], None, tmp_path / "raw"
    )
    assert meta["spatial_shape"] == [14, 12, 8]  # the largest size per axis
    assert meta["case_sizes"] == [list(s) for s in sizes]
    assert meta["case_spacing"] == [list(s) for s in spacings]
    stored = load_array(tmp_path / "raw/images.npy")
    stored_masks = load_array(tmp_path / "raw/targets.npy")
    for i, size in enumerate(sizes):
        corner = tuple(slice(0, n) for n in size)
        np.testing.assert_array_equal(stored[i, 0][corner], images[i])  # no resampling
        np.testing.assert_array_equal(stored_masks[i][corner], masks[i])
        assert stored[i, 0].sum() == pytest.approx(images[i].sum(), rel=1e-5)  # zero padding
        assert stored_masks[i].sum() == masks[i].sum()


def test_cases_are_resampled_to_a_target_spacing(tmp_path):
    coarse = np.zeros((8, 8, 4), np.float32)
    coarse[2:6, 2:6, 1:3] = 1.0
    fine = np.zeros((16, 16, 8), np.float32)
    fine[4:12, 4:12, 2:6] = 1.0
    rows = [
        write_case(tmp_path, "coarse", coarse, coarse.astype(np.uint8), (2.0, 2.0, 4.0)),
        write_case(tmp_path, "fine", fine, fine.astype(np.uint8), (1.0, 1.0, 2.0)),
    ]
    meta = convert_folder(
        manifest(tmp_path, rows),
        "segmentation",
        ["bg", "fg"],
        None,
        tmp_path / "raw",
        spacing=[1.0, 1.0, 2.0],
    )
    # Same physical extent (16 × 16 × 16 mm): both cases become 16 × 16 × 8 at 1 × 1 × 2 mm.
    assert meta["spatial_shape"] == [16, 16, 8] and "case_sizes" not in meta
    assert meta["case_spacing"] == [[1.0, 1.0, 2.0]] * 2
    masks = load_array(tmp_path / "raw/targets.npy")
    assert masks[0].sum() == masks[1].sum() == fine.sum()  # the same cube, in physical units
    with pytest.raises(ValueError, match=r"spacing \[1.0, 1.0\] needs one value per axis"):
        convert_folder(
            manifest(tmp_path, rows),
            "segmentation",
            ["bg", "fg"],
            None,
            tmp_path / "r2",
            spacing=[1.0, 1.0],
        )
    with pytest.raises(ValueError, match=r"either shape .* or spacing, not both"):
        convert_folder(
            manifest(tmp_path, rows),
            "segmentation",
            ["bg", "fg"],
            [8, 8, 8],
            tmp_path / "r3",
            spacing=[1.0, 1.0, 2.0],
        )


def test_a_fixed_shape_scales_the_spacing_and_dicom_spacing_is_read(tmp_path):
    rows = [{"path": str(NIB_DATA / "anatomical.nii"), "label": "a"}]
    meta = convert_folder(
        manifest(tmp_path, rows), "multiclass", ["a"], [11, 41, 50], tmp_path / "r"
    )
    assert meta["case_spacing"] == [[6.0, 2.0, 1.0]]  # 2 mm × 33/11, × 41/41, × 25/50
    dicom = [{"path": str(NIB_DATA / "0.dcm"), "target": "1.5"}]
    meta = convert_folder(manifest(tmp_path, dicom), "regression", ["y"], None, tmp_path / "d")
    assert meta["case_spacing"] == [[1.796875, 1.796875]]  # from the DICOM header


def test_regions_are_named_by_class_and_checked(tmp_path):
    mask = np.zeros((6, 6, 6), np.uint8)
    mask[1:4, 1:4, 1:4] = 2
    rows = [write_case(tmp_path, "c0", mask.astype(np.float32), mask, (1, 1, 1))]
    classes = ["background", "edema", "core"]
    meta = convert_folder(
        manifest(tmp_path, rows),
        "segmentation",
        classes,
        None,
        tmp_path / "raw",
        regions={"tumour": ["edema", "core"], "core_only": [2]},
    )
    assert meta["regions"] == {"tumour": [1, 2], "core_only": [2]}
    with pytest.raises(ValueError, match=r"region 'x' names 'necrosis', not a foreground class"):
        convert_folder(
            manifest(tmp_path, rows),
            "segmentation",
            classes,
            None,
            tmp_path / "r2",
            regions={"x": ["necrosis"]},
        )
    with pytest.raises(ValueError, match=r"region 'bg' names 'background', not a foreground"):
        convert_folder(
            manifest(tmp_path, rows),
            "segmentation",
            classes,
            None,
            tmp_path / "r3",
            regions={"bg": ["background"]},
        )


def test_a_mask_label_beyond_the_classes_names_the_mask_and_leaves_nothing(tmp_path):
    good = np.zeros((6, 6, 6), np.uint8)
    bad = good.copy()
    bad[2, 2, 2] = 3
    rows = [
        write_case(tmp_path, "c0", good.astype(np.float32), good, (1, 1, 1)),
        write_case(tmp_path, "c1", bad.astype(np.float32), bad, (1, 1, 1)),
    ]
    with pytest.raises(
        ValueError,
        match=r"mask .*c1_mask\.nii\.gz \(manifest row 3\) holds "
        r"label 3, but classes are \['bg', 'fg'\]",
    ):
        convert_folder(
            manifest(tmp_path, rows), "segmentation", ["bg", "fg"], None, tmp_path / "raw"
        )
    assert not list((tmp_path / "raw").glob("*"))  # no images.npy or targets.npy left behind
