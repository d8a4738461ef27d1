"""Resample the imbalanced training set of one run; record the resampled indices."""

import _libpath  # noqa: F401

import pandas as pd

from medimbalance.balancing import class_counts, resample
from medimbalance.data.io import load_array, read_json, save_array
from medimbalance.logs import log_to_file

log = log_to_file(snakemake.log[0])
classes = read_json(snakemake.input.meta)["classes"]
labels = load_array(snakemake.input.targets)
indices = load_array(snakemake.input.indices)

resampled = resample(snakemake.params.resampler, indices, labels[indices], snakemake.params.seed)
before = class_counts(labels[indices], len(classes))
after = class_counts(labels[resampled], len(classes))
log.info("%s: %s -> %s", snakemake.params.resampler, before.tolist(), after.tolist())

save_array(snakemake.output.indices, resampled)
pd.DataFrame({"class": classes, "before": before, "after": after}).to_csv(
    snakemake.output.counts, sep="\t", index=False
)
