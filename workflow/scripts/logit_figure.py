"""Training vs test logit histograms per class of every segmentation method of one dataset ×
profile, summed over seeds (from each run's metrics.json)."""

import _libpath  # noqa: F401

from itertools import product

import numpy as np

from medimbalance.data.io import read_json
from medimbalance.figures import plot_logit_histogram_counts
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
methods, seeds = snakemake.params.methods, snakemake.params.seeds
runs, classes = {}, None
for (method, _), path in zip(product(methods, seeds), snakemake.input.metrics, strict=True):
    metrics = read_json(path)
    classes, found = metrics["classes"], metrics["logit_histograms"]
    run = runs.setdefault(method, {"edges": found["edges"], "training": 0, "test": 0})
    for kind in ("training", "test"):
        run[kind] = run[kind] + np.asarray(found[kind])

wc = snakemake.wildcards
pooled = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
title = f"{wc.dataset} / {wc.profile}: logit of each class over its voxels ({pooled})"
plot_logit_histogram_counts(runs, classes, title, snakemake.output.figure)
