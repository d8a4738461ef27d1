"""Split a raw dataset (once, splits.json) and preprocess each split into memory-mappable arrays."""

import _libpath  # noqa: F401

from medimbalance.data.io import load_array, read_json, write_json
from medimbalance.data.prepare import (
    assign_splits,
    channel_stats,
    split_geometry,
    stratify_key,
    write_split,
)
from medimbalance.data.splits import SPLITS
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
split, pre = snakemake.params.split, snakemake.params.preprocess
meta = read_json(snakemake.input.meta)
images = load_array(snakemake.input.images, mmap=True)
targets = load_array(snakemake.input.targets, mmap=True)
if len(images) != len(targets):
    raise ValueError(f"{snakemake.input.images}: {len(images)} images but {len(targets)} targets")

parts = assign_splits(
    stratify_key(targets, meta["task"]),
    load_array(snakemake.input.split),
    load_array(snakemake.input.groups),
    split["val"],
    split["test"],
    split.get("seed", 0),
    meta.get("patients"),
)
sizes = meta.pop("case_sizes", None)  # padded cases of different sizes
stats = None
if pre.get("normalize") == "zscore":
    stats = channel_stats(images, parts["train"], sizes)
for name in SPLITS:
    out = snakemake.output
    write_split(
        images,
        targets,
        parts[name],
        out[f"{name}_images"],
        out[f"{name}_targets"],
        pre.get("shape"),
        stats,
        sizes,
    )
    log.info("%s: %d images", name, len(parts[name]))

meta["splits"] = {name: len(parts[name]) for name in SPLITS}
meta.update(split_geometry({**meta, "case_sizes": sizes}, parts, pre.get("shape")))
meta.pop("case_spacing", None)  # per split now
meta["preprocess"] = {**pre, "channel_mean": stats and stats[0], "channel_std": stats and stats[1]}
if pre.get("shape"):
    meta["spatial_shape"] = list(pre["shape"])
write_json(snakemake.output.splits, {"seed": split.get("seed", 0), **parts})
write_json(snakemake.output.meta, meta)
