"""Train one run (dataset × profile × method × seed); save the model, history and predictions."""

import _libpath  # noqa: F401

from medimbalance.config import RunConfig
from medimbalance.data.io import load_array, read_json, save_npz, write_json
from medimbalance.logs import log_to_file
from medimbalance.losses import build_loss
from medimbalance.models import build_model
from medimbalance.runtime import configure, environment_info, select_device
from medimbalance.training import TensorSet, fit, predict_logits, save_checkpoint
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
labels = load_array(inp.train_labels)[indices]
train = TensorSet.from_uint8(load_array(inp.train_images, mmap=True)[indices], labels, device)
val = TensorSet.from_uint8(load_array(inp.val_images), load_array(inp.val_labels), device)
test = TensorSet.from_uint8(load_array(inp.test_images), load_array(inp.test_labels), device)
log.info("run %s on %s: %d training images", run.method, device, len(train))

model = build_model(run.spec.model, meta["channels"], len(meta["classes"]), meta["spatial_shape"])
loss_fn = build_loss(run.spec.loss, class_counts(labels, len(meta["classes"])).tolist())
history = fit(model.to(device), loss_fn, train, val, run.training, run.seed)

save_checkpoint(out.model, model, run.to_dict(), meta)
write_json(out.history, {"epochs": history})
save_npz(
    out.predictions,
    val_logits=predict_logits(model, val.images).cpu().numpy(),
    val_targets=val.labels.cpu().numpy(),
    test_logits=predict_logits(model, test.images).cpu().numpy(),
    test_targets=test.labels.cpu().numpy(),
)
