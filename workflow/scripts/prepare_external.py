"""Prepare another dataset's test split as an external test set of a training dataset: the
training dataset's preprocessing (its image shape, its training split's z-score statistics).
A test set whose task, classes or channels do not fit the training dataset's models is refused
before anything is written, naming both datasets."""

import _libpath  # noqa: F401

import numpy as np

from medimbalance.data.io import load_array, read_json, write_json
from medimbalance.data.prepare import split_geometry, write_split
from medimbalance.jobs.logs import log_to_file

log = log_to_file(snakemake.log[0])
inp, out, wc = snakemake.input, snakemake.output, snakemake.wildcards
own, theirs = read_json(inp.own_meta), read_json(inp.meta)
pre = own["preprocess"]
images = load_array(inp.images, mmap=True)
shape = list(pre.get("shape") or images.shape[2:])
found = {"task": theirs["task"], "classes": theirs["classes"], "channels": images.shape[1]}
sizes = theirs.pop("case_sizes", None)  # segmentation cases of different sizes, padded
if sizes is None and "split_sizes" not in own:  # otherwise networks on patches: any size
    found["spatial_shape"] = shape
for key, value in found.items():
    if list(np.atleast_1d(value)) != list(np.atleast_1d(own[key])):
        raise ValueError(
            f"datasets.{wc.dataset}.test_on: dataset {wc.other!r} has {key} {value} (after "
            f"{wc.dataset!r}'s preprocessing), but {wc.dataset!r} has {own[key]}: its models "
            "cannot be scored on that test set"
        )
stats = None
if pre.get("channel_mean") is not None:
    stats = np.asarray(pre["channel_mean"]), np.asarray(pre["channel_std"])
test = np.asarray(read_json(inp.splits)["test"], np.int64)
targets = load_array(inp.targets, mmap=True)
write_split(
    images, targets, test, out.test_images, out.test_targets, pre.get("shape"), stats, sizes
)
geometry = split_geometry({**theirs, "case_sizes": sizes}, {"test": test}, pre.get("shape"))
theirs.pop("case_spacing", None)  # per split now
meta = {
    **theirs,
    **geometry,
    "spatial_shape": shape,
    "splits": {"test": len(test)},
    "preprocess": pre,
}
write_json(out.meta, {**meta, "external_test_set_of": wc.dataset})
log.info("%s's test split (%d images) prepared as %s's", wc.other, len(test), wc.dataset)
