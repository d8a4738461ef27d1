"""Extract a downloaded tar archive; no member may escape the target folder."""

import _libpath  # noqa: F401

from pathlib import Path

from medimbalance.data.archives import safe_extract
from medimbalance.data.download import verify
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
verify(snakemake.input.archive, snakemake.params.md5, snakemake.params.url)
staging = Path(snakemake.output.folder).parent / (Path(snakemake.output.folder).name + ".extract")
safe_extract(snakemake.input.archive, staging)
# The archive holds one top-level folder named like the task; move it into place.
(inner,) = [p for p in staging.iterdir() if p.is_dir()]
inner.rename(snakemake.output.folder)
staging.rmdir()
log.info("extracted %s to %s", snakemake.input.archive, snakemake.output.folder)
