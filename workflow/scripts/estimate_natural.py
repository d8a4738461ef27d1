"""Label-free performance estimation under a natural shift: the estimators fitted on a run's
validation outputs applied to its outputs on another dataset's test split, against the true
accuracy (or Dice) there."""

import _libpath  # noqa: F401

from medimbalance.data.io import load_npz, read_json, write_json
from medimbalance.estimation import estimate_performance, fit_estimator
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
wc = snakemake.wildcards
meta = read_json(snakemake.input.meta)
arrays = load_npz(
    snakemake.input.predictions, ("val_logits", "val_targets", "test_logits", "test_targets")
)
estimator = fit_estimator(
    arrays["val_logits"], arrays["val_targets"], meta["task"], arrays.get("training_counts")
)
found = estimate_performance(
    estimator,
    arrays["test_logits"],
    arrays["test_targets"],
    task=meta["task"],
    classes=meta["classes"],
)
write_json(snakemake.output.estimate, {"kind": f"natural: {wc.other}", "severity": 0, **found})
log.info(
    "%s on %s: true %.4f; estimates %s", wc.method, wc.other, found["true"], found["estimates"]
)
