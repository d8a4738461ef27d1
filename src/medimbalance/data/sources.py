"""Every dataset source, in one table: its task, download, raw-folder family, converter and the
config keys it passes on; and how the workflow gets a configured dataset's raw data.

Standard library and PyYAML only, so the workflow itself (``common.smk``) plans downloads,
generation and conversion before any job runs. Converters and generators are named by dotted
path (``module:function``) and imported only by the jobs that run them.

Adding a source: a converter that writes the raw layout (:func:`medimbalance.data.raw.write_raw`),
an entry in ``SOURCES`` (and, for a download, its address and MD5 in ``catalogue.yaml``), and its
name and required keys in the config schema (``tests/test_sources.py`` checks that they agree).
"""

from __future__ import annotations

import csv
import functools
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..identity import config_key, file_digest
from ..tasks import CLASS_TASKS, TASKS

CATALOGUE_PATH = Path(__file__).with_name("catalogue.yaml")
# The files of a raw dataset (see medimbalance.data.raw), named here so the workflow can list them.
RAW_FILES = ("images.npy", "targets.npy", "split.npy", "groups.npy", "meta.json")
# Which tasks each imbalance-profile family applies to (checked before any job runs).
PROFILE_TASKS = {
    "natural": TASKS,
    "exponential": CLASS_TASKS,
    "step": CLASS_TASKS,
    "minority_fraction": CLASS_TASKS,
    "fraction": TASKS,
    "target_distribution": ("regression",),
}


@dataclass(frozen=True)
class Generator:
    """A synthetic source made by the workflow from the dataset's ``generator`` parameters."""

    writer: str  # "module:function(parameters, folder)" that writes it
    output: str | None = None  # None: the raw layout itself; else the file a converter reads


@dataclass(frozen=True)
class Source:
    """Where a dataset's images come from and how they reach the raw layout."""

    family: str  # raw folders live in resources/<family>/<content key>
    task: str | None = None  # None: the dataset's `task` key, or the catalogue entry's
    task_entry: str | None = None  # catalogue path (formatted with dataset keys) holding the task
    generator: str | None = None  # a GENERATORS name: made by the workflow
    download: str | None = None  # catalogue path of the file to fetch (formatted with dataset keys)
    extract: bool = False  # the download is an archive; the converter reads its folder
    input_key: str | None = None  # the dataset key naming the converter's input (folder sources)
    converter: str | None = None  # "module:function(input, folder, **args)" writing the raw layout
    keys: tuple[str, ...] = ()  # dataset keys passed to the converter
    fixed: dict = field(default_factory=dict)  # constant converter arguments


GENERATORS: dict[str, Generator] = {
    "graded_lesions": Generator("medimbalance.data.generate:write_graded_lesions"),
    "findings": Generator("medimbalance.data.generate:write_findings"),
    "std_regression": Generator("medimbalance.data.generate:write_std_regression"),
    "tumours": Generator("medimbalance.data.generate:write_tumours", output="manifest.tsv"),
}
_FOLDER = "medimbalance.data.folder:convert_folder"
SOURCES: dict[str, Source] = {
    "synthetic_graded_lesions": Source(
        family="synthetic", task="multiclass", generator="graded_lesions"
    ),
    "synthetic_findings": Source(family="synthetic", task="multilabel", generator="findings"),
    "synthetic_tumours": Source(
        family="folder",
        task="segmentation",
        generator="tumours",
        converter=_FOLDER,
        fixed={
            "task": "segmentation",
            "classes": ["background", "edema", "non_enhancing", "enhancing"],
            "shape": None,
            "spacing": None,
            "regions": {
                "whole_tumour": ["edema", "non_enhancing", "enhancing"],
                "tumour_core": ["non_enhancing", "enhancing"],
                "enhancing_tumour": ["enhancing"],
            },
        },
    ),
    "synthetic_std_regression": Source(
        family="synthetic", task="regression", generator="std_regression"
    ),
    "medmnist": Source(
        family="medmnist",
        task_entry="medmnist/{flag}",
        download="medmnist/{flag}/files/{size}",
        converter="medimbalance.data.medmnist:convert_medmnist",
        keys=("flag", "size"),
    ),
    **{
        name: Source(
            family="cifar",
            task="multiclass",
            download=f"cifar/{name}",
            converter="medimbalance.data.cifar:convert_cifar",
            fixed={"which": name},
        )
        for name in ("cifar10", "cifar100")
    },
    "msd_brats": Source(
        family="msd",
        task="segmentation",
        download="msd/Task01_BrainTumour",
        extract=True,
        converter="medimbalance.data.msd:convert_msd",
        keys=("shape", "spacing"),
    ),
    "folder": Source(
        family="folder",
        input_key="manifest",
        converter=_FOLDER,
        keys=("task", "classes", "shape", "spacing", "regions"),
    ),
}


