"""Checkpoints: resumable training states, and the saved model files of finished runs.

A job that trains (a network, a GAN, one autoencoder per class) writes its state after every
epoch to ``.checkpoint_<phase>.pt`` in its output folder, and a rerun of the job continues from
there. A state is valid only for the run it was written by: each file stores the run's identity
(:func:`medimbalance.identity.run_identity`: its configuration values and the content of the
inputs it trains on, and the library's code), and a state with another identity is discarded,
so a run whose settings, data or code changed under the same name starts afresh instead of
resuming someone else's training. So is a state that cannot be read (a file truncated by a full
disk): each with a log line saying which file and why.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data.io import atomic_write, unreadable

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
        (nothing loaded) when there is none. A state written by another run, or one that cannot
        be read or restored, is deleted (logged) and the phase starts afresh."""
        path = self.path(phase)
        if not path.exists():
            return None
        try:
            blob = torch.load(path, weights_only=True)
        except Exception as error:  # truncated or garbled: pickle, zip and torch errors alike
            return self._discard(path, f"it cannot be read ({type(error).__name__}: {error})")
        if not isinstance(blob, dict) or blob.get("phase") != phase:
            return self._discard(path, "it is not a training state of this phase")
        if blob.get("identity") != self.identity:
            return self._discard(
                path, "it was written by a run with other settings, data or library code"
            )
        try:
            for name, part in parts.items():
                _restore_into(part, blob["parts"][name])
        except (KeyError, RuntimeError, ValueError) as error:
            return self._discard(path, f"its state does not fit this run ({error})")
        torch.set_rng_state(blob["torch_rng"])
        log.info("resumed %s from %s after epoch %s", phase, path, blob["state"].get("epoch"))
        return blob["state"]

    @staticmethod
    def _discard(path: Path, why: str) -> None:
        log.warning("discarding %s and starting this phase afresh: %s", path, why)
        path.unlink(missing_ok=True)
        return None

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
    """The contents of a file written by :func:`save_model` (weights on ``device``);
    :class:`~medimbalance.data.io.UnreadableFileError` names a file that cannot be read."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:
        raise unreadable(path, f"{type(error).__name__}: {error}") from error
    if not isinstance(blob, dict) or "state_dict" not in blob:
        raise unreadable(path, "it is not a model file written by this workflow")
    return blob
