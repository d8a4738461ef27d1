"""Test metrics of one run (the metrics of its dataset's task), from its saved predictions;
for classification also the calibration before and after post-hoc scaling fitted on the
validation split."""

import _libpath  # noqa: F401

import logging

from medimbalance.calibration import calibrate
from medimbalance.data.io import load_array, load_npz, read_json, unreadable, write_json
from medimbalance.jobs.logs import SUMMARY, log_to_file
from medimbalance.metrics import HEADLINE_METRICS, TASK_SCALARS, task_metrics
from medimbalance.tasks import CLASS_TASKS

log = log_to_file(snakemake.log[0])
meta = read_json(snakemake.input.meta)
task, classes = meta["task"], meta["classes"]
arrays = load_npz(snakemake.input.predictions, ("val_targets", "test_targets"))
# Outputs are logits, or (a segmentation method on patches) the label maps of whole cases.
kind = "labels" if "test_labels" in arrays else "logits"
missing = [name for name in (f"val_{kind}", f"test_{kind}") if name not in arrays]
if missing:
    raise unreadable(
        snakemake.input.predictions, f"no array {missing[0]!r} (it holds {sorted(arrays)})"
    )
for split in ("val", "test"):  # outputs and targets of a split must describe the same images
    logits, targets = arrays[f"{split}_{kind}"], arrays[f"{split}_targets"]
    if len(logits) != len(targets):
        raise ValueError(
            f"{snakemake.input.predictions}: {split}_{kind} has {len(logits)} rows but "
            f"{split}_targets {len(targets)}"
        )

# Segmentation: HD95 in mm (1 mm per voxel where the files gave no spacing), the named regions,
# each case at its own size (other tasks ignore these).
segmentation = {
    "spacing": meta.get("split_spacing", {}).get("test") or [1.0] * len(meta["spatial_shape"]),
    "regions": meta.get("regions"),
    "sizes": meta.get("split_sizes", {}).get("test"),
    "surface_tolerance": snakemake.params.surface_dice,
}
train_targets = None
if task in (*CLASS_TASKS, "regression"):  # shot groups: the profile's training distribution
    rows = load_array(snakemake.input.profile_indices)
    train_targets = load_array(snakemake.input.train_targets, mmap=True)[rows]
metrics = task_metrics(
    task,
    arrays["test_targets"],
    arrays[f"test_{kind}"],
    classes,
    train_targets=train_targets,
    guess_range=snakemake.params.guess_range,
    groups=snakemake.params.shot_groups,
    **segmentation,
)
for metric, absent in metrics.get("flagged", {}).items():
    log.warning("%s: class(es) %s absent from the test targets or never predicted", metric, absent)
if task in CLASS_TASKS:
    metrics["calibration"] = calibrate(
        val_logits=arrays["val_logits"],
        val_targets=arrays["val_targets"],
        test_logits=arrays["test_logits"],
        test_targets=arrays["test_targets"],
        n_bins=snakemake.params.bins,
    )
    ece = {k: round(v["ece"], 4) for k, v in metrics["calibration"].items()}
    log.info("test ECE before and after scaling: %s", ece)
log.info(", ".join(f"{k} {metrics[k]}" for k in TASK_SCALARS[task] if k in metrics))
headline = HEADLINE_METRICS[task][0]  # the first metric of the cross-evaluation tables
logging.getLogger(SUMMARY).info("test %s %.4f", headline, metrics[headline])
if task == "regression" and metrics["r2"] < 0.01:
    log.warning(
        "R² = %.4f on the test split: the network predicts about the targets' mean, whatever "
        "the image (a collapsed run; e.g. a learning rate too large for the inputs' scale)",
        metrics["r2"],
    )
if f"test_tta_{kind}" in arrays:  # segmentation with evaluation.tta: the same, with flips
    metrics["tta"] = task_metrics(
        task,
        arrays["test_targets"],
        arrays[f"test_tta_{kind}"],
        classes,
        **segmentation,
    )
    tta = metrics["tta"]
    scores = ", ".join(f"{k} {tta[k]}" for k in TASK_SCALARS[task] if k in tta)
    log.info("with flips: %s", scores)
if "logit_histogram_test" in arrays:  # segmentation: training vs test logits per class
    metrics["logit_histograms"] = {
        "edges": arrays["logit_histogram_edges"],
        "training": arrays["logit_histogram_training"],
        "test": arrays["logit_histogram_test"],
    }
write_json(snakemake.output.metrics, metrics)
