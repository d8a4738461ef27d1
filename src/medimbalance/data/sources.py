"""Where each dataset source comes from: task, download address and checksum.

Imports only the standard library and PyYAML, so the workflow itself (``common.smk``) can use it
in any Snakemake environment to name download targets before any job runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..tasks import CLASS_TASKS, TASKS

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")

# Source name -> task; None means the task comes from the dataset's config or catalogue entry.
SOURCE_TASKS: dict[str, str | None] = {
    "synthetic_graded_lesions": "multiclass",
    "synthetic_findings": "multilabel",
    "synthetic_tumours": "segmentation",
    "synthetic_std_regression": "regression",
    "medmnist": None,
    "cifar10": "multiclass",
    "cifar100": "multiclass",
    "msd_brats": "segmentation",
    "folder": None,
}
# Which tasks each imbalance-profile family applies to (checked before any job runs).
PROFILE_TASKS = {
    "natural": TASKS,
    "exponential": CLASS_TASKS,
    "step": CLASS_TASKS,
    "minority_fraction": CLASS_TASKS,
    "fraction": TASKS,
    "target_distribution": ("regression",),
}
# The files of a raw dataset (see medimbalance.data.raw), named here so the workflow can list them.
RAW_FILES = ("images.npy", "targets.npy", "split.npy", "groups.npy", "meta.json")


@dataclass(frozen=True)
class Download:
    """A file to fetch: local path (under ``resources/``), address and MD5."""

    path: str
    url: str
    md5: str


@functools.cache
def catalogue() -> dict:
    """The parsed ``catalogue.yaml`` (MedMNIST, CIFAR and MSD facts)."""
    with open(CATALOGUE_PATH) as f:
        return yaml.safe_load(f)


def medmnist_entry(flag: str) -> dict:
    entries = catalogue()["medmnist"]
    if flag not in entries:
        raise ValueError(f"unknown MedMNIST flag {flag!r}; valid choices: {', '.join(entries)}")
    return entries[flag]


def task_of(dataset: dict) -> str:
    """The task of a dataset: multiclass, binary, multilabel, segmentation or regression."""
    source = dataset["source"]
    if source not in SOURCE_TASKS:
        raise ValueError(f"unknown source {source!r}; valid choices: {', '.join(SOURCE_TASKS)}")
    if SOURCE_TASKS[source] is not None:
        return SOURCE_TASKS[source]
    if source == "medmnist":
        return medmnist_entry(dataset["flag"])["task"]
    return dataset["task"]


def download_for(dataset: dict) -> Download | None:
    """The download a configured dataset needs, or ``None`` (synthetic and folder sources).

    ``url`` and ``md5`` in the dataset's config override the catalogue (mirrors, local copies).
    """
    source = dataset["source"]
    if source == "medmnist":
        files = medmnist_entry(dataset["flag"])["files"]
        size = int(dataset.get("size", 28))
        if size not in files:
            raise ValueError(f"MedMNIST size must be one of {sorted(files)}, got {size}")
        entry = files[size]
        url = catalogue()["medmnist_url"].format(file=entry["file"])
        found = Download(f"resources/medmnist/{entry['file']}", url, entry["md5"])
    elif source in ("cifar10", "cifar100"):
        entry = catalogue()["cifar"][source]
        found = Download(f"resources/cifar/{entry['file']}", entry["url"], entry["md5"])
    elif source == "msd_brats":
        entry = catalogue()["msd"]["Task01_BrainTumour"]
        found = Download(f"resources/msd/{entry['file']}", entry["url"], entry["md5"])
    else:
        return None
    return Download(found.path, dataset.get("url", found.url), dataset.get("md5", found.md5))
