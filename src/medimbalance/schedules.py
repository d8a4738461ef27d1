"""Training schedules by name: how a run turns its training set into a model.

- ``single``: one phase on the (resampled) training set;
- ``two_phase``: pretrain on the resampled set, then fine-tune only the last layer on the
  original imbalanced set (Buda et al., "A systematic study of the class imbalance problem in
  convolutional neural networks", Neural Networks 2018);
- ``one_class``: one autoencoder per class; a sample's score for a class is minus its
  reconstruction distance (Banerjee 2018);
- ``decoupled``: the trained network of another method (stage 1) with its classifier
  re-balanced on frozen features (stage 2, :mod:`medimbalance.decoupled`).

Each schedule maps a :class:`TrainingJob` (the run, its arrays, device and checkpoints) to a
:class:`TrainedRun`; an unknown name is a ``ValueError`` listing these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .adversarial import build_adversarial
from .augment import build_augmenter, build_mixup
from .balancing import sample_weights
from .checkpoints import Checkpoints
from .config import RunConfig
from .histograms import TRAINING_CASES, logit_histograms
from .losses import build_loss
from .models import build_model, num_outputs
from .one_class import one_class_logits, train_one_class
from .patches import CaseSet, FlipTTA, PatchSet, PatchSpec
from .pretrained import load_pretrained
from .registry import Registry
from .targets import TargetStats, target_stats
from .training import (
    MemmapSet,
    TensorSet,
    fine_tune_last_layer,
    fit,
    last_layer,
    load_set,
    predict_logits,
)

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


@dataclass
class TrainingJob:
    """What a schedule trains from: the run, its arrays, the dataset's metadata (``classes``,
    ``channels``, ``spatial_shape``), the device and where its checkpoints go."""

    run: RunConfig
    arrays: RunArrays
    meta: dict
    device: torch.device
    checkpoints: Checkpoints | None = None
    stage1: nn.Module | None = None  # decoupled: the stage-1 network
    val: TensorSet | MemmapSet | CaseSet = field(init=False)
    test: TensorSet | MemmapSet | CaseSet = field(init=False)
    patch: PatchSpec | None = field(init=False)  # the method's patches, if it trains on them

    def __post_init__(self) -> None:
        a = self.arrays
        self.patch = None
        if self.run.spec.patch:
            spatial = self.meta["spatial_shape"]
            self.patch = PatchSpec.from_dict(self.run.spec.patch, len(spatial), len(self.classes))
            self.val = self.cases("val", a.val_images, a.val_targets)
            self.test = self.cases("test", a.test_images, a.test_targets)
            return
        self.val = self.load(a.val_images, a.val_targets)
        self.test = self.load(a.test_images, a.test_targets)

    def sizes(self, split: str) -> list | None:
        """Each case's own size in the split's padded arrays (``None``: all the stored size)."""
        return self.meta.get("split_sizes", {}).get(split)

    def cases(self, split: str, images: np.ndarray, masks: np.ndarray, rows=None) -> CaseSet:
        """Whole cases of ``split`` (its file rows ``rows``, all by default) for
        sliding-window inference with the method's patches."""
        return CaseSet(images, masks, self.sizes(split), self.patch, self.device, rows=rows)

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    def load(self, images, targets, rows=None) -> TensorSet | MemmapSet:
        """``images[rows]`` with their ``targets`` on the job's device (see ``load_set``)."""
        return load_set(images, targets, self.device, rows, task=self.run.task)

    def stats(self, rows: np.ndarray) -> TargetStats:
        """Target statistics of the training rows ``rows`` (the re-weighting losses' input)."""
        return target_stats(
            self.run.task, self.arrays.train_targets, rows, len(self.classes), self.sizes("train")
        )

    def training_set(self) -> tuple[TensorSet | MemmapSet, TargetStats]:
        """The (resampled) training set and its statistics: the real rows and, after SMOTE or a
        GAN, the synthetic images appended (preloaded together)."""
        a, task = self.arrays, self.run.task
        if self.patch is not None:
            train = PatchSet(
                a.train_images,
                a.train_targets,
                a.rows,
                self.sizes("train"),
                self.patch,
                len(self.classes),
                self.device,
                self.run.seed,
            )
            return train, self.stats(a.rows)
        if not a.has_synthetic():
            return self.load(a.train_images, a.train_targets[a.rows], a.rows), self.stats(a.rows)
        targets = np.concatenate([a.train_targets[a.rows], a.synthetic_targets])
        images = np.concatenate([a.train_images[a.rows], a.synthetic_images])
        train = TensorSet.from_arrays(images, targets, self.device, task)
        return train, target_stats(task, targets, np.arange(len(train)), len(self.classes))

    def network(self) -> nn.Module:
        """The method's network for this dataset, on the device (drawn from torch's seeded
        global random state), started from the method's ``pretrained`` checkpoint if it names
        one (its output layer re-initialised for this class count)."""
        spec, meta = self.run.spec, self.meta
        model = build_model(
            spec.model,
            meta["channels"],
            num_outputs(self.run.task, meta),
            self.patch.size if self.patch else meta["spatial_shape"],  # what the network sees
            head=spec.head,
        )
        if spec.pretrained:
            head = last_layer(model) if self.run.task != "segmentation" else None
            load_pretrained(model, **spec.pretrained, head=head)
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
            randaugment=(spec.randaugment_n, spec.randaugment_m),
        )
        mix = None
        if spec.mixup != "none":
            counts, balanced = None, None
            if self.run.task in ("multiclass", "binary"):
                labels = train.labels.cpu().numpy()
                counts = np.bincount(labels, minlength=len(self.classes))
                draws = sample_weights(labels, len(self.classes), "class_balanced")
                balanced = torch.from_numpy(draws)
            mix = build_mixup(
                spec.mixup,
                spec.mixup_alpha,
                len(self.classes),
                self.run.task,
                train,
                counts,
                balanced,
            )
        adversarial = build_adversarial(spec.adversarial, spec.adversarial_eps, spec.adversarial_xi)
        return {
            "sampler_weights": weights,
            "augment": augment,
            "mix": mix,
            "adversarial": adversarial,
        }

    def logit_histograms(self, model: nn.Module) -> dict[str, np.ndarray]:
        """Segmentation: the histograms of every class's logit over its voxels on the
        profile's training images (at most ``TRAINING_CASES`` whole cases for a method on
        patches) and on the test split (:mod:`medimbalance.histograms`)."""
        a, n = self.arrays, len(self.classes)
        if self.patch is not None:
            rows = a.profile_rows[:TRAINING_CASES]
            train = self.cases("train", a.train_images, a.train_targets, rows)
        else:
            train = self.load(a.train_images, a.train_targets[a.profile_rows], a.profile_rows)
        return {
            "training": logit_histograms(model, train, n),
            "test": logit_histograms(model, self.test, n),
        }

    def tta_outputs(self, model: nn.Module) -> np.ndarray:
        """Segmentation with ``evaluation.tta: flips``: the test split's outputs averaged over
        flips (:class:`medimbalance.patches.FlipTTA`), label maps for a method on patches."""
        wrapped = FlipTTA(model).eval()
        if self.patch is not None:
            return self.test.predicted_labels(wrapped)
        return predict_logits(wrapped, self.test).cpu().numpy()

    def outputs(self, model: nn.Module) -> dict[str, np.ndarray]:
        """The model's raw outputs on the validation and test splits (a patch method's: the
        label maps of whole cases inferred by sliding windows, uint8)."""
        splits = (("val", self.val), ("test", self.test))
        if self.patch is not None:
            return {split: data.predicted_labels(model) for split, data in splits}
        return {split: predict_logits(model, data).cpu().numpy() for split, data in splits}


