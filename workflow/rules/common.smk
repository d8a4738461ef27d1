import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The library's config modules need only the standard library and PyYAML (which Snakemake has),
# so the workflow checks a study and plans its data before any job runs
# (tests/test_workflow_rules.py checks that they stay so).
sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))
from medimbalance.checks import config_errors
from medimbalance.data.sources import GENERATORS, RAW_FILES
from medimbalance.jobs import warm
from medimbalance.study import Study
from medimbalance.tasks import SYNTHESIZING

# ---- 1. Config validation (before any job runs) --------------------------------------------
validate(config, schema="../schemas/config.schema.yaml")  # also fills in the schema's defaults
ERRORS = config_errors(config)
if ERRORS:
    raise WorkflowError("invalid config:\n" + "\n".join(ERRORS))
study = Study(config)  # each dataset's task, raw-data plan, profiles, methods, training
TORCH_ENV = f"../envs/torch-{config['torch_env']}.yaml"


def alternatives(names):
    return "|".join(re.escape(n) for n in names) or "^$"


def raw_outputs(folder):
    """Named outputs of a raw dataset folder (images, targets, split, groups, meta)."""
    return {name.split(".")[0]: f"{folder}/{name}" for name in RAW_FILES}


# Where each dataset's raw data comes from (medimbalance.data.sources.raw_plan), by path.
PLANS = study.raw.values()
GENERATED = {p.generate[0]: p.generate[2] for p in PLANS if p.generate}  # folder -> parameters
DOWNLOADS = {p.download.path: p.download for p in PLANS if p.download}  # path -> Download
EXTRACTIONS = {p.extract[1]: p.extract[0] for p in PLANS if p.extract}  # folder -> archive
CONVERSIONS = {p.folder: p.convert for p in PLANS if p.convert}  # raw folder -> input, spec
RAW_GENERATORS = [name for name, g in GENERATORS.items() if g.output is None]


# ---- 2. Wildcard constraints ---------------------------------------------------------------
wildcard_constraints:
    study=re.escape(study.name),
    dataset=alternatives(study.datasets),
    profile=alternatives(study.profiles),
    method=alternatives(study.methods),
    seed=r"\d+",


# ---- 3. Input functions --------------------------------------------------------------------
RUN = "results/{study}/runs/{dataset}/{profile}/{method}/seed{seed}"


def get_raw(wildcards):
    """The raw-dataset files of a dataset."""
    return raw_outputs(study.raw[wildcards.dataset].folder)


def get_embeddings(wildcards):
    """The feature extractor's embeddings, for methods that find neighbours in them."""
    args = study.methods[wildcards.method].get("resample_args", {})
    if args.get("embedding") != "network":
        return {}
    path = "results/{study}/features/{dataset}/{profile}/train_embeddings.npy"
    return {"embeddings": path.format(**wildcards)}


def get_training_set(wildcards):
    """The training rows of a run (the profile's own when the method does not resample: no
    resample job) and, for methods that add images, the synthetic ones."""
    resampler = study.methods[wildcards.method]["resample"]
    if resampler == "none":
        path = "results/{study}/data/{dataset}/{profile}/train_indices.npy"
        return {"indices": path.format(**wildcards)}
    run = RUN.format(**wildcards)
    inputs = {"indices": f"{run}/train_indices.npy"}
    if resampler in SYNTHESIZING:
        inputs["synthetic"] = f"{run}/synthetic.npz"
    return inputs


def get_synthesizer_references(wildcards):
    """What a generative model's images are measured against beside the test split: the
    feature extractor (classification: FID and the real-image reference), or the validation
    split (segmentation: the reference network trained on the real pairs is validated on it)."""
    data = "results/{study}/data/{dataset}".format(**wildcards)
    if study.tasks[wildcards.dataset] == "segmentation":
        return {
            "val_images": f"{data}/val_images.npy",
            "val_targets": f"{data}/val_targets.npy",
        }
    extractor = "results/{study}/features/{dataset}/{profile}/extractor.pt"
    return {"extractor": extractor.format(**wildcards)}


