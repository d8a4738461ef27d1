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


# Training images up to this size (as float32) are moved to the device once; larger sets are
# read from their memory-mapped files batch by batch, so memory stays bounded.
PRELOAD_LIMIT_BYTES = 2 * 1024**3


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """Images as float32 on ``device``: uint8 scaled to ``[-1, 1]`` (MedMNIST's
    ``Normalize(0.5, 0.5)``); float images (already normalised) unchanged."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device=device, dtype=torch.float32)
    return x.div_(255.0).sub_(0.5).div_(0.5) if images.dtype == np.uint8 else x


@dataclass
class TensorSet:
    """Images ``(N, C, *spatial)`` float32 and labels ``(N,)`` int64, moved to the device once."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray, device: torch.device) -> TensorSet:
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
        return cls(to_tensor(images, device), y)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        return self.images[idx]

    def __len__(self) -> int:
        return int(self.labels.numel())


@dataclass
class MemmapSet:
    """Images stay in their memory-mapped ``.npy`` file; each batch is read, scaled and moved
    when needed (bounded memory). ``rows[i]`` is the file row of sample ``i`` (repeats allowed,
    as after oversampling); labels ``(N,)`` live on the device."""

    images: np.ndarray
    rows: np.ndarray
    labels: torch.Tensor

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        return to_tensor(self.images[self.rows[idx.cpu().numpy()]], self.labels.device)

    def __len__(self) -> int:
        return int(self.labels.numel())


def load_set(
    images: np.ndarray,
    labels: np.ndarray,
    device: torch.device,
    rows: np.ndarray | None = None,
    preload_limit: int = PRELOAD_LIMIT_BYTES,
) -> TensorSet | MemmapSet:
    """The samples ``images[rows]`` (all rows by default) with their ``labels``: preloaded on
    the device when they fit in ``preload_limit`` bytes as float32, else streamed from disk."""
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    row_bytes = 4 * int(np.prod(images.shape[1:]))
    if len(rows) * row_bytes <= preload_limit:
        return TensorSet.from_arrays(images[rows], labels, device)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    return MemmapSet(images, rows, y)


def train_one_epoch(
    model: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: TensorSet | MemmapSet,
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
        loss = loss_fn(model(data.batch(idx)), data.labels[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, batch {batch}")
        loss.backward()
        optimizer.step()
        total += loss.item() * idx.numel()
        seen += idx.numel()
    return total / seen


@torch.no_grad()
def predict_logits(
    model: nn.Module, data: TensorSet | MemmapSet, batch_size: int = 512
) -> torch.Tensor:
    """Logits ``(N, K)`` for every sample of ``data``, in order, in evaluation mode."""
    model.eval()
    order = torch.arange(len(data), device=data.labels.device)
    return torch.cat(
        [model(data.batch(order[s : s + batch_size])) for s in range(0, len(data), batch_size)]
    )


def evaluate(model: nn.Module, loss_fn: nn.Module, data: TensorSet | MemmapSet) -> dict:
    """Validation loss, accuracy and balanced accuracy."""
    logits = predict_logits(model, data)
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
    train: TensorSet | MemmapSet,
    val: TensorSet | MemmapSet,
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
