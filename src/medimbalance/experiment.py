"""One training run from its arrays: the method's schedule (single phase, two-phase, one-class)
dispatched by name, for every task. ``workflow/scripts/train.py`` is the glue around it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .augment import build_augmenter, build_mixup
from .balancing import sample_weights
from .calibration import posthoc_logit_adjustment
from .config import RunConfig
from .losses import build_loss
from .models import build_model
from .one_class import one_class_logits, train_one_class
from .targets import TargetStats, target_stats
from .training import TensorSet, fine_tune_last_layer, fit, load_set, predict_logits

log = logging.getLogger(__name__)


@dataclass
class RunArrays:
    """The arrays of one run: the training split (memory-mapped images, all targets), the rows
    it trains on after resampling and before (the profile's), and the evaluation splits."""

    train_images: np.ndarray
    train_targets: np.ndarray
    rows: np.ndarray  # the resampled training set (rows of train_*)
    profile_rows: np.ndarray  # the imbalanced training set the profile kept
    val_images: np.ndarray
    val_targets: np.ndarray
    test_images: np.ndarray
    test_targets: np.ndarray
    synthetic_images: np.ndarray | None = None  # created by SMOTE or a GAN, appended to rows
    synthetic_targets: np.ndarray | None = None

    def has_synthetic(self) -> bool:
        return self.synthetic_targets is not None and len(self.synthetic_targets) > 0


def load_synthetic(path: str | Path) -> dict[str, np.ndarray]:
    """The new images of a run's resampling (``synthetic.npz``), as ``RunArrays`` fields."""
    with np.load(path) as archive:
        return {"synthetic_images": archive["images"], "synthetic_targets": archive["targets"]}


def num_outputs(task: str, meta: dict) -> int:
    """Network outputs: one per class or label, one for regression."""
    return 1 if task == "regression" else len(meta["classes"])


def run_training(
    run: RunConfig, arrays: RunArrays, meta: dict, device: torch.device, checkpoints: str | Path
) -> tuple[nn.Module, list[dict], dict[str, np.ndarray]]:
    """Train ``run`` and return its model, its history and raw outputs on the ``val`` and
    ``test`` splits. Checkpoints go to ``<checkpoints>_1.pt`` (and ``_2.pt`` for phase 2)."""
    spec, task, classes = run.spec, run.task, meta["classes"]
    a = arrays
    load = lambda images, targets, rows=None: load_set(  # noqa: E731
        images, targets, device, rows, task=task
    )
    if a.has_synthetic():  # real rows then synthetic images, preloaded together
        train_targets = np.concatenate([a.train_targets[a.rows], a.synthetic_targets])
        train = TensorSet.from_arrays(
            np.concatenate([a.train_images[a.rows], a.synthetic_images]), train_targets, device,
            task,
        )  # fmt: skip
        stats = target_stats(task, train_targets, np.arange(len(train)), len(classes))
    else:
        train = load(a.train_images, a.train_targets[a.rows], a.rows)
        stats = target_stats(task, a.train_targets, a.rows, len(classes))
    val, test = load(a.val_images, a.val_targets), load(a.test_images, a.test_targets)
    log.info("%s (%s) on %s: %d training samples (%s)", run.method, task, device, len(train),
             type(train).__name__)  # fmt: skip

    if spec.schedule == "one_class":  # one autoencoder per class; scores = −distance
        model, scorers, history = train_one_class(
            a.train_images, a.train_targets, a.rows, classes, run.training, run.seed,
            spec.measure, device,
        )  # fmt: skip
        return model, history, {k: one_class_logits(model, scorers, d) for k, d in
                                (("val", val), ("test", test))}  # fmt: skip

    model = build_model(
        spec.model, meta["channels"], num_outputs(task, meta), meta["spatial_shape"], spec.head
    ).to(device)

    def loss_for(stats: TargetStats) -> nn.Module:
        return build_loss(spec.loss, stats, **spec.loss_args).to(device)

    weights = None
    if spec.sampler != "none":
        weights = torch.from_numpy(sample_weights(train.labels.cpu().numpy(), len(classes),
                                                  spec.sampler, spec.sampler_beta))  # fmt: skip
    augment = build_augmenter(spec.augment, len(meta["spatial_shape"]), meta["channels"],
                              spec.augment_prob, task)  # fmt: skip
    phase = "pretrain" if spec.schedule == "two_phase" else "train"
    mix = build_mixup(spec.mixup, spec.mixup_alpha, len(classes))
    history = fit(model, loss_for(stats), train, val, run.training, run.seed, phase=phase,
                  checkpoint=f"{checkpoints}_1.pt", task=task, weights=weights,
                  augment=augment, mix=mix)  # fmt: skip
    if augment is not None:
        log.info("augmentation: %d samples; each transform fired at rates %s", augment.seen,
                 {k: round(v, 3) for k, v in augment.rates().items()})  # fmt: skip
    if spec.schedule == "two_phase":  # fine-tune the last layer on the imbalanced set
        stats = target_stats(task, a.train_targets, a.profile_rows, len(classes))
        imbalanced = load(a.train_images, a.train_targets[a.profile_rows], a.profile_rows)
        history += fine_tune_last_layer(model, loss_for(stats), imbalanced, val,
                                        run.training, run.seed, f"{checkpoints}_2.pt")  # fmt: skip
    outputs = {k: predict_logits(model, d).cpu().numpy() for k, d in (("val", val), ("test", test))}
    if spec.posthoc_tau:  # adjust by the prior of the set the model was last trained on
        outputs = {k: posthoc_logit_adjustment(v, stats.counts, spec.posthoc_tau) for k, v in
                   outputs.items()}  # fmt: skip
    return model, history, outputs


def load_trained_model(
    path: str | Path, data_meta: dict, device: torch.device | str = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """A run's saved network (``model.pt``) ready for inference on data described by
    ``data_meta``. Raises ``ValueError`` naming both when the model was trained on other
    classes, channels or image shapes, or is a one-class ensemble (no single network)."""
    blob = torch.load(path, map_location=device, weights_only=True)
    run, trained = RunConfig.from_dict(blob["run_config"]), blob["meta"]
    for key in ("classes", "channels", "spatial_shape"):
        if list(np.atleast_1d(trained[key])) != list(np.atleast_1d(data_meta[key])):
            raise ValueError(
                f"{path} was trained on {key} {trained[key]}, but the data has "
                f"{data_meta[key]}: evaluate a model on the dataset it was trained for"
            )
    if run.spec.schedule == "one_class":
        raise ValueError(f"{path} holds one autoencoder per class, not a single network")
    model = build_model(run.spec.model, trained["channels"], num_outputs(run.task, trained),
                        trained["spatial_shape"], run.spec.head)  # fmt: skip
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), run
