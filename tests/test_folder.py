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