@dataclass
class TrainedRun:
    """A schedule's result: the model, its history, its raw outputs on ``val`` and ``test``,
    and the statistics of the set it was last trained on (the prior of post-hoc logit
    adjustment; ``None`` when its outputs are not logits)."""

    model: nn.Module
    history: list[dict]
    outputs: dict[str, np.ndarray]
    stats: TargetStats | None = None
    head: str | None = None  # the output layer's kind when it is not the method's ``head``


Schedule = Callable[[TrainingJob], TrainedRun]
SCHEDULES: Registry[Schedule] = Registry("schedule")


def _train_network(job: TrainingJob, phase: str) -> tuple[nn.Module, list[dict], TargetStats]:
    """The method's network trained on the job's (resampled) training set, as ``phase``."""
    train, stats = job.training_set()
    run, kind = job.run, type(train).__name__
    log.info(
        "%s (%s) on %s: %d training samples (%s)",
        run.method,
        run.task,
        job.device,
        len(train),
        kind,
    )
    model = job.network()
    loss = job.loss(stats)
    start_bias(model, loss)
    transforms = job.batch_transforms(train)
    history = fit(
        model,
        loss,
        train,
        job.val,
        job.run.training,
        job.run.seed,
        task=job.run.task,
        phase=phase,
        checkpoints=job.checkpoints,
        **transforms,
    )
    augment = transforms["augment"]
    if augment is not None:
        rates = {k: round(v, 3) for k, v in augment.rates().items()}
        log.info("augmentation: %d samples; each transform fired at rates %s", augment.seen, rates)
    return model, history, stats


