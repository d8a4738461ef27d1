"""Bar chart of the training images per class before and after imposing a profile."""

import _libpath  # noqa: F401

import pandas as pd

from medimbalance.jobs.logs import log_to_file
from medimbalance.figures import plot_class_distribution

log = log_to_file(snakemake.log[0])
counts = pd.read_csv(snakemake.input.counts, sep="\t")
title = f"{snakemake.wildcards.dataset} / {snakemake.wildcards.profile}"
plot_class_distribution(counts, title, snakemake.output.figure, snakemake.params.task)
