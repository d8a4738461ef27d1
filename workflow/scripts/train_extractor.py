"""Train the feature extractor of one dataset × profile (a classifier on the profile's real
training images) and embed every image of the training split with its penultimate layer."""

import _libpath  # noqa: F401

from medimbalance.checkpoints import save_model
from medimbalance.config import TrainConfig
from medimbalance.data.io import load_array, load_validation, read_json, save_array, write_json
from medimbalance.features import embed, train_classifier
from medimbalance.jobs.logs import log_to_file
from medimbalance.jobs.runtime import configure, select_device
from medimbalance.training import load_set

log = log_to_file(snakemake.log[0])
inp, out, params = snakemake.input, snakemake.output, snakemake.params
configure(params.seed, snakemake.threads)
device = select_device()
meta = read_json(inp.meta)
rows = load_array(inp.indices)
images = load_array(inp.train_images, mmap=True)
targets = load_array(inp.train_targets, mmap=True)

model, history = train_classifier(
    params.model,
    images[rows],
    targets[rows],
    *load_validation(inp),
    num_classes=len(meta["classes"]),
    cfg=TrainConfig(**params.training),
    seed=params.seed,
    task=meta["task"],
    device=device,
)
embeddings = embed(model, load_set(images, targets, device, task=meta["task"]))
log.info("embedded %d training images into %d features", *embeddings.shape)

save_array(out.embeddings, embeddings)
write_json(out.history, {"epochs": history})
save_model(out.model, model, {"model": params.model, "training": params.training}, meta)
