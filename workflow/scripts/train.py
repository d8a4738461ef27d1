"""Train one run (dataset × profile × method × seed); save the model, history and predictions.

Checkpoints after every epoch (named by a hash of the run config) let a killed job resume.
"""

import _libpath  # noqa: F401

import hashlib
import json
from pathlib import Path

from medimbalance.balancing import class_counts
from medimbalance.config import RunConfig
from medimbalance.data.io import load_array, read_json, save_npz, write_json
from medimbalance.logs import log_to_file
from medimbalance.losses import build_loss, posthoc_logit_adjustment
from medimbalance.models import build_model
from medimbalance.one_class import one_class_logits, train_one_class
from medimbalance.runtime import configure, environment_info, select_device
from medimbalance.training import (
    fine_tune_last_layer, fit, load_set, predict_logits, save_checkpoint,
)  # fmt: skip

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

meta = read_json(inp.meta)
classes = meta["classes"]
train_targets = load_array(inp.train_targets)
indices = load_array(inp.indices)
images = load_array(inp.train_images, mmap=True)
train = load_set(images, train_targets[indices], device, indices)
val = load_set(load_array(inp.val_images, mmap=True), load_array(inp.val_targets), device)
test = load_set(load_array(inp.test_images, mmap=True), load_array(inp.test_targets), device)
log.info("run %s on %s: %d training images (%s)", run.method, device, len(train),
         type(train).__name__)  # fmt: skip

counts = class_counts(train_targets[indices], len(classes)).tolist()
if run.spec.schedule == "one_class":  # one autoencoder per class; scores = −distance
    model, scorers, history = train_one_class(
        images, train_targets, indices, classes, run.training, run.seed, run.spec.measure, device
    )
    logits = {k: one_class_logits(model, scorers, d) for k, d in (("val", val), ("test", test))}
else:
    model = build_model(
        run.spec.model, meta["channels"], len(classes), meta["spatial_shape"], run.spec.head
    ).to(device)
    loss_fn = build_loss(run.spec.loss, counts, **run.spec.loss_args)
    phase = "pretrain" if run.spec.schedule == "two_phase" else "train"
    history = fit(model, loss_fn, train, val, run.training, run.seed, phase=phase,
                  checkpoint=folder / f".checkpoint_{tag}_1.pt")  # fmt: skip
    if run.spec.schedule == "two_phase":  # fine-tune the last layer on the imbalanced set
        original = load_array(inp.profile_indices)
        imbalanced = load_set(images, train_targets[original], device, original)
        counts = class_counts(train_targets[original], len(classes)).tolist()
        loss_fn = build_loss(run.spec.loss, counts, **run.spec.loss_args)
        history += fine_tune_last_layer(model, loss_fn, imbalanced, val, run.training, run.seed,
                                        folder / f".checkpoint_{tag}_2.pt")  # fmt: skip
    logits = {k: predict_logits(model, d).cpu().numpy() for k, d in (("val", val), ("test", test))}

save_checkpoint(out.model, model, run.to_dict(), meta)
write_json(out.history, {"epochs": history})
if run.spec.posthoc_tau:  # adjust by the prior of the set the model was last trained on
    logits = {
        k: posthoc_logit_adjustment(v, counts, run.spec.posthoc_tau) for k, v in logits.items()
    }
save_npz(
    out.predictions,
    val_logits=logits["val"],
    val_targets=val.labels.cpu().numpy(),
    test_logits=logits["test"],
    test_targets=test.labels.cpu().numpy(),
)
for done in folder.glob(f".checkpoint_{tag}_*.pt"):
    done.unlink()
