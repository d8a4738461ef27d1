"""Label-free performance estimation for one run under synthetic domain shifts of its test
split, and the histograms of its per-class logits on training vs test data."""

import _libpath  # noqa: F401


from medimbalance.checkpoints import load_model_file
from medimbalance.data.io import load_array, load_npz, read_json, write_json
from medimbalance.experiment import load_trained_model
from medimbalance.jobs.logs import log_to_file
from medimbalance.figures import class_logits, plot_logit_histograms
from medimbalance.jobs.runtime import configure, select_device
from medimbalance.shifts import evaluate_under_shift
from medimbalance.training import load_set, predict_logits

log = log_to_file(snakemake.log[0])
inp, out, params, wc = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
configure(int(wc.seed), snakemake.threads)
device = select_device()
meta = read_json(inp.meta)
model, run = load_trained_model(inp.model, meta, device)
predictions = load_npz(inp.predictions, ("val_logits", "val_targets", "test_logits"))
val_logits, val_targets = predictions["val_logits"], predictions["val_targets"]
test_logits = predictions["test_logits"]  # unshifted, saved by training
test_images = load_array(inp.test_images, mmap=True)
test_targets = load_array(inp.test_targets)

report = evaluate_under_shift(
    model,
    test_images,
    test_targets,
    val_logits,
    val_targets,
    task=run.task,
    classes=meta["classes"],
    kinds=params.kinds,
    severities=params.severities,
    seed=int(wc.seed),
    device=device,
    counts=load_model_file(inp.model)["meta"].get("training_counts"),
)
for result in report["results"]:
    kind, severity, metric = result["kind"], result["severity"], report["metric"]
    true, estimates = result["true"], result["estimates"]
    log.info("%s severity %d: true %s %.4f; estimates %s", kind, severity, metric, true, estimates)
write_json(out.shift, report)

# Logits of the training images the model learnt from (the profile's) against the test split's
# (saved by training: no second pass over the test images).
rows = load_array(inp.profile_indices)
train_images = load_array(inp.train_images, mmap=True)
train_targets = load_array(inp.train_targets, mmap=True)[rows]
train_logits = predict_logits(
    model, load_set(train_images, train_targets, device, rows, task=run.task)
)
sets = {
    "training": class_logits(train_logits.cpu().numpy(), train_targets),
    "test": class_logits(test_logits, test_targets),
}
title = f"{wc.method} on {wc.dataset} / {wc.profile}, seed {wc.seed}: logits per true class"
plot_logit_histograms(sets, meta["classes"], title, out.logits)
