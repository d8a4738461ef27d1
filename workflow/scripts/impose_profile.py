"""Impose an imbalance profile on the training split; record the kept indices and the counts."""

import _libpath  # noqa: F401

from medimbalance.data.io import atomic_write, load_array, read_json, save_array
from medimbalance.data.profiles import impose_profile, target_summary
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
profile = snakemake.params.profile
meta = read_json(snakemake.input.meta)
targets = load_array(snakemake.input.targets, mmap=True)

kept = impose_profile(profile, targets, meta["task"], meta["classes"])
summary = target_summary(targets, kept, meta["task"], meta["classes"], voxels=True)
log.info("profile %s keeps %d of %d training images\n%s", profile, len(kept), len(targets), summary)
save_array(snakemake.output.indices, kept)
with atomic_write(snakemake.output.counts, "w") as f:
    summary.to_csv(f, sep="\t", index=False)