@dataclass(frozen=True)
class Download:
    """A file to fetch: local path (under ``resources/``), address and MD5."""

    path: str
    url: str
    md5: str


@dataclass(frozen=True)
class RawPlan:
    """How the workflow gets one dataset's raw folder: each step is ``None`` when not needed."""

    folder: str  # the raw dataset (RAW_FILES)
    generate: tuple[str, str, dict] | None = None  # (folder, generator, its parameters)
    download: Download | None = None
    extract: tuple[str, str] | None = None  # (archive, folder it is extracted to)
    convert: tuple[str, dict] | None = None  # (input path, spec: source, task, args[, url, md5])


@functools.cache
def catalogue() -> dict:
    """The parsed ``catalogue.yaml`` (MedMNIST, CIFAR and MSD facts)."""
    with open(CATALOGUE_PATH) as f:
        return yaml.safe_load(f)


def catalogue_entry(template: str, dataset: dict | None = None) -> dict:
    """The catalogue entry at ``template`` (``/``-separated keys, ``{key}`` filled from the
    dataset's config). Raises ``ValueError`` naming the dataset key whose value has no entry."""
    names = template.split("/")
    node, where = catalogue(), names[0]
    for name in names:
        try:
            key = name.format(**(dataset or {}))
        except KeyError as missing:
            raise ValueError(f"a {where} dataset needs the key {missing}") from None
        choices = {str(k): k for k in node}
        if key not in choices:
            label = name.strip("{}") if name.startswith("{") else "entry"
            raise ValueError(
                f"unknown {where} {label} {key!r}; valid choices: {', '.join(choices)}"
            )
        node = node[choices[key]]
    return node


def medmnist_entry(flag: str) -> dict:
    """The catalogue's facts about one MedMNIST dataset (task, classes, sizes, files)."""
    return catalogue_entry("medmnist/{flag}", {"flag": flag})


def task_of(dataset: dict) -> str:
    """The task of a dataset: multiclass, binary, multilabel, segmentation or regression."""
    source = source_of(dataset)
    if source.task is not None:
        return source.task
    if source.task_entry is not None:
        return catalogue_entry(source.task_entry, dataset)["task"]
    return dataset["task"]


def source_of(dataset: dict) -> Source:
    name = dataset["source"]
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; valid choices: {', '.join(SOURCES)}")
    return SOURCES[name]


def download_for(dataset: dict) -> Download | None:
    """The download a configured dataset needs, or ``None`` (synthetic and folder sources).

    ``url`` and ``md5`` in the dataset's config override the catalogue (mirrors, local copies).
    """
    source = source_of(dataset)
    if source.download is None:
        return None
    entry = catalogue_entry(source.download, dataset)
    top = source.download.split("/")[0]
    url = entry.get("url") or catalogue()[f"{top}_url"].format(file=entry["file"])
    return Download(
        f"resources/{source.family}/{entry['file']}",
        dataset.get("url", url),
        dataset.get("md5", entry["md5"]),
    )


