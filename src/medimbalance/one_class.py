"""One-class learning: one autoencoder per class; a sample goes to the class whose autoencoder
reconstructs it best (the one-class scheme Banerjee (2018) describes for imbalanced medical
images), by a configured error measure."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from monai.networks.nets import AutoEncoder
from sklearn.covariance import LedoitWolf
from torch import nn

from .checkpoints import Checkpoints
from .config import TrainConfig
from .optim import build_optimizer, build_scheduler
from .training import (
    MemmapSet,
    TensorSet,
    check_divergence,
    forward,
    load_set,
    log_epoch,
    ordered_batches,
    train_one_epoch,
)

MEASURES = ("absolute", "squared", "euclidean", "mahalanobis")


def build_autoencoder(channels: int, spatial_dims: int) -> nn.Module:
    """A small MONAI convolutional autoencoder (16/32 channels, stride 2, residual units)."""
    return AutoEncoder(
        spatial_dims=spatial_dims,
        in_channels=channels,
        out_channels=channels,
        channels=(16, 32),
        strides=(2, 2),
        num_res_units=1,
    )


def fit_autoencoder(
    model: nn.Module,
    data: TensorSet | MemmapSet,
    cfg: TrainConfig,
    seed: int,
    *,
    name: str = "autoencoder",
    checkpoints: Checkpoints | None = None,
    on_epoch_end: Callable[[dict], None] = log_epoch,
) -> list[dict]:
    """Train ``model`` to reconstruct the images of ``data`` (mean squared error); with
    ``checkpoints``, the state after every epoch is saved as phase ``name`` and resumed."""
    optimizer = build_optimizer(cfg, model.parameters())
    scheduler = build_scheduler(cfg, optimizer)
    generator = torch.Generator().manual_seed(seed)
    parts = dict(model=model, optimizer=optimizer, scheduler=scheduler, generator=generator)
    state = {"epoch": 0, "history": [], "initial_loss": None}
    if checkpoints is not None:
        state = checkpoints.restore(name, parts) or state
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        batch_losses = []
        loss = train_one_epoch(
            model,
            nn.MSELoss(),
            optimizer,
            data,
            batch_size=cfg.batch_size,
            generator=generator,
            epoch=epoch,
            reconstruct=True,
            batch_losses=batch_losses,
        )
        if state["initial_loss"] is None:
            state["initial_loss"] = batch_losses[0]
        check_divergence(
            f"phase {name}, epoch {epoch}", loss, state["initial_loss"], model.parameters(), cfg
        )
        scheduler.step()
        state["history"].append({"phase": name, "epoch": epoch, "train_loss": loss})
        state["epoch"] = epoch
        if checkpoints is not None:
            checkpoints.save(name, parts, state)
        on_epoch_end(state["history"][-1])
    return state["history"]


@torch.no_grad()
def reconstruction_errors(
    model: nn.Module, data: TensorSet | MemmapSet, batch_size: int = 256
) -> np.ndarray:
    """Per-sample error images ``x − x̂``, flattened: ``(N, C·H·W)`` float64."""
    model.eval()
    out = [(x - forward(model, x)).flatten(1) for x in ordered_batches(data, batch_size)]
    return torch.cat(out).double().cpu().numpy()


class OneClassScorer:
    """Turns reconstruction errors into one distance per sample under a measure.

    ``absolute``: mean |e|; ``squared``: mean e²; ``euclidean``: ‖e‖₂; ``mahalanobis``:
    √(eᵀ Σ⁻¹ e) with Σ the Ledoit–Wolf shrunk covariance of the class's training errors.
    """

    def __init__(self, measure: str, train_errors: np.ndarray) -> None:
        if measure not in MEASURES:
            raise ValueError(
                f"unknown error measure {measure!r}; valid choices: {', '.join(MEASURES)}"
            )
        self.measure = measure
        if measure == "mahalanobis":
            estimate = LedoitWolf().fit(train_errors)
            self.mean, self.precision = estimate.location_, estimate.precision_

    def __call__(self, errors: np.ndarray) -> np.ndarray:
        if self.measure == "absolute":
            return np.abs(errors).mean(1)
        if self.measure == "squared":
            return (errors**2).mean(1)
        if self.measure == "euclidean":
            return np.sqrt((errors**2).sum(1))
        centred = errors - self.mean
        return np.sqrt(np.einsum("nd,de,ne->n", centred, self.precision, centred))


def one_class_logits(
    models: Sequence[nn.Module], scorers: Sequence[OneClassScorer], data: TensorSet | MemmapSet
) -> np.ndarray:
    """Scores ``(N, C)``: minus each class's reconstruction distance, so the arg-max is the
    class whose autoencoder reconstructs the sample best."""
    return -np.stack(
        [s(reconstruction_errors(m, data)) for m, s in zip(models, scorers, strict=True)], 1
    )


def train_one_class(
    images: np.ndarray,
    targets: np.ndarray,
    rows: np.ndarray,
    *,
    classes: Sequence[str],
    cfg: TrainConfig,
    seed: int,
    measure: str,
    task: str,
    device: torch.device,
    checkpoints: Checkpoints | None = None,
) -> tuple[nn.ModuleList, list[OneClassScorer], list[dict]]:
    """One autoencoder per class, each trained on that class's rows of ``images`` only (data of
    ``task``, a classification task), each with a checkpoint of its own.

    Returns the autoencoders, their distance scorers and the training history.
    """
    models, scorers, history = nn.ModuleList(), [], []
    for c, name in enumerate(classes):
        own = rows[targets[rows] == c]
        if len(own) == 0:
            raise ValueError(f"class {name!r} has no training images for its autoencoder")
        data = load_set(images, targets[own], device, own, task=task)
        torch.manual_seed(seed + c)
        model = build_autoencoder(images.shape[1], images.ndim - 2).to(device)
        history += fit_autoencoder(
            model, data, cfg, seed + c, name=f"autoencoder[{name}]", checkpoints=checkpoints
        )
        scorers.append(OneClassScorer(measure, reconstruction_errors(model, data)))
        models.append(model)
    return models, scorers, history
