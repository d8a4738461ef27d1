"""Train one run (dataset × profile × method × seed); save the model, history and predictions."""

import _libpath  # noqa: F401

from medimbalance.config import RunConfig
from medimbalance.data.io import load_array, read_json, save_npz, write_json
from medimbalance.logs import log_to_file
from medimbalance.losses import build_loss
from medimbalance.models import build_model
from medimbalance.runtime import configure, environment_info, select_device
from medimbalance.training import fit, load_set, predict_logits, save_checkpoint
from medimbalance.balancing import class_counts

log = log_to_file(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
run = RunConfig.from_dict(snakemake.params.run)
if run.spec.schedule != "single":
    raise ValueError(f"methods.{run.method}.schedule: unknown schedule {run.spec.schedule!r}")
configure(run.seed, snakemake.threads)
device = select_device()
write_json(out.env, environment_info(device))
write_json(out.run_config, run.to_dict())

meta = read_json(inp.meta)
indices = load_array(inp.indices)
labels = load_array(inp.train_targets)[indices]
train = load_set(load_array(inp.train_images, mmap=True), labels, device, rows=indices)
val = load_set(load_array(inp.val_images, mmap=True), load_array(inp.val_targets), device)
test = load_set(load_array(inp.test_images, mmap=True), load_array(inp.test_targets), device)
log.info(
    "run %s on %s: %d training images (%s)", run.method, device, len(train), type(train).__name__
)

model = build_model(run.spec.model, meta["channels"], len(meta["classes"]), meta["spatial_shape"])
loss_fn = build_loss(run.spec.loss, class_counts(labels, len(meta["classes"])).tolist())
history = fit(model.to(device), loss_fn, train, val, run.training, run.seed)

save_checkpoint(out.model, model, run.to_dict(), meta)
write_json(out.history, {"epochs": history})
save_npz(
    out.predictions,
    val_logits=predict_logits(model, val).cpu().numpy(),
    val_targets=val.labels.cpu().numpy(),
    test_logits=predict_logits(model, test).cpu().numpy(),
    test_targets=test.labels.cpu().numpy(),
)