def start_bias(model: nn.Module, loss: nn.Module) -> None:
    """Set the output layer's bias to the value the loss starts from (``initial_bias``, e.g.
    the prior bias of Cui et al.'s sigmoid losses), where it names one and the layer has a
    bias (a cosine classifier has none)."""
    initial = getattr(loss, "initial_bias", None)
    if initial is None:
        return
    bias = getattr(last_layer(model), "bias", None)
    value = None if bias is None else initial(bias.shape[0])
    if value is not None:
        with torch.no_grad():
            bias.fill_(value)


@SCHEDULES.register("single")
def single(job: TrainingJob) -> TrainedRun:
    """One phase on the (resampled) training set."""
    model, history, stats = _train_network(job, "train")
    return TrainedRun(model, history, job.outputs(model), stats)


@SCHEDULES.register("two_phase")
def two_phase(job: TrainingJob) -> TrainedRun:
    """Pretrain on the resampled set, then fine-tune the last layer on the imbalanced one."""
    model, history, _ = _train_network(job, "pretrain")
    a = job.arrays
    stats = job.stats(a.profile_rows)
    imbalanced = job.load(a.train_images, a.train_targets[a.profile_rows], a.profile_rows)
    history += fine_tune_last_layer(
        model,
        job.loss(stats),
        imbalanced,
        job.val,
        job.run.training,
        job.run.seed,
        task=job.run.task,
        checkpoints=job.checkpoints,
    )
    return TrainedRun(model, history, job.outputs(model), stats)


@SCHEDULES.register("decoupled")
def decoupled(job: TrainingJob) -> TrainedRun:
    """Stage 2 of a decoupled method on the stage-1 network (:mod:`medimbalance.decoupled`);
    the prior is the profile's (the set stage 2 learns from)."""
    from .decoupled import train_stage2

    model, history, head = train_stage2(job)
    stats = job.stats(job.arrays.profile_rows)
    return TrainedRun(model, history, job.outputs(model), stats, head)


@SCHEDULES.register("one_class")
def one_class(job: TrainingJob) -> TrainedRun:
    """One autoencoder per class, each on that class's training images; scores are minus the
    reconstruction distances under the method's error measure."""
    a = job.arrays
    models, scorers, history = train_one_class(
        a.train_images,
        a.train_targets,
        a.rows,
        classes=job.classes,
        cfg=job.run.training,
        seed=job.run.seed,
        measure=job.run.spec.measure,
        task=job.run.task,
        device=job.device,
        checkpoints=job.checkpoints,
    )
    outputs = {
        split: one_class_logits(models, scorers, data)
        for split, data in (("val", job.val), ("test", job.test))
    }
    return TrainedRun(models, history, outputs)
