"""Medical Segmentation Decathlon Task01_BrainTumour (BraTS 2016/17, 4 MRI channels).

Simpson et al., "A large annotated medical image dataset for the development and evaluation of
segmentation algorithms", 2019. The decathlon's labels are 1/2/3 (not BraTS 2018's 1/2/4); their
names come from the archive's own ``dataset.json``; named regions are built from those names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .folder import convert_folder


def regions(labels: dict[str, str]) -> dict[str, list[int]]:
    """BraTS evaluation regions from decathlon label names: whole tumour (every non-background
    label), tumour core (all but edema) and enhancing tumour."""
    ids = {name.lower(): int(k) for k, name in labels.items()}
    tumour = sorted(i for n, i in ids.items() if n != "background")
    edema = [i for n, i in ids.items() if "edema" in n]
    enhancing = [i for n, i in ids.items() if n.startswith("enhancing")]
    return {
        "whole_tumour": tumour,
        "tumour_core": [i for i in tumour if i not in edema],
        "enhancing_tumour": enhancing,
    }


def msd_manifest(task_dir: str | Path, manifest: str | Path) -> tuple[list[str], dict]:
    """Write ``manifest`` (TSV, absolute paths) for the decathlon task in ``task_dir`` from its
    ``dataset.json``; returns the class names (label 0, 1, 2, …) and the named regions."""
    task_dir = Path(task_dir).resolve()
    info = json.loads((task_dir / "dataset.json").read_text())
    labels = info["labels"]
    classes = [labels[str(i)].replace(" ", "_") for i in range(len(labels))]
    rows = [
        {
            "path": str(task_dir / entry["image"]),
            "mask": str(task_dir / entry["label"]),
            "patient_id": Path(entry["image"]).name.split(".")[0],
        }
        for entry in info["training"]
    ]
    Path(manifest).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(manifest, sep="\t", index=False)
    return classes, regions(labels)


def convert_msd(
    task_dir: str | Path,
    shape: list[int] | None,
    folder: str | Path,
    spacing: list[float] | None = None,
) -> dict:
    """Extracted Task01 → raw dataset (4 channels): volumes resampled to ``shape``, to the
    voxel ``spacing``, or (neither) kept at native resolution with each case's spacing from
    its NIfTI header; the BraTS regions from the labels of ``dataset.json``."""
    manifest = Path(folder) / "manifest.tsv"
    classes, named = msd_manifest(task_dir, manifest)
    return convert_folder(
        manifest,
        "segmentation",
        classes,
        shape,
        folder,
        "msd_brats",
        spacing=spacing,
        regions=named,
    )
