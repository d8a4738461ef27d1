"""A declared paper-shaped table: each cell one metric of one method's runs over the seeds (and
over several test sets where a cell pools them), beside the published value (Markdown,
long-form CSV, LaTeX)."""

import _libpath  # noqa: F401

from medimbalance.data.io import atomic_write, read_json
from medimbalance.jobs.logs import log_to_file
from medimbalance.display import html_table_page
from medimbalance.tables import assemble, render_latex, render_markdown, run_metric

log = log_to_file(snakemake.log[0])
spec, cells, seeds = snakemake.params.spec, snakemake.params.cells, snakemake.params.seeds
paths = iter(snakemake.input.metrics)  # cell by cell: each test set's seeds (Study.cell_metrics)
values = []
for cell in cells:
    row = []
    for _ in range(len(seeds) * len(cell["test_sets"])):
        path = next(paths)
        where = f"table cell row {cell['row']!r}, column {cell['column']!r}"
        row.append(run_metric(read_json(path), cell["metric"], path, where))
    values.append(row)
frame = assemble(spec, cells, values)
with atomic_write(snakemake.output.csv, "w") as f:
    frame.to_csv(f, index=False, float_format="%.10g")
markdown = render_markdown(frame, spec, seeds)
with atomic_write(snakemake.output.markdown, "w") as f:
    f.write(markdown)
with atomic_write(snakemake.output.html, "w") as f:  # read inside the HTML report
    f.write(html_table_page(markdown, snakemake.wildcards.table))
with atomic_write(snakemake.output.tex, "w") as f:
    f.write(render_latex(frame, spec, seeds))
log.info("table of %d cells written", len(cells))
