"""Calibration of every method of one dataset × profile, before and after post-hoc scaling:
a table (mean ± std over seeds) and reliability diagrams pooled over seeds."""

import _libpath  # noqa: F401

from itertools import product

from medimbalance.data.io import atomic_write, read_json
from medimbalance.display import html_table_page
from medimbalance.figures import plot_reliability
from medimbalance.jobs.logs import log_to_file
from medimbalance.reporting import (
    calibration_frame,
    calibration_markdown,
    pool_reliability,
    tidy_summary,
)

log = log_to_file(snakemake.log[0])
methods, seeds, wc = snakemake.params.methods, snakemake.params.seeds, snakemake.wildcards
records = [
    {"method": method, "seed": seed, "metrics": read_json(path)}
    for (method, seed), path in zip(product(methods, seeds), snakemake.input.metrics, strict=True)
]
tidy = tidy_summary(calibration_frame(records), methods, by=["scaler"])
markdown = calibration_markdown(tidy, wc.dataset, wc.profile, seeds, snakemake.params.bins)
with atomic_write(snakemake.output.csv, "w") as f:
    tidy.to_csv(f, index=False, float_format="%.6g")
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(markdown)
with atomic_write(snakemake.output.html, "w") as f:
    f.write(html_table_page(markdown, f"{wc.dataset}, {wc.profile}: calibration"))
log.info("calibration of %d runs:\n%s", len(records), markdown)

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