def synthesizer_training(wildcards):
    """The network and training settings of the train-on-synthetic measure: the extractor's
    (classification) or the method's own (segmentation)."""
    if study.tasks[wildcards.dataset] == "segmentation":
        training = study.training(wildcards.dataset, wildcards.method)
        return {"model": study.methods[wildcards.method]["model"], "training": training}
    training = study.extractor_training(wildcards.dataset)
    return {"model": study.extractor["model"], "training": training}


def get_stage1(wildcards):
    """A decoupled method's stage-1 network: the trained model of the method it names, on the
    same dataset, profile and seed (one job shared by every stage-2 method that names it)."""
    stage1 = study.stage1(wildcards.method)
    if stage1 is None:
        return {}
    return {"stage1": f"{RUN}/model.pt".format(**{**wildcards, "method": stage1})}


def get_pretrained(wildcards):
    """The checkpoint file a method's network starts from (``pretrained.file``), if any."""
    pretrained = study.methods[wildcards.method].get("pretrained")
    return {"pretrained": pretrained["file"]} if pretrained else {}


def get_validation(wildcards):
    """The profile's validation rows when it shapes the validation split (``validation:
    train_distribution``); none otherwise (the whole split)."""
    if study.profiles[wildcards.profile].get("validation") != "train_distribution":
        return {}
    path = "results/{study}/data/{dataset}/{profile}/val_indices.npy"
    return {"val_indices": path.format(**wildcards)}


def runs_of(wildcards, methods, name):
    """File ``name`` of every run of ``methods`` and every seed of one dataset x profile."""
    cell = dict(study=study.name, dataset=wildcards.dataset, profile=wildcards.profile)
    return expand(f"{RUN}/{name}", method=methods, seed=study.seeds, **cell)


def get_run_metrics(wildcards):
    """metrics.json of every method and seed of one dataset x profile, methods in config order."""
    return runs_of(wildcards, study.dataset_methods(wildcards.dataset), "metrics.json")


def get_external_raw(wildcards):
    """The raw-dataset files of the other dataset ``wildcards.other`` (an external test set)."""
    return raw_outputs(study.raw[wildcards.other].folder)


def get_cross_metrics(wildcards):
    """metrics.json of every cross-evaluated method and seed of one dataset x profile, on its
    own test split and then on each of its other test sets (``test_on``), in that order."""
    methods = study.cross_methods(wildcards.dataset)
    paths = runs_of(wildcards, methods, "metrics.json")
    for other in study.test_sets(wildcards.dataset):
        paths += runs_of(wildcards, methods, f"test_on/{other}/metrics.json")
    return paths


def get_run_shifts(wildcards):
    """shift.json of every shifted method and seed of one dataset x profile, and (``natural``)
    their estimates on each natural-shift test set, test set by test set."""
    methods = study.shift_methods(wildcards.dataset)
    natural = []
    for other in study.natural_shifts(wildcards.dataset):
        natural += runs_of(wildcards, methods, f"test_on/{other}/estimate.json")
    return {"shift": runs_of(wildcards, methods, "shift.json"), "natural": natural}


def get_figure_data(wildcards):
    """What a declared figure's x axis is read from: every profile's class counts and training
    rows, and the dataset's training targets (how many images the split has)."""
    spec = study.figures[wildcards.figure]
    data = f"results/{study.name}/data/{spec['dataset']}"
    profiles = study.figure_profiles(wildcards.figure)
    return {
        "counts": [f"{data}/{profile}/class_counts.tsv" for profile in profiles],
        "indices": [f"{data}/{profile}/train_indices.npy" for profile in profiles],
        "train_targets": f"{data}/train_targets.npy",
    }


