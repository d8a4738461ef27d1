import hashlib
import json
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The library's source catalogue needs only the standard library and PyYAML (which Snakemake
# has), so the workflow can name downloads and check tasks before any job runs.
sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))
from medimbalance import warm
from medimbalance.config import TrainConfig
from medimbalance.data.sources import PROFILE_TASKS, RAW_FILES, download_for, task_of
from medimbalance.tasks import (
    CLASS_TASKS,
    GENERATIVE,
    SYNTHESIZING,
    method_errors,
    resolve_monitor,
)

# ---- 1. Config validation (before any job runs) --------------------------------------------
validate(config, schema="../schemas/config.schema.yaml")

STUDY = config["study"]
DATASETS = config["datasets"]
PROFILES = config["profiles"]
METHODS = config["methods"]
SEEDS = config["seeds"]
TORCH_ENV = f"../envs/torch-{config['torch_env']}.yaml"
# The classifier on real images whose penultimate layer embeds images (network embeddings, FID).
EXTRACTOR = {"model": "small_cnn", "seed": 0, "training": {}, **config.get("feature_extractor", {})}
# Calibration bins; runs estimated under synthetic shifts (methods, profiles (default: all),
# shift kinds, severities).
EVALUATION = {"calibration_bins": 15, **config.get("evaluation", {})}
SHIFT = {
    "methods": [],
    "kinds": ["noise", "blur", "contrast", "bias_field"],
    "severities": [1, 3, 5],
    **EVALUATION.get("shift", {}),
}
# Methods whose new images come from a generative model trained in a rule of its own.
GAN_METHODS = [name for name, method in METHODS.items() if method["resample"] in GENERATIVE]


def dataset_profiles(name):
    """The profiles a dataset is studied under (all by default)."""
    return DATASETS[name].get("profiles", list(PROFILES))


def dataset_methods(name):
    """The methods trained on a dataset (all by default), in config order."""
    return DATASETS[name].get("methods", list(METHODS))


def dataset_training(name):
    """The training settings of a dataset: the shared ones, updated by its own."""
    return {**config["training"], **DATASETS[name].get("training", {})}


def extractor_training(name):
    """The training settings of the feature extractor of a dataset."""
    return {**dataset_training(name), **EXTRACTOR["training"]}


def gan_settings(method):
    """The conditional DCGAN settings of a method (medimbalance.gan.GanConfig keys)."""
    return METHODS[method].get("resample_args", {}).get("gan", {})


def check_config(cfg):
    """Cross-field checks that JSON Schema cannot express; each error names its key.
    Returns the task of every dataset."""
    tasks = {}
    for name, dataset in cfg["datasets"].items():
        where = f"config key datasets.{name}"
        split = dataset["split"]
        if split["val"] + split["test"] >= 1:
            raise WorkflowError(
                f"{where}.split: val + test must be < 1 to leave training images, "
                f"got {split['val']} + {split['test']}"
            )
        try:
            task = tasks[name] = task_of(dataset)
        except ValueError as error:
            raise WorkflowError(f"{where}: {error}") from None
        for profile in dataset_profiles(name):
            if profile not in cfg["profiles"]:
                raise WorkflowError(
                    f"{where}.profiles: unknown profile {profile!r}; "
                    f"defined: {', '.join(cfg['profiles'])}"
                )
            kind = cfg["profiles"][profile]["kind"]
            if task not in PROFILE_TASKS[kind]:
                raise WorkflowError(
                    f"config key profiles.{profile}: kind {kind!r} applies to "
                    f"{', '.join(PROFILE_TASKS[kind])} data, but dataset {name!r} is {task}; "
                    f"list the profiles it should use in {where}.profiles"
                )

        check_methods(cfg, name, task)

    for name, method in cfg["methods"].items():
        if method.get("schedule") == "two_phase" and method["resample"] == "none":
            raise WorkflowError(
                f"config key methods.{name}: schedule two_phase pretrains on a resampled set; "
                "set resample to ros or rus"
            )
        if name in SHIFT["methods"] and method.get("schedule") == "one_class":
            raise WorkflowError(
                f"config key evaluation.shift.methods: {name!r} trains one autoencoder per "
                "class, whose scores are not class probabilities; list other methods"
            )
        if name in SHIFT["methods"] and method.get("posthoc_tau"):
            raise WorkflowError(
                f"config key evaluation.shift.methods: {name!r} adjusts its logits after "
                "training (posthoc_tau), which estimation under shift does not apply to the "
                "shifted images' logits; list other methods"
            )
        if method.get("schedule") == "one_class" and method["resample"] in SYNTHESIZING:
            raise WorkflowError(
                f"config key methods.{name}: schedule one_class trains on real images only; "
                f"resample {method['resample']!r} adds synthetic ones"
            )
    unknown_profiles = [p for p in SHIFT.get("profiles", []) if p not in cfg["profiles"]]
    if unknown_profiles:
        raise WorkflowError(
            f"config key evaluation.shift.profiles: unknown profile(s) {unknown_profiles}; "
            f"defined: {', '.join(cfg['profiles'])}"
        )
    unknown = [m for m in SHIFT["methods"] if m not in cfg["methods"]]
    if unknown:
        raise WorkflowError(
            f"config key evaluation.shift.methods: unknown method(s) {unknown}; "
            f"defined: {', '.join(cfg['methods'])}"
        )
    return tasks


