"""Resample the imbalanced training set of one run; record the resampled indices."""

import _libpath  # noqa: F401

import numpy as np

from medimbalance.balancing import pca_features, resample
from medimbalance.data.io import load_array, read_json, save_array
from medimbalance.data.profiles import target_summary
from medimbalance.logs import log_to_file
from medimbalance.tasks import CLASS_TASKS

log = log_to_file(snakemake.log[0])
meta = read_json(snakemake.input.meta)
task, classes = meta["task"], meta["classes"]
targets = load_array(snakemake.input.targets, mmap=True)
indices = load_array(snakemake.input.indices)

# Resamplers balance classes; other tasks only take "none" (the config check ensures it).
labels = targets[indices] if task in CLASS_TASKS else np.zeros(len(indices), np.int64)
args = dict(snakemake.params.args)
seed = snakemake.params.seed
# Boundary cleaning works on embeddings: a PCA of the pixels of the profile's training images.
features = pca_features(
    load_array(snakemake.input.images, mmap=True), args.pop("embedding_components", 32), seed
)
resampled = resample(
    snakemake.params.resampler, indices, labels, seed, features, len(classes), **args
)
summary = target_summary(targets, indices, task, classes).drop(columns="available")
summary = summary.rename(columns={"kept": "before"})
summary["after"] = target_summary(targets, resampled, task, classes)["kept"]
log.info("%s:\n%s", snakemake.params.resampler, summary)

save_array(snakemake.output.indices, resampled)
summary.to_csv(snakemake.output.counts, sep="\t", index=False)
