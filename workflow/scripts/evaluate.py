"""Classification metrics of one run on the test split, from its saved predictions."""

import _libpath  # noqa: F401

import numpy as np

from medimbalance.data.io import read_json, write_json
from medimbalance.logs import log_to_file
from medimbalance.metrics import classification_metrics, softmax

log = log_to_file(snakemake.log[0])
classes = read_json(snakemake.input.meta)["classes"]
with np.load(snakemake.input.predictions) as predictions:
    logits = predictions["test_logits"]
    targets = predictions["test_targets"]

metrics = classification_metrics(targets, softmax(logits), classes)
log.info(
    "accuracy %.4f, balanced accuracy %.4f, macro-F1 %.4f, AUROC %.4f",
    metrics["accuracy"],
    metrics["balanced_accuracy"],
    metrics["macro_f1"],
    metrics["auroc"] or float("nan"),
)
write_json(snakemake.output.metrics, metrics)
