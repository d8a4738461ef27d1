"""Oversample one run's training set with images of the trained generative model (conditional
DCGAN or diffusion model): every class reaches ``ratio`` times the majority count; the real
images are all kept."""

import _libpath  # noqa: F401

from medimbalance.balancing import generation_labels
from medimbalance.data.io import atomic_write, load_array, read_json, save_array, save_npz
from medimbalance.data.profiles import resampling_summary
from medimbalance.diffusion import load_synthesizer
from medimbalance.jobs.logs import log_to_file
from medimbalance.jobs.runtime import configure

log = log_to_file(snakemake.log[0])
configure(snakemake.params.seed, snakemake.threads)
meta = read_json(snakemake.input.meta)
classes = meta["classes"]
targets = load_array(snakemake.input.targets, mmap=True)
indices = load_array(snakemake.input.indices)

new_labels = generation_labels(targets[indices], len(classes), snakemake.params.ratio)
gan = load_synthesizer(snakemake.input.generator)
new_images = gan.sample(new_labels, snakemake.params.seed)
summary = resampling_summary(targets, indices, indices, meta["task"], classes, new_labels)
log.info("%s: %d generated images\n%s", gan.kind, len(new_labels), summary)

save_npz(snakemake.output.synthetic, images=new_images, targets=new_labels)
save_array(snakemake.output.indices, indices)
with atomic_write(snakemake.output.counts, "w") as f:
    summary.to_csv(f, sep="\t", index=False)
