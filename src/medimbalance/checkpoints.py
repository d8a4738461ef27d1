"""Checkpoints: resumable training states, and the saved model files of finished runs.

A job that trains (a network, a GAN, one autoencoder per class) writes its state after every
epoch to ``.checkpoint_<phase>.pt`` in its output folder, and a rerun of the job continues from
there. A state is valid only for the run it was written by: each file stores the run's identity
(:func:`medimbalance.identity.run_identity`: its configuration values and the content of the
inputs it trains on), and a state with another identity is ignored, so a run whose settings or
data changed under the same name starts afresh instead of resuming someone else's training.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.io import atomic_write

log = logging.getLogger(__name__)


def _state_of(part: Any):
    return part.get_state() if isinstance(part, torch.Generator) else part.state_dict()


def _restore_into(part: Any, state) -> None:
    if isinstance(part, torch.Generator):
        part.set_state(state)
    else:
        part.load_state_dict(state)


class Checkpoints:
    """The resumable training states of one run: one file per training phase in ``folder``,
    each valid only for the run ``identity``.

    ``parts`` are what a phase restores: modules, optimizers, schedulers (anything with
    ``state_dict``) and ``torch.Generator`` streams, by name; torch's global random state is
    saved and restored with them. ``state`` is the loop's own bookkeeping (epoch, history, …).
    """

    def __init__(self, folder: str | Path, identity: str) -> None:
        self.folder, self.identity = Path(folder), identity

    def path(self, phase: str) -> Path:
        return self.folder / f".checkpoint_{re.sub(r'[^A-Za-z0-9_.-]', '_', phase)}.pt"

    def save(self, phase: str, parts: dict[str, Any], state: dict) -> None:
        """Write the state after an epoch (atomically: a kill never leaves half a file)."""
        blob = {
            "identity": self.identity,
            "phase": phase,
            "state": state,
            "parts": {name: _state_of(part) for name, part in parts.items()},
            "torch_rng": torch.get_rng_state(),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path(phase)) as f:
            torch.save(blob, f)

    def restore(self, phase: str, parts: dict[str, Any]) -> dict | None:
        """Load the saved state of ``phase`` into ``parts`` and return the loop's state; ``None``
        (nothing loaded) when there is none, or when it was written by another run."""
        path = self.path(phase)
        if not path.exists():
            return None
        blob = torch.load(path, weights_only=True)
        if blob.get("identity") != self.identity or blob.get("phase") != phase:
            log.info("ignoring %s: written by a run with other settings or data", path)
            return None
        for name, part in parts.items():
            _restore_into(part, blob["parts"][name])
        torch.set_rng_state(blob["torch_rng"])
        log.info("resumed %s from %s after epoch %s", phase, path, blob["state"].get("epoch"))
        return blob["state"]

    def clear(self) -> None:
        """Remove every training state of the folder (once the run's outputs are written)."""
        for path in self.folder.glob(".checkpoint_*.pt"):
            path.unlink()


def save_model(path: str | Path, model: nn.Module, run_config: dict, meta: dict) -> None:
    """Write a finished model (``model.pt``) atomically: weights, the run config and the dataset
    metadata (classes, channels, spatial shape) it was trained on."""
    with atomic_write(path) as f:
        torch.save({"state_dict": model.state_dict(), "run_config": run_config, "meta": meta}, f)


def load_model_file(path: str | Path, device: torch.device | str = "cpu") -> dict:
    """The contents of a file written by :func:`save_model` (weights on ``device``)."""
    return torch.load(path, map_location=device, weights_only=True)
