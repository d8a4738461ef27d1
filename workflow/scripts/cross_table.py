"""Cross-evaluation table of one dataset × profile: methods × (headline metric @ test set), mean
± std over seeds, on the dataset's own test split and each of its other test sets."""

import _libpath  # noqa: F401

from itertools import product

from medimbalance.data.io import atomic_write, read_json
from medimbalance.jobs.logs import log_to_file
from medimbalance.metrics import HEADLINE_METRICS
from medimbalance.reporting import cross_summary, markdown_table, metrics_frame

log = log_to_file(snakemake.log[0])
test_sets, methods = snakemake.params.test_sets, snakemake.params.methods
runs = list(product(test_sets, methods, snakemake.params.seeds))  # the order of get_cross_metrics
records = {test_set: [] for test_set in test_sets}
for (test_set, method, seed), path in zip(runs, snakemake.input.metrics, strict=True):
    records[test_set].append({"method": method, "seed": seed, "metrics": read_json(path)})
task = records[test_sets[0]][0]["metrics"]["task"]
frames = {test_set: metrics_frame(rows) for test_set, rows in records.items()}
summary = cross_summary(frames, methods, HEADLINE_METRICS[task])
with atomic_write(snakemake.output.csv, "w") as f:
    summary.to_csv(f, float_format="%.6f")
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(markdown_table(summary) + "\n")
log.info("%d methods on %d test sets", len(methods), len(test_sets))
