"""Download one checksummed file into resources/ (transient failures are retried by ``fetch``;
a wrong MD5 is not)."""

import _libpath  # noqa: F401

from medimbalance.data.download import fetch
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
fetch(snakemake.params.url, snakemake.output.file, snakemake.params.md5)
