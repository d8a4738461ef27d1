"""The training loop: hook-shaped, data preloaded on the device, seeded batch order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from torch import nn

from .config import TrainConfig
from .data.io import atomic_write

log = logging.getLogger(__name__)


@dataclass
class TensorSet:
    """Images ``(N, C, H, W)`` float32 and labels ``(N,)`` int64, already on the device."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_uint8(cls, images: np.ndarray, labels: np.ndarray, device: torch.device) -> TensorSet:
        """Scale uint8 images to ``[-1, 1]`` (MedMNIST's ``Normalize(0.5, 0.5)``), move once."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device=device, dtype=torch.float32)
        x = x.div_(255.0).sub_(0.5).div_(0.5)
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
        return cls(x, y)

    def __len__(self) -> int:
        return int(self.labels.numel())


def train_one_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TensorSet,
    batch_size: int,
    generator: torch.Generator,
    epoch: int,
) -> float:
    """One pass in a seeded random order; returns the mean training loss.

    Raises ``FloatingPointError`` naming the epoch and batch when the loss is NaN or infinite.
    """
    model.train()
    order = torch.randperm(len(data), generator=generator).to(data.labels.device)
    total, seen = 0.0, 0
    for batch, start in enumerate(range(0, len(data), batch_size)):
        idx = order[start : start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(data.images[idx]), data.labels[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, batch {batch}")
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
        seen += idx.numel()
    return total / seen


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits ``(N, K)`` for images ``(N, C, H, W)``, in evaluation mode."""
    model.eval()
    return torch.cat([model(images[s : s + batch_size]) for s in range(0, len(images), batch_size)])


def evaluate(model: nn.Module, loss_fn: nn.Module, data: TensorSet) -> dict:
    """Validation loss, accuracy and balanced accuracy."""
    logits = predict_logits(model, data.images)
    predicted = logits.argmax(1).cpu().numpy()
    targets = data.labels.cpu().numpy()
    return {
        "val_loss": float(loss_fn(logits, data.labels)),
        "val_accuracy": float((predicted == targets).mean()),
        "val_balanced_accuracy": float(balanced_accuracy_score(targets, predicted)),
    }


def log_epoch(record: dict) -> None:
    """Default ``on_epoch_end`` hook: one progress line per epoch."""
    log.info(
        " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
    )


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    train: TensorSet,
    val: TensorSet,
    cfg: TrainConfig,
    seed: int,
    on_epoch_end: Callable[[dict], None] = log_epoch,
) -> list[dict]:
    """Train ``model`` with Adam for ``cfg.epochs`` epochs; returns the per-epoch history."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        train_loss = train_one_epoch(
            model, loss_fn, optimizer, train, cfg.batch_size, generator, epoch
        )
        record = {"epoch": epoch, "train_loss": train_loss, **evaluate(model, loss_fn, val)}
        history.append(record)
        on_epoch_end(record)
    return history


def save_checkpoint(path: str, model: nn.Module, run_config: dict, meta: dict) -> None:
    """Write ``model.pt`` atomically: weights plus the run config and dataset metadata."""
    with atomic_write(path) as f:
        torch.save({"state_dict": model.state_dict(), "run_config": run_config, "meta": meta}, f)
