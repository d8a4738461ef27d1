"""Calibration of every method of one dataset × profile, before and after post-hoc scaling:
a table (mean ± std over seeds) and reliability diagrams pooled over seeds."""

import _libpath  # noqa: F401

from itertools import product

from medimbalance.data.io import atomic_write, read_json
from medimbalance.jobs.logs import log_to_file
from medimbalance.reporting import (
    calibration_frame,
    calibration_markdown,
    calibration_summary,
    plot_reliability,
    pool_reliability,
)

log = log_to_file(snakemake.log[0])
methods, seeds, wc = snakemake.params.methods, snakemake.params.seeds, snakemake.wildcards
records = [
    {"method": method, "seed": seed, "metrics": read_json(path)}
    for (method, seed), path in zip(product(methods, seeds), snakemake.input.metrics, strict=True)
]
summary = calibration_summary(calibration_frame(records), methods)
with atomic_write(snakemake.output.csv, "w") as f:
    summary.to_csv(f)
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(calibration_markdown(summary))
log.info("calibration of %d runs:\n%s", len(records), calibration_markdown(summary))

shown = ("none", "temperature", "class_temperature")
bins = {
    method: {
        scaler: pool_reliability(
            [
                r["metrics"]["calibration"][scaler]["reliability"]
                for r in records
                if r["method"] == method
            ]
        )
        for scaler in shown
    }
    for method in methods
}
title = f"{wc.dataset} / {wc.profile}: test reliability, {len(seeds)} seeds pooled"
plot_reliability(bins, title, snakemake.output.figure)