def final_outputs(kind):
    """The workflow's targets of one kind: ``data`` (prepared splits and every profile's
    training set), ``runs`` (every run's model, predictions and metrics: targets themselves, so
    a run whose files went missing after a failed rerun is trained again even though the tables
    from before are still there), ``tables`` or ``figures``: class
    distributions of every dataset x profile, tables of every dataset x profile with methods,
    confusion matrices and calibration of classification ones, training vs test logit
    histograms of segmentation ones, estimation-under-shift tables
    and logit histograms where evaluation.shift asks, and the quality table and sample grid of
    every conditional GAN."""
    outputs = []
    for name in study.datasets:
        methods = study.dataset_methods(name)
        outputs.append(f"results/{study.name}/data/{name}/meta.json")
        for profile in study.dataset_profiles(name):
            cell = f"results/{study.name}/{{}}/{name}_{profile}"
            outputs += [
                f"results/{study.name}/data/{name}/{profile}/class_counts.tsv",
                cell.format("figures") + "_class_distribution.png",
            ]
            outputs += expand(
                f"results/{study.name}/runs/{name}/{profile}/{{method}}/seed{{seed}}/{{file}}",
                method=methods,
                seed=study.seeds,
                file=("model.pt", "predictions.npz", "metrics.json"),
            )
            if methods:
                outputs += [cell.format("tables") + ".md", cell.format("tables") + ".csv"]
            for other in study.test_sets(name):
                outputs += expand(
                    f"results/{study.name}/runs/{name}/{profile}/{{method}}/seed{{seed}}/"
                    f"test_on/{other}/metrics.json",
                    method=study.cross_methods(name),
                    seed=study.seeds,
                )
            if study.test_sets(name) and study.cross_methods(name):
                outputs.append(cell.format("tables") + "_test_on.md")
            if name in study.classification and methods:
                outputs += [
                    cell.format("figures") + "_confusion.png",
                    cell.format("tables") + "_calibration.md",
                    cell.format("figures") + "_reliability.png",
                ]
            if study.tasks[name] == "segmentation" and methods:
                outputs.append(cell.format("figures") + "_logit_histograms.png")
            if study.shift_methods(name) and profile in study.shift_profiles(name):
                outputs.append(cell.format("tables") + "_shift.md")
                outputs += expand(
                    cell.format("figures") + "_{method}_seed{seed}_logits.png",
                    method=study.shift_methods(name),
                    seed=study.seeds,
                )
            for method in (m for m in methods if m in study.gan_methods):
                outputs += [
                    cell.format("tables") + f"_{method}_synthesis.md",
                    cell.format("figures") + f"_{method}_samples.png",
                ]
    for table in study.tables:
        outputs += [f"results/{study.name}/tables/paper/{table}.{ext}" for ext in ("md", "tex")]
    for figure in study.figures:
        outputs += [f"results/{study.name}/figures/paper/{figure}.{ext}" for ext in ("png", "pdf")]
    return [path for path in outputs if path.startswith(f"results/{study.name}/{kind}/")]


# ---- 4. Warm starts (medimbalance.jobs.warm) -----------------------------------------------
# During a local run without conda or containers, one server imports torch, MONAI and the
# library once, and rule scripts run in forks of it. Turn it off with MEDIMBALANCE_WARM_START=0.
WARM_SERVER = []


def warm_start_wanted(workflow):
    """Warm starts suit a real local run of the main Snakemake process with the project's own
    interpreter: not a dry run, cluster jobs, conda or containers. A server already named in
    the environment (``python -m medimbalance.jobs.warm SOCKET``) is used instead."""
    return (
        not os.environ.get(warm.SOCKET_VARIABLE)
        and workflow.is_main_process
        and workflow.local_exec
        and not workflow.dryrun
        and not workflow.deployment_settings.deployment_method
        and warm.enabled()
    )


onstart:
    if warm_start_wanted(workflow):
        WARM_SERVER.extend(warm.start_server(scripts=Path(workflow.basedir) / "scripts"))
        os.environ[warm.SOCKET_VARIABLE] = WARM_SERVER[1]


onsuccess:
    if WARM_SERVER:
        warm.stop_server(*WARM_SERVER)


onerror:
    if WARM_SERVER:
        warm.stop_server(*WARM_SERVER)
