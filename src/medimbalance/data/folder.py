"""Folder source: a manifest (CSV or TSV) over image files → the raw-dataset layout.

Manifest columns: ``path`` (required, relative to the manifest's folder or absolute); the target
in exactly one of ``label`` (class name or index), ``labels`` (class names joined by ``|``),
``target`` (a number) or ``mask`` (path of a label image); optional ``split`` (train/val/test)
and ``patient_id``. Images: PNG, JPEG, TIFF and DICOM through SimpleITK; NIfTI through nibabel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_memmap
from .raw import SPLIT_CODES, write_raw

TARGET_COLUMNS = {
    "label": "multiclass",
    "labels": "multilabel",
    "target": "regression",
    "mask": "segmentation",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz", ".dcm")


def read_manifest(path: str | Path, task: str) -> pd.DataFrame:
    """Read and check a manifest; paths become absolute. Errors name the file, row and column."""
    path = Path(path)
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    column = {"binary": "label", "multiclass": "label"}.get(task) or next(
        (c for c, t in TARGET_COLUMNS.items() if t == task), None
    )
    for needed in ("path", column):
        if needed not in table.columns:
            raise ValueError(
                f"{path}: missing manifest column {needed!r} (task {task}); columns found: "
                f"{list(table.columns)}"
            )
    base = path.parent
    table["path"] = [str((base / p).resolve()) for p in table["path"]]
    if task == "segmentation":
        table["mask"] = [str((base / p).resolve()) for p in table["mask"]]
    duplicated = table["path"][table["path"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: image listed more than once: {duplicated.iloc[0]}")
    if "split" in table.columns:
        bad = table.loc[~table["split"].isin([*SPLIT_CODES, ""]), "split"]
        if len(bad):
            raise ValueError(
                f"{path}: split must be train, val, test or empty, got {bad.iloc[0]!r} "
                f"(row {bad.index[0] + 2})"
            )
    table["target_value"] = table[column]
    return table


def read_image(path: str | Path) -> np.ndarray:
    """One image as ``(C, *spatial)``: 2D files ``(C, H, W)``, NIfTI volumes ``(C, X, Y, Z)``.

    ``ValueError`` names the file when it is missing, unreadable or corrupt.
    """
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            data = np.asarray(nib.load(path).dataobj)
            if data.ndim == 4:  # (X, Y, Z, C), channels last as in the decathlon
                data = np.moveaxis(data, -1, 0)
                return data[..., 0] if data.shape[-1] == 1 else data  # 2D slices: Z = 1
            if data.ndim == 3 and data.shape[2] == 1:  # a 2D slice stored as (X, Y, 1)
                return data[None, :, :, 0]
            return data[None]  # (1, X, Y) or (1, X, Y, Z)
        import SimpleITK as sitk

        image = sitk.ReadImage(str(path))
        data = sitk.GetArrayFromImage(image)  # (H, W), (H, W, C) or (Z, H, W)
        if image.GetNumberOfComponentsPerPixel() > 1:  # RGB(A): (H, W, C)
            return np.moveaxis(data, -1, 0)
        if data.ndim == 3 and data.shape[0] == 1:  # a single DICOM slice: (1, H, W)
            return data
        return data[None]  # (1, H, W) or a volume (1, Z, H, W)
    except Exception as error:  # the readers raise many kinds; the message must name the file
        raise ValueError(f"cannot read image {path}: {error}") from error


def resize(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """Resample ``(C, *spatial)`` to ``(C, *shape)``: linear for images, nearest for masks."""
    from scipy.ndimage import zoom

    if tuple(array.shape[1:]) == tuple(shape):
        return array
    factors = [1, *(t / s for t, s in zip(shape, array.shape[1:], strict=True))]
    return zoom(array, factors, order=order, grid_mode=True, mode="nearest")


def parse_targets(table: pd.DataFrame, task: str, classes: Sequence[str], where: str) -> np.ndarray:
    """Targets from the manifest's target column; an unknown class names the row and the list."""
    values = table["target_value"].tolist()
    index = {c: i for i, c in enumerate(classes)}

    def class_id(value: str, row: int) -> int:
        if value in index:
            return index[value]
        if value.isdigit() and int(value) < len(classes):
            return int(value)
        raise ValueError(
            f"{where}: row {row + 2} has label {value!r}, not one of the classes {list(classes)}"
        )

    if task in ("multiclass", "binary"):
        return np.array([class_id(v, r) for r, v in enumerate(values)], np.int64)
    if task == "multilabel":
        out = np.zeros((len(values), len(classes)), np.uint8)
        for r, v in enumerate(values):
            for name in filter(None, v.split("|")):
                out[r, class_id(name, r)] = 1
        return out
    try:
        return np.array([float(v) for v in values], np.float32)
    except ValueError as error:
        raise ValueError(f"{where}: target column must be numeric: {error}") from None


def convert_folder(
    manifest: str | Path,
    task: str,
    classes: Sequence[str],
    shape: Sequence[int] | None,
    folder: str | Path,
    source: str = "folder",
    extra_meta: dict | None = None,
) -> dict:
    """Read every image (and mask) of a manifest, resample to ``shape``, write a raw dataset."""
    table = read_manifest(manifest, task)
    # Labels are checked before any image is read or written: a bad row fails fast.
    targets = None if task == "segmentation" else parse_targets(table, task, classes, str(manifest))
    first = read_image(table["path"].iloc[0])
    shape = tuple(shape) if shape else tuple(first.shape[1:])
    dtype = np.uint8 if first.dtype == np.uint8 else np.float32
    folder = Path(folder)
    masks = np.zeros((len(table), *shape), np.uint8) if task == "segmentation" else None
    with atomic_memmap(folder / "images.npy", dtype, (len(table), first.shape[0], *shape)) as out:
        for i, path in enumerate(table["path"]):
            image = first if i == 0 else read_image(path)
            if image.shape[0] != first.shape[0] or image.ndim != first.ndim:
                raise ValueError(
                    f"{path} has shape {image.shape}, but {table['path'].iloc[0]} has "
                    f"{first.shape}: every image needs the same channels and dimensions"
                )
            if masks is not None:
                mask = read_image(table["mask"].iloc[i])
                if mask.shape[1:] != image.shape[1:]:
                    raise ValueError(
                        f"mask {table['mask'].iloc[i]} has shape {mask.shape[1:]}, but image "
                        f"{path} has {image.shape[1:]}"
                    )
                masks[i] = resize(mask[:1], shape, order=0)[0].astype(np.uint8)
            out[i] = resize(image.astype(np.float32), shape, order=1).astype(dtype)
    if masks is not None:
        found = int(masks.max())
        if found >= len(classes):
            raise ValueError(
                f"{manifest}: masks hold label {found}, but classes are {list(classes)}"
            )
        targets = masks
    split = table["split"].map({**SPLIT_CODES, "": -1}) if "split" in table.columns else None
    groups, patients = None, None
    if "patient_id" in table.columns:
        groups, patients = pd.factorize(table["patient_id"])
    meta = {
        "source": source,
        "task": task,
        "classes": list(classes),
        "channels": int(first.shape[0]),
        "spatial_shape": [int(s) for s in shape],
        "manifest": str(manifest),
        "official_split": split is not None and bool((split >= 0).any()),
        "patients": None if patients is None else [str(p) for p in patients],
        **(extra_meta or {}),
    }
    write_raw(
        folder, targets, meta, split=None if split is None else split.to_numpy(), groups=groups
    )
    return meta
