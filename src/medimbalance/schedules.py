"""Training schedules by name: how a run turns its training set into a model.

- ``single``: one phase on the (resampled) training set;
- ``two_phase``: pretrain on the resampled set, then fine-tune only the last layer on the
  original imbalanced set (Buda et al., "A systematic study of the class imbalance problem in
  convolutional neural networks", Neural Networks 2018);
- ``one_class``: one autoencoder per class; a sample's score for a class is minus its
  reconstruction distance (Banerjee 2018).

Each schedule maps a :class:`medimbalance.experiment.TrainingJob` to a :class:`TrainedRun`;
an unknown name is a ``ValueError`` listing these.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from .one_class import one_class_logits, train_one_class
from .registry import Registry
from .targets import TargetStats
from .training import fine_tune_last_layer, fit

if TYPE_CHECKING:
    from .experiment import TrainingJob

log = logging.getLogger(__name__)


@dataclass
class TrainedRun:
    """A schedule's result: the model, its history, its raw outputs on ``val`` and ``test``,
    and the statistics of the set it was last trained on (the prior of post-hoc logit
    adjustment; ``None`` when its outputs are not logits)."""

    model: nn.Module
    history: list[dict]
    outputs: dict[str, np.ndarray]
    stats: TargetStats | None = None


Schedule = Callable[["TrainingJob"], TrainedRun]
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
    transforms = job.batch_transforms(train)
    history = fit(
        model,
        job.loss(stats),
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
