"""One training run end to end: the method's schedule (:mod:`medimbalance.schedules`) by name,
post-hoc logit adjustment, and the saved model read back for inference.
``workflow/scripts/train.py`` is the glue around it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .calibration import posthoc_logit_adjustment
from .checkpoints import load_model_file
from .config import RunConfig
from .data.io import load_npz
from .models import build_model, num_outputs
from .schedules import SCHEDULES, TrainedRun, TrainingJob


def load_synthetic(path: str | Path) -> dict[str, np.ndarray]:
    """The new images of a run's resampling (``synthetic.npz``), as ``RunArrays`` fields."""
    arrays = load_npz(path, ("images", "targets"))
    return {"synthetic_images": arrays["images"], "synthetic_targets": arrays["targets"]}


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
    classes, channels or image shapes (any shape for a network trained on patches), or is a
    one-class ensemble (no single network)."""
    blob = load_model_file(path, device)
    run, trained = RunConfig.from_dict(blob["run_config"]), blob["meta"]
    # A network trained on patches infers any case size by sliding windows.
    keys = ("classes", "channels") if run.spec.patch else ("classes", "channels", "spatial_shape")
    for key in keys:
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
        run.spec.patch.get("size") or trained["spatial_shape"],
        head=trained.get("head") or run.spec.head,  # stage 2 of a decoupled method sets it
    )
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval(), run
