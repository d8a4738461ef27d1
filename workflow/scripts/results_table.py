"""Table of one dataset × profile: methods × metrics, mean ± std over seeds (Markdown and CSV)."""

import _libpath  # noqa: F401

from itertools import product

from medimbalance.data.io import atomic_write, read_json
from medimbalance.jobs.logs import log_to_file
from medimbalance.reporting import html_table_page, markdown_table, metrics_frame, summarise

log = log_to_file(snakemake.log[0])
methods, seeds = snakemake.params.methods, snakemake.params.seeds
runs = list(product(methods, seeds))  # the order of get_run_metrics
records = [
    {"method": method, "seed": seed, "metrics": read_json(path)}
    for (method, seed), path in zip(runs, snakemake.input.metrics, strict=True)
]
summary = summarise(metrics_frame(records), methods)

with atomic_write(snakemake.output.csv, "w") as f:
    summary.to_csv(f, float_format="%.6f")
markdown = markdown_table(summary)
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(markdown + "\n")
with atomic_write(snakemake.output.html, "w") as f:  # read inside the HTML report
    title = f"{snakemake.wildcards.dataset}, {snakemake.wildcards.profile}"
    f.write(html_table_page(markdown, title))
log.info("table of %d methods × %d seeds written", len(methods), len(seeds))
