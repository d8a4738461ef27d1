"""Split a dataset into stratified train/val/test arrays, once; splits.json records the indices."""

import _libpath  # noqa: F401

from medimbalance.data.io import load_array, read_json, save_array, write_json
from medimbalance.data.splits import SPLITS, stratified_split
from medimbalance.logs import log_to_file

log = log_to_file(snakemake.log[0])
split = snakemake.params.split
meta = read_json(snakemake.input.meta)
images = load_array(snakemake.input.images, mmap=True)
labels = load_array(snakemake.input.labels)
if len(images) != len(labels):
    raise ValueError(
        f"{snakemake.input.images} holds {len(images)} images but "
        f"{snakemake.input.labels} holds {len(labels)} labels"
    )

parts = stratified_split(labels, split["val"], split["test"], split["seed"])
for name in SPLITS:
    save_array(snakemake.output[f"{name}_images"], images[parts[name]])
    save_array(snakemake.output[f"{name}_labels"], labels[parts[name]])
    log.info("%s: %d images", name, len(parts[name]))

meta["splits"] = {name: len(parts[name]) for name in SPLITS}
write_json(snakemake.output.splits, {"seed": split["seed"], **parts})
write_json(snakemake.output.meta, meta)
