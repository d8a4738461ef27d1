"""Impose an imbalance profile on the training split; record the kept indices and class counts."""

import _libpath  # noqa: F401

import pandas as pd

from medimbalance.balancing import class_counts
from medimbalance.data.io import load_array, read_json, save_array
from medimbalance.data.profiles import profile_counts, subsample_to_counts
from medimbalance.logs import log_to_file

log = log_to_file(snakemake.log[0])
profile = snakemake.params.profile
classes = read_json(snakemake.input.meta)["classes"]
labels = load_array(snakemake.input.labels)

available = class_counts(labels, len(classes))
targets = profile_counts(profile["kind"], available.tolist(), profile)
kept = subsample_to_counts(labels, targets, profile.get("seed", 0), classes)
log.info("profile %s: %s of %s", profile, targets, available.tolist())

save_array(snakemake.output.indices, kept)
pd.DataFrame(
    {"class": classes, "available": available, "kept": class_counts(labels[kept], len(classes))}
).to_csv(snakemake.output.counts, sep="\t", index=False)
