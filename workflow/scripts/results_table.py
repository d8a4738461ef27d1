"""Table of one dataset × profile: methods × metrics over seeds — Markdown with its caption,
the same as an HTML page for the report, and a tidy CSV (one row per method × metric)."""

import _libpath  # noqa: F401

from itertools import product

from medimbalance.data.io import atomic_write, read_json
from medimbalance.display import html_table_page
from medimbalance.jobs.logs import log_to_file
from medimbalance.reporting import (
    TTA_SUFFIX,
    absent_classes,
    flagged_metrics,
    metrics_frame,
    results_markdown,
    tidy_summary,
)

log = log_to_file(snakemake.log[0])
methods, seeds, wc = snakemake.params.methods, snakemake.params.seeds, snakemake.wildcards
runs = list(product(methods, seeds))  # the order of get_run_metrics
records = [
    {"method": method, "seed": seed, "metrics": read_json(path)}
    for (method, seed), path in zip(runs, snakemake.input.metrics, strict=True)
]
# Segmentation with evaluation.tta: each method's runs again, scored with flips, as a row after it.
shown = list(methods)
if any("tta" in r["metrics"] for r in records):
    flipped = [
        {**r, "method": r["method"] + TTA_SUFFIX, "metrics": r["metrics"]["tta"]}
        for r in records
        if "tta" in r["metrics"]
    ]
    records += flipped
    shown = [name for m in methods for name in (m, m + TTA_SUFFIX)]
tidy = tidy_summary(metrics_frame(records), shown)
n_test = [r["metrics"]["n"] for r in records]
guesses = [
    r["metrics"]["uniform_guess_range"] for r in records if "uniform_guess_range" in r["metrics"]
]
flagged = flagged_metrics(records)
markdown = results_markdown(
    tidy,
    snakemake.params.task,
    wc.dataset,
    wc.profile,
    seeds,
    n_test,
    guesses,
    flagged,
    absent_classes(records),
)
# which classes an absent-class convention applied to, per method × metric ('' for none)
tidy["flagged"] = [
    " ".join(flagged.get((method, metric), []))
    for method, metric in zip(tidy["method"], tidy["metric"], strict=True)
]

with atomic_write(snakemake.output.csv, "w") as f:
    tidy.to_csv(f, index=False, float_format="%.6g")
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(markdown)
with atomic_write(snakemake.output.html, "w") as f:  # read inside the HTML report
    f.write(html_table_page(markdown, f"{wc.dataset}, {wc.profile}"))
log.info("table of %d methods × %d seeds written:\n%s", len(methods), len(seeds), markdown)
