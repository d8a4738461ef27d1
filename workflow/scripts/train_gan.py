"""Train the generative model of one dataset × profile × method (the conditional DCGAN of
``cdcgan``, the class-conditional diffusion model of ``diffusion``) on the profile's real
training images; measure its images (FID, train-on-synthetic/test-on-real) and draw a sample
grid. On segmentation data the diffusion model is conditioned on the masks: it is measured by
the intensity of each label and the Dice of a network trained on its image–mask pairs, and the
grid shows pairs. On multi-label data it is conditioned on the findings vectors, measured by
FID per finding and the AUROC of a classifier trained on its images, and the grid shows one row
per finding (images generated with that finding alone).

A checkpoint after every epoch lets a killed job resume (valid only for the same settings and
training images)."""

import _libpath  # noqa: F401

from pathlib import Path

import numpy as np

from medimbalance.checkpoints import Checkpoints
from medimbalance.config import TrainConfig
from medimbalance.data.io import atomic_write, load_array, read_json, write_json
from medimbalance.features import load_extractor
from medimbalance.diffusion import (
    DiffusionConfig,
    findings_quality,
    generation_masks,
    pair_quality,
    train_diffusion,
)
from medimbalance.gan import GanConfig, synthesis_quality, train_gan
from medimbalance.identity import run_identity
from medimbalance.jobs.logs import log_to_file
from medimbalance.display import html_table_page
from medimbalance.figures import plot_pair_grid, plot_sample_grid
from medimbalance.reporting import (
    findings_synthesis_markdown,
    pair_synthesis_markdown,
    synthesis_markdown,
)
from medimbalance.jobs.runtime import configure, select_device
from medimbalance.training import log_epoch

log = log_to_file(snakemake.log[0])
inp, out, wc = snakemake.input, snakemake.output, snakemake.wildcards
settings = dict(snakemake.params.gan)
tstr_per_class = settings.pop("tstr_per_class", 100)
kind = snakemake.params.kind
cfg = (DiffusionConfig if kind == "diffusion" else GanConfig).from_dict(settings)
train = train_diffusion if kind == "diffusion" else train_gan
configure(cfg.seed, snakemake.threads)
device = select_device()
meta = read_json(inp.meta)
classes, task = meta["classes"], meta["task"]
pairs = task == "segmentation"  # image–mask pairs: a diffusion model conditioned on the masks
findings = task == "multilabel"  # a diffusion model conditioned on the findings vectors
condition = "mask" if pairs else "findings" if findings else None
rows = load_array(inp.indices)
images = load_array(inp.train_images, mmap=True)[rows]
labels = load_array(inp.train_targets, mmap=True)[rows]

# The checkpoint is valid for these settings and the images the GAN learns from.
learns_from = {k: inp[k] for k in ("indices", "train_images", "train_targets")}
checkpoints = Checkpoints(Path(out.generator).parent, run_identity(cfg.settings(), learns_from))
gan, history = train(
    images,
    labels,
    len(classes),
    cfg,
    device=device,
    checkpoints=checkpoints,
    on_epoch_end=log_epoch,
    **({"condition": condition} if condition else {}),
)
gan.save(out.generator)
write_json(out.history, {"epochs": history})

tstr = snakemake.params.tstr
title = f"{wc.method} on {wc.dataset} / {wc.profile}"
test = load_array(inp.test_images, mmap=True), load_array(inp.test_targets)
if pairs:
    val = load_array(inp.val_images, mmap=True), load_array(inp.val_targets)
    quality = pair_quality(
        gan,
        (images, labels),
        val,
        test,
        classes=classes,
        cfg=TrainConfig(**tstr["training"]),
        seed=cfg.seed,
        model_name=tstr["model"],
        device=device,
    )
    quality_table = pair_synthesis_markdown(
        quality, len(labels), classes, title, len(history), gan.description
    )
elif findings:
    quality = findings_quality(
        gan,
        load_extractor(inp.extractor, device),
        test,
        labels,
        classes=classes,
        cfg=TrainConfig(**tstr["training"]),
        seed=cfg.seed,
        tstr_per_class=tstr_per_class,
        model_name=tstr["model"],
        device=device,
    )
    quality_table = findings_synthesis_markdown(
        quality, labels, classes, title, len(history), tstr_per_class, gan.description
    )
else:
    quality = synthesis_quality(
        gan,
        load_extractor(inp.extractor, device),
        *test,
        classes=classes,
        cfg=TrainConfig(**tstr["training"]),
        seed=cfg.seed,
        tstr_per_class=tstr_per_class,
        task=task,
        model_name=tstr["model"],
        device=device,
    )
    quality_table = synthesis_markdown(
        quality, labels, classes, title, len(history), tstr_per_class, model=gan.description
    )
log.info("quality: %s", quality)
with atomic_write(out.quality, "w") as f:
    f.write(quality_table)
with atomic_write(out.quality_html, "w") as f:  # read inside the HTML report
    f.write(html_table_page(quality_table, title))
value_range = (gan.intensity.lo, gan.intensity.hi)
# Beside them, real training images (the first ones of a seeded draw).
draw = np.random.default_rng(cfg.seed).permutation(len(labels))
if pairs:
    # 8 real training pairs, then images generated for the same masks and for 8 new ones.
    shown = np.sort(draw[:8])
    real_masks = np.asarray(labels[shown])
    new_masks = generation_masks(labels, len(classes), 8 / len(labels), cfg.seed)
    rows_shown = [
        ("real", np.asarray(images[shown]), real_masks),
        ("generated,\nsame masks", gan.sample(real_masks, cfg.seed), real_masks),
        ("generated,\nnew masks", gan.sample(new_masks, cfg.seed + 1), new_masks),
    ]
    figure_title = f"{title}: real training pairs and generated images with their masks"
    plot_pair_grid(rows_shown, classes, value_range, figure_title, out.samples)
elif findings:
    # Per finding: real training images with it, and images generated with it alone.
    alone = np.repeat(np.eye(len(classes), dtype=np.uint8), 8, axis=0)
    grid = gan.sample(alone, cfg.seed)
    real = [images[draw[labels[draw, k] == 1][:4]] for k in range(len(classes))]
    figure_title = f"{title}: real training images with each finding and generated ones with it"
    plot_sample_grid(grid, classes, value_range, figure_title, out.samples, real=real)
else:
    grid = gan.sample(np.repeat(np.arange(len(classes)), 8), cfg.seed)
    real = [images[draw[labels[draw] == c][:4]] for c in range(len(classes))]
    figure_title = f"{title}: real training images and generated ones per class"
    plot_sample_grid(grid, classes, value_range, figure_title, out.samples, real=real)
checkpoints.clear()
