"""Test metrics of one run (the metrics of its dataset's task), from its saved predictions."""

import _libpath  # noqa: F401

import numpy as np

from medimbalance.data.io import read_json, write_json
from medimbalance.logs import log_to_file
from medimbalance.metrics import TASK_SCALARS, task_metrics

log = log_to_file(snakemake.log[0])
meta = read_json(snakemake.input.meta)
with np.load(snakemake.input.predictions) as predictions:
    outputs = predictions["test_logits"]
    targets = predictions["test_targets"]

metrics = task_metrics(meta["task"], targets, outputs, meta["classes"])
log.info(", ".join(f"{k} {metrics[k]}" for k in TASK_SCALARS[meta["task"]]))
write_json(snakemake.output.metrics, metrics)
