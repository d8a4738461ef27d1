"""Folder source: a manifest (CSV or TSV) over image files → the raw-dataset layout.

Manifest columns: ``path`` (required, relative to the manifest's folder or absolute); the target
in exactly one of ``label`` (class name or index), ``labels`` (class names joined by ``|``),
``target`` (a number) or ``mask`` (path of a label image); optional ``split`` (train/val/test)
and ``patient_id``. Images: PNG, JPEG, TIFF and DICOM through SimpleITK; NIfTI through nibabel.

Conversion refuses, naming the file (and the manifest row where one applies), what would give a
wrong dataset without an error: a manifest that is not UTF-8 or has no rows, a split column that
leaves no test images or only some rows assigned, fewer than three patients to split by, images
with NaN or infinite values, images whose sizes differ when no ``shape`` is set, and values that
the common pixel type cannot hold exactly. Images are stored as uint8 when every image is
8-bit, else as float32 (16-bit PNGs after 8-bit ones keep their values).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .io import atomic_memmap
from .raw import SPLIT_CODES, write_raw
from .sources import manifest_delimiter

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
    sep = manifest_delimiter(path)
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError:
        raw = path.read_bytes()
        try:  # where in the file (pandas reports the position in its own chunk)
            raw.decode("utf-8")
            start = 0
        except UnicodeDecodeError as error:
            start = error.start
        line = raw[:start].count(b"\n") + 1
        raise ValueError(
            f"{path}: not UTF-8 text (byte {start}, line {line}); "
            "save the manifest as UTF-8 (e.g. 'iconv -f latin1 -t utf-8')"
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path}: the manifest is empty; expected a header and one row per image"
        ) from None
    if table.empty:
        raise ValueError(f"{path}: the manifest has a header but no rows; expected one per image")
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
    if "split" in table.columns:
        check_split_column(table["split"], path)
    if "patient_id" in table.columns:
        check_patients(table, path)
    table["target_value"] = table[column]
    return table


def check_split_column(split: pd.Series, where: Path) -> None:
    """A split column assigns every row or none, and leaves test images."""
    assigned = split != ""
    if assigned.any() and not assigned.all():
        row = int(np.flatnonzero(~assigned.to_numpy())[0]) + 2
        raise ValueError(
            f"{where}: row {row} has no split, but other rows do; give every row train, val or "
            "test, or leave the whole column empty for a seeded split"
        )
    if assigned.all() and not (split == "test").any():
        counts = ", ".join(f"{k}: {v}" for k, v in split.value_counts().items())
        raise ValueError(
            f"{where}: the split column assigns no row to test ({counts}); a model would be "
            "scored on 0 test images. Mark some rows test, or leave the column empty"
        )


def check_patients(table: pd.DataFrame, where: Path) -> None:
    """A seeded split by patient needs at least one patient per split."""
    if "split" in table.columns and (table["split"] != "").all():
        return  # the official split decides; patients are only checked to stay apart
    patients = table["patient_id"].unique()
    if len(patients) < 3:
        raise ValueError(
            f"{where}: the patient_id column names {len(patients)} patient(s) "
            f"({', '.join(map(repr, patients[:3]))}) for {len(table)} rows; a split by patient "
            "needs at least 3 (train, val, test). Give each patient's id, or drop the column"
        )


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


def read_header(path: str | Path) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The spatial size and voxel spacing (mm per axis, in the axis order of
    :func:`read_image`) of an image file, from its header alone. NIfTI: the header's
    ``pixdim``; SimpleITK formats: the image's spacing (1 per axis where the format has none,
    as for PNG and JPEG). ``ValueError`` names an unreadable file."""
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            header = nib.load(path).header
            dims, zooms = header.get_data_shape(), header.get_zooms()
            if len(dims) == 4:  # (X, Y, Z, C): a 2D slice when Z = 1
                dims, zooms = (dims[:2], zooms[:2]) if dims[2] == 1 else (dims[:3], zooms[:3])
            elif len(dims) == 3 and dims[2] == 1:
                dims, zooms = dims[:2], zooms[:2]
            # float32 in the header: kept to its 7 significant digits (0.8, not 0.800000011)
            return tuple(int(d) for d in dims), tuple(float(f"{z:.7g}") for z in zooms[: len(dims)])
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        size, spacing = reader.GetSize(), reader.GetSpacing()  # (x, y[, z]): reversed below
        if len(size) == 3 and size[2] == 1:  # a single slice
            size, spacing = size[:2], spacing[:2]
        return tuple(int(d) for d in size[::-1]), tuple(float(z) for z in spacing[::-1])
    except Exception as error:  # the readers raise many kinds; the message must name the file
        raise ValueError(f"cannot read image {path}: {error}") from error


