"""Convert a downloaded or manifest-described source into the raw-dataset layout, by the
converter its source names (medimbalance.data.sources.SOURCES)."""

import _libpath  # noqa: F401

from pathlib import Path

from medimbalance.data.download import verify
from medimbalance.data.sources import SOURCES, load_function
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
spec = snakemake.params.spec
if "md5" in spec:  # a file placed by hand is checked before use
    verify(snakemake.input.source, spec["md5"], spec["url"])
convert = load_function(SOURCES[spec["source"]].converter)
folder = Path(snakemake.output.images).parent
meta = convert(snakemake.input.source, folder=folder, **spec["args"])
log.info("converted %s: %s", spec["source"], meta)
