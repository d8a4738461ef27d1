"""Convert a downloaded or manifest-described source into the raw-dataset layout."""

import _libpath  # noqa: F401

from pathlib import Path

from medimbalance.data.cifar import convert_cifar
from medimbalance.data.download import verify
from medimbalance.data.folder import convert_folder
from medimbalance.data.medmnist import convert_medmnist
from medimbalance.data.msd import convert_msd
from medimbalance.logs import log_to_file

log = log_to_file(snakemake.log[0])
spec = snakemake.params.spec
source, folder = spec["source"], Path(snakemake.output.images).parent
if "md5" in spec:  # a file placed by hand is checked before use
    verify(snakemake.input.source, spec["md5"], spec["url"])
if source == "medmnist":
    meta = convert_medmnist(snakemake.input.source, spec["flag"], spec["size"], folder)
elif source in ("cifar10", "cifar100"):
    meta = convert_cifar(snakemake.input.source, source, folder)
elif source == "msd_brats":
    meta = convert_msd(snakemake.input.source, spec["shape"], folder)
else:
    meta = convert_folder(
        snakemake.input.source, spec["task"], spec["classes"], spec.get("shape"), folder
    )
log.info("converted %s: %s", source, meta)
