"""Writers of the synthetic sources (``GENERATORS`` in :mod:`.sources`): each generates a seeded
dataset from its parameters (the config's ``generator`` mapping) into a folder.

Graded lesions, findings and std regression are written in the raw layout
(:mod:`.raw`); the tumours as NIfTI image/mask pairs with a manifest, as a folder of real
scans would be, which the folder converter then reads like any other.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import synthetic
from .io import save_array
from .raw import write_raw

log = logging.getLogger(__name__)


def _write(folder, name, spec, images, targets, task, classes, split=None) -> dict:
    """Save generated images and targets as a raw dataset; returns its metadata."""
    folder = Path(folder)
    log.info("generated %d images %s for %s", len(images), images.shape[1:], spec)
    save_array(folder / "images.npy", images)
    meta = {
        "source": f"synthetic_{name}",
        "task": task,
        "classes": list(classes),
        "channels": int(images.shape[1]),
        "spatial_shape": list(images.shape[2:]),
        "official_split": split is not None,
        "generator": spec,
    }
    write_raw(folder, targets, meta, split=split)
    return meta


def write_graded_lesions(parameters: dict, folder: str | Path) -> dict:
    """Graded lesions (5 ordered grades by default), multi-class."""
    spec = synthetic.GradedLesionsSpec(**parameters)
    images, targets = synthetic.make_graded_lesions(spec)
    return _write(
        folder, "graded_lesions", parameters, images, targets, "multiclass", spec.class_names
    )


def write_findings(parameters: dict, folder: str | Path) -> dict:
    """Findings with chest-X-ray-like prevalences, multi-label."""
    spec = synthetic.FindingsSpec(**parameters)
    images, targets = synthetic.make_findings(spec)
    return _write(folder, "findings", parameters, images, targets, "multilabel", spec.class_names)


def write_std_regression(parameters: dict, folder: str | Path) -> dict:
    """Images whose target is the standard deviation of their pixels, with the generator's own
    train/val/test split."""
    spec = synthetic.StdRegressionSpec(**parameters)
    images, targets, split = synthetic.make_std_regression(spec)
    return _write(
        folder, "std_regression", parameters, images, targets, "regression", ["std"], split
    )


def write_tumours(parameters: dict, folder: str | Path) -> None:
    """Tumour volumes or slices as NIfTI image/mask pairs under ``cases/`` and ``manifest.tsv``
    (the folder source's format): channels last, as in the decathlon's 4D files; 2D slices as
    ``(X, Y, 1, C)``."""
    import nibabel as nib
    import pandas as pd

    spec = synthetic.TumoursSpec(**parameters)
    images, masks = synthetic.make_tumours(spec)
    folder = Path(folder)
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    spacing = spec.spacing or (1.0,) * len(spec.shape)
    affine = np.diag([*spacing, *(1.0,) * (4 - len(spacing))])
    # Cases of different sizes (real scans rarely share one): background added at the high end.
    extra = np.random.default_rng([spec.seed, 1]).integers(
        0, spec.size_jitter + 1, (len(images), len(spec.shape))
    )
    rows = []
    for i, (image, mask) in enumerate(zip(images, masks, strict=True)):
        case = f"case_{i:04d}"
        pads = [(0, int(e)) for e in extra[i]]
        image, mask = np.pad(image, [(0, 0), *pads]), np.pad(mask, pads)
        if image.ndim == 4:
            volume = np.moveaxis(image, 0, -1)
        else:
            volume = image.transpose(1, 2, 0)[:, :, None]
        path, mask_path = f"cases/{case}.nii.gz", f"cases/{case}_mask.nii.gz"
        nib.save(nib.Nifti1Image(volume, affine), folder / path)
        nib.save(nib.Nifti1Image(mask, affine), folder / mask_path)
        rows.append({"path": path, "mask": mask_path, "patient_id": case})
    pd.DataFrame(rows).to_csv(folder / "manifest.tsv", sep="\t", index=False)
    log.info(
        "wrote %d cases; tumour voxel fraction %.4f; regions %s",
        len(rows),
        float((masks > 0).mean()),
        synthetic.TUMOUR_REGIONS,
    )
