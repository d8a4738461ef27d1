"""Train one run (dataset × profile × method × seed); save the model, history and predictions.

Checkpoints after every epoch (named by a hash of the run config) let a killed job resume.
"""

import _libpath  # noqa: F401

import hashlib
import json
from pathlib import Path

from medimbalance.config import RunConfig
from medimbalance.data.io import load_array, read_json, save_npz, write_json
from medimbalance.experiment import RunArrays, load_synthetic, run_training
from medimbalance.jobs.logs import log_to_file
from medimbalance.jobs.runtime import configure, environment_info, select_device
from medimbalance.training import save_checkpoint

log = log_to_file(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
run = RunConfig.from_dict(snakemake.params.run)
configure(run.seed, snakemake.threads)
device = select_device()
write_json(out.env, environment_info(device))
write_json(out.run_config, run.to_dict())

folder = Path(out.model).parent
tag = hashlib.sha256(json.dumps(run.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
for stale in folder.glob(".checkpoint_*.pt"):  # left by a run with another config
    if tag not in stale.name:
        stale.unlink()

arrays = RunArrays(
    train_images=load_array(inp.train_images, mmap=True),
    train_targets=load_array(inp.train_targets, mmap=True),
    rows=load_array(inp.indices),
    profile_rows=load_array(inp.profile_indices),
    val_images=load_array(inp.val_images, mmap=True),
    val_targets=load_array(inp.val_targets),
    test_images=load_array(inp.test_images, mmap=True),
    test_targets=load_array(inp.test_targets),
    **(load_synthetic(inp.synthetic) if "synthetic" in inp.keys() else {}),
)
meta = read_json(inp.meta)
model, history, outputs = run_training(run, arrays, meta, device, folder / f".checkpoint_{tag}")

save_checkpoint(out.model, model, run.to_dict(), meta)
write_json(out.history, {"epochs": history})
# Segmentation logits are maps per class and voxel: stored as float16 to halve their size.
dtype = "float16" if run.task == "segmentation" else "float32"
save_npz(
    out.predictions,
    val_logits=outputs["val"].astype(dtype),
    val_targets=arrays.val_targets,
    test_logits=outputs["test"].astype(dtype),
    test_targets=arrays.test_targets,
)
for done in folder.glob(f".checkpoint_{tag}_*.pt"):
    done.unlink()