def check_methods(cfg, name, task):
    """The methods and training settings of dataset ``name`` must fit its ``task``."""
    where = f"config key datasets.{name}"
    for method in dataset_methods(name):
        if method not in cfg["methods"]:
            raise WorkflowError(
                f"{where}.methods: unknown method {method!r}; defined: {', '.join(cfg['methods'])}"
            )
        errors = method_errors(cfg["methods"][method], task)
        if errors:
            raise WorkflowError(
                f"config key methods.{method}: {'; '.join(errors)}, but dataset {name!r} is "
                f"{task}; list the methods it should use in {where}.methods"
            )
    try:
        resolve_monitor(TrainConfig(**dataset_training(name)).monitor, task)
    except (TypeError, ValueError) as error:
        raise WorkflowError(f"{where}.training: {error}") from None
    try:
        TrainConfig(**extractor_training(name))
    except (TypeError, ValueError) as error:
        raise WorkflowError(f"config key feature_extractor.training: {error}") from None


TASK = check_config(config)  # dataset name -> task


def key(spec):
    """Content key: the same parameters give the same folder under resources/."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def alternatives(names):
    return "|".join(re.escape(n) for n in names) or "^$"


def raw_outputs(folder):
    """Named outputs of a raw dataset folder (images, targets, split, groups, meta)."""
    return {name.split(".")[0]: f"{folder}/{name}" for name in RAW_FILES}


# ---- Where each dataset's raw data comes from ----------------------------------------------
SYNTHETIC = {}  # raw folder -> generator parameters (graded_lesions, findings, std_regression)
TUMOURS = {}  # synthetic tumour folder -> generator parameters (NIfTI + manifest)
DOWNLOADS = {}  # local path -> medimbalance.data.sources.Download
CONVERSIONS = {}  # raw folder -> {"input": path, "spec": parameters of the conversion}
RAW = {}  # dataset name -> raw folder


def plan_dataset(name, dataset):
    source = dataset["source"]
    if source in ("synthetic_graded_lesions", "synthetic_findings", "synthetic_std_regression"):
        folder = f"resources/synthetic/{source[len('synthetic_'):]}/{key(dataset['generator'])}"
        SYNTHETIC[folder] = dataset["generator"]
        return folder
    spec = {"source": source, "task": TASK[name]}
    if source == "synthetic_tumours":
        tumours = f"resources/synthetic/tumours/{key(dataset['generator'])}"
        TUMOURS[tumours] = dataset["generator"]
        source_path = f"{tumours}/manifest.tsv"
        spec.update(classes=["background", "edema", "non_enhancing", "enhancing"], shape=None)
    elif source == "folder":
        source_path = dataset["manifest"]
        spec.update(classes=dataset["classes"], shape=dataset.get("shape"))
    else:
        download = download_for(dataset)
        DOWNLOADS[download.path] = download
        spec.update(url=download.url, md5=download.md5)
        source_path = download.path
        if source == "medmnist":
            spec.update(flag=dataset["flag"], size=dataset.get("size", 28))
        if source == "msd_brats":
            source_path = "resources/msd/Task01_BrainTumour"
            spec.update(shape=dataset["shape"])
            spec.pop("md5")  # the archive is verified when extracted
    family = {"medmnist": "medmnist", "cifar10": "cifar", "cifar100": "cifar", "msd_brats": "msd"}
    # The input is part of the key: two manifests with the same options are two datasets.
    folder = f"resources/{family.get(source, 'folder')}/{key({**spec, 'input': source_path})}"
    CONVERSIONS[folder] = {"input": source_path, "spec": spec}
    return folder


for _name, _dataset in DATASETS.items():
    RAW[_name] = plan_dataset(_name, _dataset)

CLASSIFICATION = [n for n in DATASETS if TASK[n] in CLASS_TASKS]


# ---- 2. Wildcard constraints ---------------------------------------------------------------
wildcard_constraints:
    study=re.escape(STUDY),
    dataset=alternatives(DATASETS),
    profile=alternatives(PROFILES),
    method=alternatives(METHODS),
    seed=r"\d+",


# ---- 3. Input functions and parameters -----------------------------------------------------
def get_raw(wildcards):
    """The raw-dataset files of a dataset."""
    return raw_outputs(RAW[wildcards.dataset])


def get_msd_archive(wildcards):
    return next(path for path in DOWNLOADS if path.startswith("resources/msd/"))


def get_embeddings(wildcards):
    """The feature extractor's embeddings, for methods that find neighbours in them."""
    args = METHODS[wildcards.method].get("resample_args", {})
    if args.get("embedding") != "network":
        return {}
    path = "results/{study}/features/{dataset}/{profile}/train_embeddings.npy"
    return {"embeddings": path.format(**wildcards)}