def raw_plan(dataset: dict, task: str) -> RawPlan:
    """The steps that produce the raw folder of a configured dataset of ``task``. Folders are
    named by content: the same parameters (and inputs) give the same folder."""
    source = source_of(dataset)
    plan: dict = {}
    if source.generator is not None:
        folder = f"resources/synthetic/{source.generator}/{config_key(dataset['generator'])}"
        plan["generate"] = (folder, source.generator, dataset["generator"])
        output = GENERATORS[source.generator].output
        if output is None:
            return RawPlan(folder, **plan)
        source_path = f"{folder}/{output}"
    args = {key: dataset.get(key) for key in source.keys} | source.fixed
    spec = {"source": dataset["source"], "task": task, "args": args}
    download = download_for(dataset)
    if download is not None:
        plan["download"] = download
        spec["url"] = download.url
        source_path = download.path
        if source.extract:  # the archive is verified when extracted
            source_path = download.path.rsplit(".", 1)[0]
            plan["extract"] = (download.path, source_path)
        else:  # a file placed by hand is verified before conversion
            spec["md5"] = download.md5
    elif source.input_key is not None:
        source_path = dataset[source.input_key]
        # A replaced image (or mask) gives another key, hence a new conversion and new results.
        spec["files"] = listed_files_key(source_path, dataset.get("file_identity") == "content")
    # The input is part of the key: two manifests with the same options are two datasets.
    folder = f"resources/{source.family}/{config_key({**spec, 'input': source_path})}"
    return RawPlan(folder, **plan, convert=(source_path, spec))


def manifest_delimiter(path: str | os.PathLike) -> str:
    """The column separator of a folder manifest: tab for ``.tsv``/``.tab``, else comma."""
    return "\t" if Path(path).suffix.lower() in (".tsv", ".tab") else ","


def listed_files_key(manifest: str | os.PathLike, content: bool = False) -> str:
    """A key of the image and mask files a manifest lists: each one's size and modification
    time, or with ``content`` the SHA-256 of its bytes (slower: every file is read at every
    workflow start). A missing or unreadable manifest gives a key too; its conversion job then
    reports what is wrong with it."""
    manifest = Path(manifest)
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter=manifest_delimiter(manifest)))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return config_key({"unreadable": str(error)})
    files = {}
    for row in rows:
        for column in ("path", "mask"):
            if row.get(column):
                path = manifest.parent / row[column]
                try:
                    stat = path.stat()
                    files[row[column]] = (
                        file_digest(path) if content else [stat.st_size, stat.st_mtime_ns]
                    )
                except OSError:
                    files[row[column]] = None
    return config_key(files)


def declared_geometry(dataset: dict, preprocess: dict | None = None) -> dict:
    """What the config alone says of a dataset's images after ``preprocess`` (its own by
    default; an external test set gets its training dataset's): ``spatial_shape`` and
    ``channels`` where the config (or the catalogue) determines them, and ``classes`` when the
    config names them (folder sources) or their number is fixed. Keys that only the data can
    tell are absent: the job that prepares an external test set compares the real metadata."""
    source, generator = dataset["source"], dataset.get("generator", {})
    shape = {
        "synthetic_graded_lesions": [generator.get("image_size", 28)] * 2,
        "synthetic_findings": [generator.get("image_size", 32)] * 2,
        "synthetic_std_regression": [generator.get("image_size", 52)] * 2,
        # cases of different sizes are padded to the largest, which only the data tells
        "synthetic_tumours": None
        if generator.get("size_jitter")
        else generator.get("shape", [64, 64]),
        "cifar10": [32, 32],
        "cifar100": [32, 32],
        "medmnist": [dataset.get("size", 28)] * 2,
        "msd_brats": dataset.get("shape"),
        "folder": dataset.get("shape"),
    }.get(source)
    preprocess = dataset.get("preprocess", {}) if preprocess is None else preprocess
    shape = preprocess.get("shape") or shape
    channels = {
        "synthetic_graded_lesions": 1,
        "synthetic_findings": 1,
        "synthetic_std_regression": 1,
        "synthetic_tumours": generator.get("channels", 2),
        "cifar10": 3,
        "cifar100": 3,
        "msd_brats": 4,
    }.get(source)
    classes = {
        "synthetic_graded_lesions": 5,
        "synthetic_std_regression": 1,
        "synthetic_tumours": 4,
        "cifar10": 10,
        "cifar100": 100,
        "msd_brats": 4,
        "folder": len(dataset.get("classes") or []) or None,
    }.get(source)
    if source == "synthetic_findings":
        classes = len(generator.get("prevalence") or []) or 14
    if source == "medmnist" and dataset.get("flag"):
        entry = catalogue().get("medmnist", {}).get(dataset["flag"], {})
        classes = len(entry.get("classes", [])) or None
        channels = entry.get("channels", channels)
    found = {"spatial_shape": shape and list(shape), "channels": channels, "classes": classes}
    return {key: value for key, value in found.items() if value is not None}


def load_function(path: str):
    """The function named by a dotted ``module:function`` path."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
