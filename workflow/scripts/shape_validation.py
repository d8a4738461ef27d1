"""Shape the validation split like the profile's training set (``validation:
train_distribution``); record the kept indices and the counts."""

import _libpath  # noqa: F401

from medimbalance.data.io import atomic_write, load_array, read_json, save_array
from medimbalance.data.profiles import shape_validation, target_summary
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
inp, out, profile = snakemake.input, snakemake.output, snakemake.params.profile
meta = read_json(inp.meta)
val_targets = load_array(inp.val_targets, mmap=True)
kept = shape_validation(
    profile,
    load_array(inp.train_targets, mmap=True),
    load_array(inp.indices),
    val_targets,
    meta["task"],
    meta["classes"],
)
summary = target_summary(val_targets, kept, meta["task"], meta["classes"])
log.info(
    "validation shaped like %s keeps %d of %d images\n%s",
    profile,
    len(kept),
    len(val_targets),
    summary,
)
save_array(out.indices, kept)
with atomic_write(out.counts, "w") as f:
    summary.to_csv(f, sep="\t", index=False)
