"""Label-free performance estimation under synthetic shifts (and natural ones: other datasets'
test splits) for one dataset × profile: mean absolute errors of every estimator per shift kind,
shaped like Li et al.'s Table 1."""

import _libpath  # noqa: F401

from itertools import product

from medimbalance.data.io import atomic_write, read_json
from medimbalance.display import html_table_page
from medimbalance.jobs.logs import log_to_file
from medimbalance.reporting import shift_frame, shift_markdown

log = log_to_file(snakemake.log[0])
methods, seeds = snakemake.params.methods, snakemake.params.seeds
records = [
    {"method": method, "seed": seed, "shift": read_json(path)}
    for (method, seed), path in zip(product(methods, seeds), snakemake.input.shift, strict=True)
]
# Natural shifts: each run's estimate on another dataset's test split joins its results.
natural = product(snakemake.params.natural, range(len(records)))
for (_, index), path in zip(natural, snakemake.input.natural, strict=True):
    records[index]["shift"]["results"].append(read_json(path))
frame = shift_frame(records)
metric = records[0]["shift"]["metric"]
with atomic_write(snakemake.output.csv, "w") as f:
    frame.to_csv(f, index=False)
text = shift_markdown(frame, metric, methods)
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(text)
with atomic_write(snakemake.output.html, "w") as f:
    title = f"{snakemake.wildcards.dataset}, {snakemake.wildcards.profile}: estimation"
    f.write(html_table_page(text, title))
log.info("\n%s", text)
