"""One training run from its arrays: the method's schedule (:mod:`medimbalance.schedules`) by
name, for every task, and the saved model read back for inference.
``workflow/scripts/train.py`` is the glue around it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .augment import build_augmenter, build_mixup
from .balancing import sample_weights
from .calibration import posthoc_logit_adjustment
from .checkpoints import Checkpoints, load_model_file
from .config import RunConfig
from .losses import build_loss
from .models import build_model
from .schedules import SCHEDULES, TrainedRun
from .targets import TargetStats, target_stats
from .training import MemmapSet, TensorSet, load_set, predict_logits

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


@dataclass
class TrainingJob:
    """What a schedule trains from: the run, its arrays, the dataset's metadata (``classes``,
    ``channels``, ``spatial_shape``), the device and where its checkpoints go."""

    run: RunConfig
    arrays: RunArrays
    meta: dict
    device: torch.device
    checkpoints: Checkpoints | None = None
    val: TensorSet | MemmapSet = field(init=False)
    test: TensorSet | MemmapSet = field(init=False)

    def __post_init__(self) -> None:
        a = self.arrays
        self.val = self.load(a.val_images, a.val_targets)
        self.test = self.load(a.test_images, a.test_targets)

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    def load(self, images, targets, rows=None) -> TensorSet | MemmapSet:
        """``images[rows]`` with their ``targets`` on the job's device (see ``load_set``)."""
        return load_set(images, targets, self.device, rows, task=self.run.task)

    def stats(self, rows: np.ndarray) -> TargetStats:
        """Target statistics of the training rows ``rows`` (the re-weighting losses' input)."""
        return target_stats(self.run.task, self.arrays.train_targets, rows, len(self.classes))

    def training_set(self) -> tuple[TensorSet | MemmapSet, TargetStats]:
        """The (resampled) training set and its statistics: the real rows and, after SMOTE or a
        GAN, the synthetic images appended (preloaded together)."""
        a, task = self.arrays, self.run.task
        if not a.has_synthetic():
            return self.load(a.train_images, a.train_targets[a.rows], a.rows), self.stats(a.rows)
        targets = np.concatenate([a.train_targets[a.rows], a.synthetic_targets])
        images = np.concatenate([a.train_images[a.rows], a.synthetic_images])
        train = TensorSet.from_arrays(images, targets, self.device, task)
        return train, target_stats(task, targets, np.arange(len(train)), len(self.classes))

    def network(self) -> nn.Module:
        """The method's network for this dataset, on the device (drawn from torch's seeded
        global random state)."""
        spec, meta = self.run.spec, self.meta
        model = build_model(
            spec.model,
            meta["channels"],
            num_outputs(self.run.task, meta),
            meta["spatial_shape"],
            head=spec.head,
        )
        return model.to(self.device)

    def loss(self, stats: TargetStats) -> nn.Module:
        """The method's loss for a training set described by ``stats``."""
        spec = self.run.spec
        return build_loss(spec.loss, stats, **spec.loss_args).to(self.device)

    def batch_transforms(self, train: TensorSet | MemmapSet) -> dict:
        """The method's sampler weights, augmentation and mixup for ``train`` (``fit`` keywords)."""
        spec, meta = self.run.spec, self.meta
        weights = None
        if spec.sampler != "none":
            labels = train.labels.cpu().numpy()
            draws = sample_weights(labels, len(self.classes), spec.sampler, spec.sampler_beta)
            weights = torch.from_numpy(draws)
        augment = build_augmenter(
            spec.augment,
            spatial_dims=len(meta["spatial_shape"]),
            channels=meta["channels"],
            prob=spec.augment_prob,
            task=self.run.task,
        )
        mix = build_mixup(spec.mixup, spec.mixup_alpha, len(self.classes))
        return {"sampler_weights": weights, "augment": augment, "mix": mix}

    def outputs(self, model: nn.Module) -> dict[str, np.ndarray]:
        """The model's raw outputs on the validation and test splits."""
        splits = (("val", self.val), ("test", self.test))
        return {split: predict_logits(model, data).cpu().numpy() for split, data in splits}


def run_training(job: TrainingJob) -> TrainedRun:
    """Train ``job.run`` by its method's schedule; with ``posthoc_tau``, its outputs are
    logit-adjusted by the prior of the set it was last trained on."""
    schedule = SCHEDULES.get(job.run.spec.schedule)
    trained = schedule(job)
    tau = job.run.spec.posthoc_tau
    if tau and trained.stats is None:
        raise ValueError(f"posthoc_tau: schedule {job.run.spec.schedule!r} does not give logits")
    if tau:
        trained.outputs = {
            split: posthoc_logit_adjustment(logits, trained.stats.counts, tau)
            for split, logits in trained.outputs.items()
        }
    return trained


def load_trained_model(
    path: str | Path, data_meta: dict, device: torch.device | str = "cpu"
) -> tuple[nn.Module, RunConfig]:
    """A run's saved network (``model.pt``) ready for inference on data described by
    ``data_meta``. Raises ``ValueError`` naming both when the model was trained on other
    classes, channels or image shapes, or is a one-class ensemble (no single network)."""
    blob = load_model_file(path, device)
    run, trained = RunConfig.from_dict(blob["run_config"]), blob["meta"]
    for key in ("classes", "channels", "spatial_shape"):
        if list(np.atleast_1d(trained[key])) != list(np.atleast_1d(data_meta[key])):
            raise ValueError(
                f"{path} was trained on {key} {trained[key]}, but the data has "
                f"{data_meta[key]}: evaluate a model on the dataset it was trained for"
            )
    if run.spec.schedule == "one_class":
        raise ValueError(f"{path} holds one autoencoder per class, not a single network")
    model = build_model(
        run.spec.model,
        trained["channels"],
        num_outputs(run.task, trained),
        trained["spatial_shape"],
        head=run.spec.head,
    )
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), run
