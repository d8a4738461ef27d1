import hashlib
import json
import re

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# ---- 1. Config validation (before any job runs) --------------------------------------------
validate(config, schema="../schemas/config.schema.yaml")


def check_config(cfg):
    """Cross-field checks that JSON Schema cannot express; each error names its key."""
    for name, dataset in cfg["datasets"].items():
        split = dataset["split"]
        if split["val"] + split["test"] >= 1:
            raise WorkflowError(
                f"config key datasets.{name}.split: val + test must be < 1 to leave training "
                f"images, got {split['val']} + {split['test']}"
            )


check_config(config)

STUDY = config["study"]
DATASETS = config["datasets"]
PROFILES = config["profiles"]
METHODS = config["methods"]
SEEDS = config["seeds"]
TORCH_ENV = f"../envs/torch-{config['torch_env']}.yaml"


def alternatives(names):
    return "|".join(re.escape(n) for n in names)


# ---- 2. Wildcard constraints ---------------------------------------------------------------
wildcard_constraints:
    study=re.escape(STUDY),
    dataset=alternatives(DATASETS),
    profile=alternatives(PROFILES),
    method=alternatives(METHODS),
    seed=r"\d+",
    key=r"[0-9a-f]{12}",


# ---- 3. Input functions and parameters -----------------------------------------------------
def generator_key(spec):
    """Content key of a synthetic dataset: same generator parameters => same folder."""
    blob = json.dumps(spec, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


SYNTHETIC = {
    generator_key(d["generator"]): d["generator"]
    for d in DATASETS.values()
    if d["source"] == "synthetic_graded_lesions"
}


def get_source(wildcards):
    """Raw images, labels and metadata of a dataset, by its source."""
    dataset = DATASETS[wildcards.dataset]
    folder = f"resources/synthetic/graded_lesions/{generator_key(dataset['generator'])}"
    return {
        "images": f"{folder}/images.npy",
        "labels": f"{folder}/labels.npy",
        "meta": f"{folder}/meta.json",
    }


def get_run_config(wildcards):
    """The resolved configuration of one run (saved as run_config.json)."""
    return {
        "study": STUDY,
        "dataset": wildcards.dataset,
        "profile": wildcards.profile,
        "method": wildcards.method,
        "seed": int(wildcards.seed),
        "spec": METHODS[wildcards.method],
        "training": config["training"],
    }


def get_run_metrics(wildcards):
    """metrics.json of every method and seed of one dataset x profile, methods in config order."""
    return expand(
        "results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}/metrics.json",
        study=STUDY,
        dataset=wildcards.dataset,
        profile=wildcards.profile,
        method=list(METHODS),
        seed=SEEDS,
    )


def get_final_outputs():
    """Tables and figures of every dataset x profile: the targets of rule all."""
    per_cell = [
        "results/{study}/tables/{dataset}_{profile}.md",
        "results/{study}/tables/{dataset}_{profile}.csv",
        "results/{study}/figures/{dataset}_{profile}_class_distribution.png",
        "results/{study}/figures/{dataset}_{profile}_confusion.png",
    ]
    return expand(per_cell, study=STUDY, dataset=list(DATASETS), profile=list(PROFILES))
