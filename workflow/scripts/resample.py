"""Resample the imbalanced training set of one run: record the kept indices, the new images
(SMOTE; none for the other resamplers) and the class counts before and after."""

import _libpath  # noqa: F401

import numpy as np

from medimbalance.balancing import (
    SYNTHESIZERS,
    pca_features,
    pixel_features,
    resample,
    synthesize,
)
from medimbalance.data.io import atomic_write, load_array, read_json, save_array, save_npz
from medimbalance.data.profiles import resampling_summary
from medimbalance.jobs.logs import log_to_file
from medimbalance.tasks import CLASS_TASKS

log = log_to_file(snakemake.log[0])
meta = read_json(snakemake.input.meta)
task, classes = meta["task"], meta["classes"]
targets = load_array(snakemake.input.targets, mmap=True)
images = load_array(snakemake.input.images, mmap=True)
indices = load_array(snakemake.input.indices)
name, seed = snakemake.params.resampler, snakemake.params.seed

# Resamplers balance classes; other tasks only take "none" (the config check ensures it).
labels = targets[indices] if task in CLASS_TASKS else np.zeros(len(indices), np.int64)
args = dict(snakemake.params.args)
# Where neighbours are found: the pixels, a PCA of them, or the feature extractor's embedding.
embedding = args.pop("embedding", "pixels" if name in SYNTHESIZERS else "pca")
components = args.pop("embedding_components", 32)
if embedding == "network":
    embeddings = load_array(snakemake.input.embeddings, mmap=True)
    features = lambda rows: np.asarray(embeddings[np.asarray(rows)])  # noqa: E731
elif embedding == "pca":
    features = pca_features(images, components, seed)
else:  # SMOTE reads the pixels of one class at a time
    features = None if name in SYNTHESIZERS else pixel_features(images)
log.info("%s: neighbours in the %s embedding", name, embedding)

new_labels = None
if name in SYNTHESIZERS:
    kept = indices
    new_images, new_labels = synthesize(
        name, images, indices, labels, seed, features, len(classes), **args
    )
else:
    kept = resample(name, indices, labels, seed, features, len(classes), **args)
    new_images = np.empty((0, *images.shape[1:]), images.dtype)
summary = resampling_summary(targets, indices, kept, task, classes, new_labels)
log.info("%s:\n%s", name, summary)

save_npz(
    snakemake.output.synthetic,
    images=new_images,
    targets=np.empty(0, np.int64) if new_labels is None else new_labels,
)
save_array(snakemake.output.indices, kept)
with atomic_write(snakemake.output.counts, "w") as f:
    summary.to_csv(f, sep="\t", index=False)
