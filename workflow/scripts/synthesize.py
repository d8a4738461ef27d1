"""Generate a seeded synthetic source into its folder, by the writer its generator names
(medimbalance.data.sources.GENERATORS): the raw layout, or image files with a manifest."""

import _libpath  # noqa: F401

from pathlib import Path

from medimbalance.data.sources import GENERATORS, load_function
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
write = load_function(GENERATORS[snakemake.wildcards.generator].writer)
write(dict(snakemake.params.spec), Path(snakemake.output[0]).parent)
