"""Row-normalised test confusion matrices per method, summed over seeds."""

import _libpath  # noqa: F401

from itertools import product

import numpy as np

from medimbalance.data.io import read_json
from medimbalance.jobs.logs import log_to_file
from medimbalance.figures import plot_confusion_matrices

log = log_to_file(snakemake.log[0])
methods, seeds = snakemake.params.methods, snakemake.params.seeds
matrices, classes = {}, None
for (method, _), path in zip(product(methods, seeds), snakemake.input.metrics, strict=True):
    metrics = read_json(path)
    classes = metrics["classes"]
    matrices[method] = matrices.get(method, 0) + np.asarray(metrics["confusion_matrix"])

title = f"{snakemake.wildcards.dataset} / {snakemake.wildcards.profile} (test, {len(seeds)} seeds)"
plot_confusion_matrices(matrices, classes, title, snakemake.output.figure)
