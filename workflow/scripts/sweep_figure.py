"""A declared sweep figure: one metric of a dataset's runs against the imbalance factor or the
training fraction of its profiles, one line per method, error bars over the seeds (PNG, PDF,
and the plotted points as CSV)."""

import _libpath  # noqa: F401

import pandas as pd

from medimbalance.data.io import atomic_write, load_array, read_json
from medimbalance.jobs.logs import log_to_file
from medimbalance.figures import plot_sweep
from medimbalance.reporting import sweep_frame, sweep_position
from medimbalance.tables import run_metric

log = log_to_file(snakemake.log[0])
inp, out, params = snakemake.input, snakemake.output, snakemake.params
spec, profiles, methods, seeds = params.spec, params.profiles, params.methods, params.seeds
available = len(load_array(inp.train_targets, mmap=True))
paths = iter(inp.metrics)  # profile by profile, method by method, seed by seed
points = []
for profile, counts, indices in zip(profiles, inp.counts, inp.indices, strict=True):
    kept = len(load_array(indices, mmap=True))
    x = sweep_position(spec["x"], pd.read_csv(counts, sep="\t"), kept, available)
    for method in methods:
        for seed in seeds:
            path = next(paths)
            value = run_metric(read_json(path), spec["metric"], path, f"figure {params.name}")
            points.append(
                {"method": method, "profile": profile, "seed": seed, "x": x, "value": value}
            )
frame = sweep_frame(points, methods, profiles)
with atomic_write(out.csv, "w") as f:
    frame.to_csv(f, index=False, float_format="%.10g")
plot_sweep(frame, spec, out.png, out.pdf, spec.get("errors", "std"))
log.info("sweep of %d methods over %d profiles drawn", len(methods), len(profiles))