def get_training_set(wildcards):
    """The training rows of a run (the profile's own when the method does not resample: no
    resample job) and, for methods that add images, the synthetic ones."""
    resampler = METHODS[wildcards.method]["resample"]
    if resampler == "none":
        return {
            "indices": "results/{study}/data/{dataset}/{profile}/train_indices.npy".format(
                **wildcards
            )
        }
    run = "results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}".format(**wildcards)
    inputs = {"indices": f"{run}/train_indices.npy"}
    if resampler in SYNTHESIZING:
        inputs["synthetic"] = f"{run}/synthetic.npz"
    return inputs


def get_run_config(wildcards):
    """The resolved configuration of one run (saved as run_config.json)."""
    return {
        "study": STUDY,
        "dataset": wildcards.dataset,
        "task": TASK[wildcards.dataset],
        "profile": wildcards.profile,
        "method": wildcards.method,
        "seed": int(wildcards.seed),
        "spec": METHODS[wildcards.method],
        "training": dataset_training(wildcards.dataset),
    }


def get_run_metrics(wildcards):
    """metrics.json of every method and seed of one dataset x profile, methods in config order."""
    return expand(
        "results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/metrics.json",
        study=STUDY,
        dataset=wildcards.dataset,
        profile=wildcards.profile,
        method=dataset_methods(wildcards.dataset),
        seed=SEEDS,
    )


def shift_methods(name):
    """The methods of dataset ``name`` estimated under shifts (classification, segmentation)."""
    if TASK[name] not in (*CLASS_TASKS, "segmentation"):
        return []
    return [m for m in dataset_methods(name) if m in SHIFT["methods"]]


def get_run_shifts(wildcards):
    """shift.json of every shifted method and seed of one dataset x profile."""
    return expand(
        "results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/shift.json",
        study=STUDY,
        dataset=wildcards.dataset,
        profile=wildcards.profile,
        method=shift_methods(wildcards.dataset),
        seed=SEEDS,
    )


def get_final_outputs():
    """The workflow's final targets: class distributions of every dataset x profile, tables of
    every dataset x profile with methods, confusion matrices and calibration of
    classification ones, estimation-under-shift tables and logit histograms where
    evaluation.shift asks, and the quality table and sample grid of every conditional GAN."""
    outputs = []
    for name in DATASETS:
        methods = dataset_methods(name)
        for profile in dataset_profiles(name):
            cell = dict(study=STUDY, dataset=name, profile=profile)
            outputs.append(
                "results/{study}/figures/{dataset}_{profile}_class_distribution.png".format(**cell)
            )
            if methods:
                outputs += [
                    "results/{study}/tables/{dataset}_{profile}.md".format(**cell),
                    "results/{study}/tables/{dataset}_{profile}.csv".format(**cell),
                ]
            if name in CLASSIFICATION and methods:
                outputs += [
                    "results/{study}/figures/{dataset}_{profile}_confusion.png".format(**cell),
                    "results/{study}/tables/{dataset}_{profile}_calibration.md".format(**cell),
                    "results/{study}/figures/{dataset}_{profile}_reliability.png".format(**cell),
                ]
            if shift_methods(name) and profile in SHIFT.get("profiles", [profile]):
                outputs.append("results/{study}/tables/{dataset}_{profile}_shift.md".format(**cell))
                outputs += expand(
                    "results/{study}/figures/{dataset}_{profile}_{method}_seed{seed}_logits.png",
                    method=shift_methods(name),
                    seed=SEEDS,
                    **cell,
                )
            for method in (m for m in methods if m in GAN_METHODS):
                outputs += [
                    "results/{study}/tables/{dataset}_{profile}_{method}_synthesis.md".format(
                        method=method, **cell
                    ),
                    "results/{study}/figures/{dataset}_{profile}_{method}_samples.png".format(
                        method=method, **cell
                    ),
                ]
    return outputs


def warm_start_wanted(workflow):
    """Warm starts (medimbalance.warm) suit a real local run of the main Snakemake process with
    the project's own interpreter: not a dry run, cluster jobs, conda or containers. A server
    already named in the environment (``python -m medimbalance.warm SOCKET``) is used instead."""
    return (
        not os.environ.get(warm.SOCKET_VARIABLE)
        and workflow.is_main_process
        and workflow.local_exec
        and not workflow.dryrun
        and not workflow.deployment_settings.deployment_method
        and warm.enabled()
    )
