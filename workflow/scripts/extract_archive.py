"""Extract a downloaded tar archive; no member may escape the target folder."""

import _libpath  # noqa: F401

from medimbalance.data.archives import extract_one_folder
from medimbalance.data.download import verify
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
verify(snakemake.input.archive, snakemake.params.md5, snakemake.params.url)
extract_one_folder(snakemake.input.archive, snakemake.output.folder)
log.info("extracted %s to %s", snakemake.input.archive, snakemake.output.folder)
