"""Train one run (dataset × profile × method × seed); save the model, history and predictions.

A checkpoint after every epoch lets a killed job resume; it is valid only for this run's
identity (its config and the content of the data it trains on)."""

import _libpath  # noqa: F401

from pathlib import Path

import numpy as np

from medimbalance.checkpoints import Checkpoints, save_model
from medimbalance.config import RunConfig
from medimbalance.data.io import load_array, load_validation, read_json, save_npz, write_json
from medimbalance.experiment import load_synthetic, load_trained_model, run_training
from medimbalance.histograms import EDGES
from medimbalance.schedules import RunArrays, TrainingJob
from medimbalance.identity import run_identity
from medimbalance.jobs.logs import log_to_file
from medimbalance.jobs.runtime import configure, environment_info, select_device

log = log_to_file(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
run = RunConfig.from_dict(snakemake.params.run)
configure(run.seed, snakemake.threads)
device = select_device()
# The checkpoint a method starts from (its MD5 is checked when the network is built).
pretrained = {k: run.spec.pretrained[k] for k in ("file", "md5")} if run.spec.pretrained else None
write_json(out.env, {**environment_info(device), "pretrained": pretrained})
write_json(out.run_config, run.to_dict())

# What the checkpoints are valid for: the run and what it learns from (not the test split).
learns_from = {k: v for k, v in inp.items() if not k.startswith("test_")}
checkpoints = Checkpoints(Path(out.model).parent, run_identity(run.to_dict(), learns_from))
val_images, val_targets = load_validation(inp)
arrays = RunArrays(
    train_images=load_array(inp.train_images, mmap=True),
    train_targets=load_array(inp.train_targets, mmap=True),
    rows=load_array(inp.indices),
    profile_rows=load_array(inp.profile_indices),
    val_images=val_images,
    val_targets=val_targets,
    test_images=load_array(inp.test_images, mmap=True),
    test_targets=load_array(inp.test_targets),
    **(load_synthetic(inp.synthetic) if "synthetic" in inp.keys() else {}),
)
meta = read_json(inp.meta)
# A decoupled method's stage-1 network: another method's run on the same data and seed.
stage1 = load_trained_model(inp.stage1, meta, device)[0] if "stage1" in inp.keys() else None
job = TrainingJob(run, arrays, meta, device, checkpoints, stage1)
trained = run_training(job)

# The prior of the set it last trained on, for post-hoc adjustment of outputs on other test sets.
counts = None if trained.stats is None else list(trained.stats.counts)
# The epoch whose weights each training phase kept (the best validation epoch).
kept = {r.get("phase", "train"): r["epoch"] for r in trained.history if r.get("kept")}
save_model(
    out.model,
    trained.model,
    run.to_dict(),
    {**meta, "training_counts": counts, "kept_epochs": kept, "head": trained.head or run.spec.head},
)
write_json(out.history, {"epochs": trained.history})
# Segmentation logits are maps per class and voxel: stored as float16 to halve their size; a
# patch method's whole cases keep their predicted label maps (uint8) instead.
outputs = trained.outputs
kind = "labels" if outputs["test"].dtype == "uint8" else "logits"
if kind == "labels":
    saved = {"val_labels": outputs["val"], "test_labels": outputs["test"]}
else:
    dtype = "float16" if run.task == "segmentation" else "float32"
    saved = {f"{split}_logits": outputs[split].astype(dtype) for split in ("val", "test")}
if run.task == "segmentation" and snakemake.params.tta == "flips":  # with and without flips
    tta = job.tta_outputs(trained.model)
    saved[f"test_tta_{kind}"] = tta if kind == "labels" else tta.astype("float16")
if run.task == "segmentation":  # training vs test logits per class (Li et al.'s figure)
    histograms = job.logit_histograms(trained.model)
    saved.update({f"logit_histogram_{k}": v for k, v in histograms.items()})
    saved["logit_histogram_edges"] = EDGES
if counts is not None:  # what NORCAL normalises the outputs by (estimation)
    saved["training_counts"] = np.asarray(counts, np.int64)
save_npz(out.predictions, **saved, val_targets=arrays.val_targets, test_targets=arrays.test_targets)
checkpoints.clear()
