"""A trained run's outputs on another dataset's test split (prepared with the run's dataset's
preprocessing): the saved model, no retraining. The run's own validation outputs are kept
beside them, so calibration is fitted on the run's validation split as for its own test split."""

import _libpath  # noqa: F401

import numpy as np

from medimbalance.calibration import posthoc_logit_adjustment
from medimbalance.checkpoints import load_model_file
from medimbalance.data.io import load_array, load_npz, read_json, save_npz
from medimbalance.experiment import load_trained_model
from medimbalance.jobs.logs import log_to_file
from medimbalance.jobs.runtime import configure, select_device
from medimbalance.patches import CaseSet, PatchSpec
from medimbalance.training import load_set, predict_logits

log = log_to_file(snakemake.log[0])
inp, out, wc = snakemake.input, snakemake.output, snakemake.wildcards
configure(int(wc.seed), snakemake.threads)
device = select_device()
meta = read_json(inp.meta)
model, run = load_trained_model(inp.model, meta, device)
images, targets = load_array(inp.test_images, mmap=True), load_array(inp.test_targets)
if run.spec.patch:  # whole cases by sliding windows: label maps, as the run's own
    spec = PatchSpec.from_dict(run.spec.patch, len(meta["spatial_shape"]), len(meta["classes"]))
    cases = CaseSet(images, targets, meta.get("split_sizes", {}).get("test"), spec, device)
    own = load_npz(inp.predictions, ("val_labels", "val_targets"))
    outputs = {"val_labels": own["val_labels"], "test_labels": cases.predicted_labels(model)}
else:
    logits = predict_logits(model, load_set(images, targets, device, task=run.task))
    logits = logits.cpu().numpy()
    if run.spec.posthoc_tau:  # adjusted by the prior of the set the run last trained on
        counts = load_model_file(inp.model)["meta"]["training_counts"]
        logits = posthoc_logit_adjustment(logits, counts, run.spec.posthoc_tau)
    own = load_npz(inp.predictions, ("val_logits", "val_targets"))
    dtype = "float16" if run.task == "segmentation" else "float32"
    outputs = {"val_logits": own["val_logits"], "test_logits": logits.astype(dtype)}
counts = load_model_file(inp.model)["meta"].get("training_counts")
if counts is not None:  # what NORCAL normalises the outputs by (estimation)
    outputs["training_counts"] = np.asarray(counts, np.int64)
save_npz(out.predictions, **outputs, val_targets=own["val_targets"], test_targets=targets)
log.info(
    "%s seed %s scored on %s's test split (%d images)", wc.method, wc.seed, wc.other, len(targets)
)