def target_size(
    size: Sequence[int], spacing: Sequence[float], target: Sequence[float] | None
) -> tuple[int, ...]:
    """The size of an image of ``size`` voxels at ``spacing`` once resampled to the ``target``
    spacing (nnU-Net's habit: the same physical extent, rounded to whole voxels)."""
    if target is None:
        return tuple(size)
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(size, spacing, target, strict=True))


def resize(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """Resample ``(C, *spatial)`` to ``(C, *shape)``: linear for images, nearest for masks."""
    from scipy.ndimage import zoom

    if tuple(array.shape[1:]) == tuple(shape):
        return array
    factors = [1, *(t / s for t, s in zip(shape, array.shape[1:], strict=True))]
    return zoom(array, factors, order=order, grid_mode=True, mode="nearest")


class _WiderPixels(Exception):
    """An image does not fit the 8-bit pixels chosen from the images before it."""


def _pad_into(out: np.ndarray, array: np.ndarray) -> None:
    """Write ``array`` into the low corner of ``out`` (same leading axes), zeros beyond it."""
    out[...] = 0
    out[tuple(slice(0, n) for n in array.shape)] = array


def _write_images(table, task, classes, first, sizes, out_shape, resampled, dtype, folder):
    """Write ``images.npy`` (``dtype`` pixels, every image resampled to its entry of ``sizes``
    and padded at the high end to ``out_shape``) and, for a segmentation manifest,
    ``targets.npy`` (the masks, nearest-neighbour), both case by case through memory maps;
    raises ``_WiderPixels`` when an image is not 8-bit and ``dtype`` is uint8."""
    first_path = table["path"].iloc[0]
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(
            atomic_memmap(folder / "images.npy", dtype, (len(table), first.shape[0], *out_shape))
        )
        masks = None
        if task == "segmentation":
            masks = stack.enter_context(
                atomic_memmap(folder / "targets.npy", np.uint8, (len(table), *out_shape))
            )
        for i, path in enumerate(table["path"]):
            image = first if i == 0 else read_image(path)
            where = f"{path} (manifest row {i + 2})"
            if image.shape[0] != first.shape[0] or image.ndim != first.ndim:
                raise ValueError(
                    f"{where} has shape {image.shape}, but {first_path} has "
                    f"{first.shape}: every image needs the same channels and dimensions"
                )
            if dtype == np.uint8 and image.dtype != np.uint8:
                raise _WiderPixels
            _check_pixels(image, where, first_path, first.dtype)
            size = sizes[i]
            if masks is not None:
                mask_path = table["mask"].iloc[i]
                mask = read_image(mask_path)
                if mask.shape[1:] != image.shape[1:]:
                    raise ValueError(
                        f"mask {mask_path} has shape {mask.shape[1:]}, but image "
                        f"{path} has {image.shape[1:]}"
                    )
                if mask.size and int(mask.max()) >= len(classes):
                    raise ValueError(
                        f"mask {mask_path} (manifest row {i + 2}) holds label "
                        f"{int(mask.max())}, but classes are {list(classes)}"
                    )
                _pad_into(masks[i], resize(mask[:1], size, order=0)[0].astype(np.uint8))
            if dtype == np.uint8 and not resampled:
                _pad_into(out[i], image)
            else:
                _pad_into(out[i], resize(image.astype(np.float32), size, order=1).astype(dtype))


def case_geometry(
    table: pd.DataFrame,
    task: str,
    shape: Sequence[int] | None,
    spacing: Sequence[float] | None,
) -> tuple[list[tuple[int, ...]], list[tuple[float, ...]]]:
    """Each image's size once resampled and its voxel spacing then, from the headers:
    ``shape`` resizes every image to that size (the spacing scales with it), ``spacing``
    resamples each to that spacing (its size follows its extent), neither keeps both. Sizes
    may differ only for segmentation (cases are padded, the masks say where they end);
    otherwise ``ValueError`` names the row and the ``shape`` key."""
    if shape is not None and spacing is not None:
        raise ValueError("give a dataset either shape (a fixed size) or spacing, not both")
    sizes, spacings = [], []
    for i, path in enumerate(table["path"]):
        size, native = read_header(path)
        if spacing is not None and len(spacing) != len(size):
            raise ValueError(
                f"spacing {list(spacing)} needs one value per axis of {path}'s size {list(size)}"
            )
        if shape is not None:
            if len(shape) != len(size):
                raise ValueError(
                    f"shape {list(shape)} needs one value per axis of {path}'s size {list(size)}"
                )
            sizes.append(tuple(int(n) for n in shape))
            spacings.append(tuple(s * n / m for s, n, m in zip(native, size, shape, strict=True)))
        else:
            sizes.append(target_size(size, native, spacing))
            spacings.append(tuple(float(x) for x in spacing) if spacing else native)
        if task != "segmentation" and sizes[i] != sizes[0]:
            first = table["path"].iloc[0]
            raise ValueError(
                f"{path} (manifest row {i + 2}) has size {sizes[i]}, but {first} has "
                f"{sizes[0]}: set the dataset's shape key (e.g. shape: {list(sizes[0])}) to "
                "resample every image to one size"
            )
    return sizes, spacings


def _check_pixels(image: np.ndarray, where: str, first_path: str, first_dtype) -> None:
    """Pixels must be finite and held exactly by float32 (the common type of mixed images)."""
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        bad = np.argwhere(~np.isfinite(image))[0]
        raise ValueError(
            f"{where} holds NaN or infinite values (first at index {tuple(int(b) for b in bad)});"
            " expected finite pixel values"
        )
    if image.dtype not in (np.uint8, np.float32) and not np.array_equal(
        image.astype(np.float32).astype(np.float64), image.astype(np.float64)
    ):
        raise ValueError(
            f"{where} has {image.dtype} pixels that float32 cannot hold exactly ({first_path} "
            f"is {np.dtype(first_dtype)}); convert the images to at most 16-bit integers or "
            "float32"
        )


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
    spacing: Sequence[float] | None = None,
    regions: dict[str, Sequence] | None = None,
) -> dict:
    """Read every image (and mask) of a manifest, resample it to ``shape`` or to the voxel
    ``spacing`` (or neither), write a raw dataset. Segmentation cases of different sizes are
    stored padded at the high end to the largest (zeros; ``meta["case_sizes"]`` says where
    each ends); ``meta["case_spacing"]`` holds every case's spacing (mm per axis).
    ``regions`` (name → labels, by name or index) are the unions of labels scored beside them
    (BraTS's whole tumour, tumour core, enhancing tumour)."""
    table = read_manifest(manifest, task)
    # Labels are checked before any image is read or written: a bad row fails fast.
    targets = None if task == "segmentation" else parse_targets(table, task, classes, str(manifest))
    named = None if regions is None else region_labels(regions, classes, str(manifest))
    first = read_image(table["path"].iloc[0])
    sizes, spacings = case_geometry(table, task, shape or None, spacing)
    resampled = bool(shape) or spacing is not None
    out_shape = tuple(int(n) for n in np.max(sizes, axis=0))
    folder = Path(folder)
    try:
        _write_images(table, task, classes, first, sizes, out_shape, resampled, np.uint8, folder)
    except _WiderPixels:  # an image after 8-bit ones holds more: start again in float32
        _write_images(table, task, classes, first, sizes, out_shape, resampled, np.float32, folder)
    split = table["split"].map({**SPLIT_CODES, "": -1}) if "split" in table.columns else None
    groups, patients = None, None
    if "patient_id" in table.columns:
        groups, patients = pd.factorize(table["patient_id"])
    meta = {
        "source": source,
        "task": task,
        "classes": list(classes),
        "channels": int(first.shape[0]),
        "spatial_shape": list(out_shape),
        "case_spacing": [list(x) for x in spacings],
        **({"case_sizes": [list(x) for x in sizes]} if len(set(sizes)) > 1 else {}),
        **({"regions": named} if named is not None else {}),
        "manifest": str(manifest),
        "official_split": split is not None and bool((split >= 0).any()),
        "patients": None if patients is None else [str(p) for p in patients],
        **(extra_meta or {}),
    }
    write_raw(
        folder,
        targets,  # None for segmentation: targets.npy holds the masks already
        meta,
        split=None if split is None else split.to_numpy(),
        groups=groups,
        n=len(table),
    )
    return meta


def region_labels(regions: dict, classes: Sequence[str], where: str) -> dict[str, list[int]]:
    """Named regions as label indices: each entry lists class names or indices of foreground
    classes; ``ValueError`` names the region and the unknown label."""
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for name, labels in regions.items():
        if not isinstance(labels, list | tuple) or not labels:
            raise ValueError(f"{where}: region {name!r} must list labels, got {labels!r}")
        ids = []
        for label in labels:
            i = index.get(label, label)
            if not isinstance(i, int) or isinstance(i, bool) or not 0 < i < len(classes):
                raise ValueError(
                    f"{where}: region {name!r} names {label!r}, not a foreground class of "
                    f"{list(classes)}"
                )
            ids.append(i)
        out[str(name)] = sorted(set(ids))
    return out
