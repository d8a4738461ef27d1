"""Cross-evaluation table of one dataset × profile: methods × (headline metric @ test set), over
seeds, on the dataset's own test split and each of its other test sets (Markdown with its
caption, an HTML page for the report, and a tidy CSV with a ``test_set`` column)."""

import _libpath  # noqa: F401

from itertools import product

import pandas as pd

from medimbalance.data.io import atomic_write, read_json
from medimbalance.display import html_table_page
from medimbalance.jobs.logs import log_to_file
from medimbalance.metrics import HEADLINE_METRICS
from medimbalance.reporting import cross_markdown, flagged_metrics, metrics_frame, tidy_summary

log = log_to_file(snakemake.log[0])
test_sets, methods, wc = snakemake.params.test_sets, snakemake.params.methods, snakemake.wildcards
runs = list(product(test_sets, methods, snakemake.params.seeds))  # get_cross_metrics' order
records = {test_set: [] for test_set in test_sets}
for (test_set, method, seed), path in zip(runs, snakemake.input.metrics, strict=True):
    records[test_set].append({"method": method, "seed": seed, "metrics": read_json(path)})
task = records[test_sets[0]][0]["metrics"]["task"]
frame = pd.concat(
    [metrics_frame(rows).assign(test_set=test_set) for test_set, rows in records.items()],
    ignore_index=True,
)
frame = frame[["method", "seed", "test_set", *HEADLINE_METRICS[task]]]
tidy = tidy_summary(frame, methods, by=["test_set"])
flagged = {test_set: flagged_metrics(rows) for test_set, rows in records.items()}
markdown = cross_markdown(tidy, test_sets, wc.dataset, wc.profile, snakemake.params.seeds, flagged)
with atomic_write(snakemake.output.csv, "w") as f:
    tidy.to_csv(f, index=False, float_format="%.6g")
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(markdown)
with atomic_write(snakemake.output.html, "w") as f:
    f.write(html_table_page(markdown, f"{wc.dataset}, {wc.profile}: on other test sets"))
log.info("%d methods on %d test sets:\n%s", len(methods), len(test_sets), markdown)
