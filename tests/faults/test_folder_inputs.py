"""Fault injection, folder sources: images and manifests that once gave a wrong dataset without
an error are converted exactly or refused, naming the file, the row and what was expected."""

import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from medimbalance.data.folder import convert_folder
from medimbalance.data.io import load_array
from medimbalance.data.sources import raw_plan

CLASSES = ["normal", "tumour"]


def png(path, array):
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path.name


def flat(value, dtype=np.uint8, size=(8, 10)):
    return np.full(size, value, dtype)


def write_manifest(folder, rows, text=None, name="manifest.csv"):
    path = folder / name
    if text is not None:
        path.write_bytes(text)
    else:
        pd.DataFrame(rows).to_csv(path, index=False)
    return path


def convert(folder, rows=None, shape=None, text=None):
    path = write_manifest(folder, rows, text)
    return convert_folder(path, "binary", CLASSES, shape, folder / "raw")


def rows_of(folder, images, suffix=".png", **columns):
    names = [png(folder / f"im{i}{suffix}", a) for i, a in enumerate(images)]
    return [
        {"path": n, "label": CLASSES[i % 2], **{k: v[i] for k, v in columns.items()}}
        for i, n in enumerate(names)
    ]


def nothing_written(folder):
    return not (folder / "raw").exists() or not any((folder / "raw").iterdir())


def test_a_16_bit_png_after_8_bit_ones_keeps_its_values(tmp_path):
    wide = (np.arange(80, dtype=np.uint16).reshape(8, 10) * 800).astype(np.uint16)  # to 63,200
    convert(tmp_path, rows_of(tmp_path, [flat(10), flat(200), wide, flat(30)]))
    images = load_array(tmp_path / "raw" / "images.npy")
    assert images.dtype == np.float32  # the common type holding both exactly
    assert np.array_equal(images[2, 0], wide.astype(np.float32))
    assert images[1].min() == images[1].max() == 200 and images[3].max() == 30


def test_only_8_bit_images_stay_uint8(tmp_path):
    convert(tmp_path, rows_of(tmp_path, [flat(10), flat(250)]))
    images = load_array(tmp_path / "raw" / "images.npy")
    assert images.dtype == np.uint8 and images[1].max() == 250


def test_mixed_image_sizes_are_refused_naming_the_image_and_the_shape_key(tmp_path):
    rows = rows_of(tmp_path, [flat(1), flat(2), flat(3, size=(12, 10))])
    with pytest.raises(ValueError) as raised:
        convert(tmp_path, rows)
    message = str(raised.value)
    assert "im2.png (manifest row 4) has size (12, 10), but" in message
    assert "im0.png has (8, 10)" in message and "set the dataset's shape key" in message
    assert nothing_written(tmp_path)
    convert(tmp_path, rows, shape=[8, 10])  # with shape set, every image is resampled
    assert load_array(tmp_path / "raw" / "images.npy").shape == (3, 1, 8, 10)


def test_nan_or_infinite_pixels_are_refused_naming_the_file(tmp_path):
    bad = flat(0.5, np.float32)
    bad[3, 4] = np.nan
    rows = rows_of(tmp_path, [flat(0.1, np.float32), bad], suffix=".tif")
    with pytest.raises(ValueError, match=r"im1.tif \(manifest row 3\) holds NaN or infinite"):
        convert(tmp_path, rows)
    assert nothing_written(tmp_path)


def test_values_float32_cannot_hold_are_refused_naming_both_dtypes(tmp_path):
    big = flat(2**24 + 1, np.int32)  # the next integer float32 cannot represent
    with pytest.raises(ValueError, match=r"im1.tif .* int32 pixels that float32 cannot hold"):
        convert(tmp_path, rows_of(tmp_path, [flat(1, np.int32), big], suffix=".tif"))


@pytest.mark.parametrize(
    "case, text, message",
    [
        (
            "not UTF-8",
            "path,label\nim0.png,normal\nim1.png,tum\xe9our\n".encode("latin-1"),
            r"not UTF-8 text \(byte 37, line 3\); save the manifest as UTF-8",
        ),
        ("empty file", b"", r"the manifest is empty; expected a header and one row per image"),
        ("header only", b"path,label\n", r"the manifest has a header but no rows"),
    ],
)
def test_unreadable_or_empty_manifests_are_refused(tmp_path, case, text, message):
    with pytest.raises(ValueError, match=message):
        convert(tmp_path, text=text)
    assert nothing_written(tmp_path)


def test_a_single_patient_for_every_row_is_refused(tmp_path):
    rows = rows_of(tmp_path, [flat(i) for i in range(6)], patient_id=["p1"] * 6)
    with pytest.raises(
        ValueError, match=r"names 1 patient\(s\) \('p1'\) for 6 rows; .* at least 3"
    ):
        convert(tmp_path, rows)


def test_a_split_column_without_test_rows_is_refused(tmp_path):
    rows = rows_of(tmp_path, [flat(i) for i in range(6)], split=["train"] * 6)
    with pytest.raises(ValueError, match=r"assigns no row to test \(train: 6\); .* 0 test images"):
        convert(tmp_path, rows)


def test_a_split_column_with_some_rows_empty_names_the_first(tmp_path):
    rows = rows_of(tmp_path, [flat(i) for i in range(4)], split=["train", "test", "", "val"])
    with pytest.raises(ValueError, match=r"row 4 has no split, but other rows do"):
        convert(tmp_path, rows)


def plan_folder(manifest_path, **options):
    dataset = {"source": "folder", "manifest": str(manifest_path), "task": "binary"}
    return raw_plan({**dataset, "classes": CLASSES, **options}, "binary").folder


def test_a_replaced_image_renames_the_converted_source(tmp_path):
    path = write_manifest(tmp_path, rows_of(tmp_path, [flat(1), flat(2)]))
    before = plan_folder(path)
    assert plan_folder(path) == before  # nothing changed: the same raw dataset
    png(tmp_path / "im1.png", flat(3, size=(9, 10)))  # replaced by another image
    assert plan_folder(path) != before


def test_content_identity_sees_a_copy_with_its_old_size_and_time(tmp_path):
    path = write_manifest(tmp_path, rows_of(tmp_path, [flat(1), flat(2)], suffix=".tif"))
    image = tmp_path / "im1.tif"  # uncompressed: other pixels, the same number of bytes
    stat = image.stat()
    by_stat, by_content = plan_folder(path), plan_folder(path, file_identity="content")
    png(image, flat(7))  # same size in bytes, other pixels
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` leaves it
    assert image.stat().st_size == stat.st_size
    assert plan_folder(path) == by_stat  # size and time cannot tell
    assert plan_folder(path, file_identity="content") != by_content
