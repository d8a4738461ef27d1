"""Feature extraction from a classifier trained on real data.

The embedding of an image is the penultimate layer of the network: the feature map that its
classification head flattens, averaged over space (or, for a network without a flattening
step, the input of its output layer). Boundary cleaning and SMOTE find neighbours in it; the
FID of generated images compares distributions in it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .checkpoints import load_model_file
from .config import TrainConfig
from .models import build_model
from .training import TensorSet, fit, forward, last_layer, load_set, ordered_batches


def _feature_module(model: nn.Module) -> tuple[nn.Module, bool]:
    """The module whose input is the penultimate layer, and whether to pool that input."""
    flattens = [m for m in model.modules() if isinstance(m, nn.Flatten)]
    return (flattens[-1], True) if flattens else (last_layer(model), False)


@torch.no_grad()
def embed(model: nn.Module, data: TensorSet, batch_size: int = 512) -> np.ndarray:
    """Penultimate-layer features ``(N, F)`` float32 of every sample of ``data``, in order."""
    module, pool = _feature_module(model)
    captured: list[torch.Tensor] = []

    def keep(_module, inputs):
        x = inputs[0].float()
        captured.append(x.flatten(2).mean(2) if pool and x.ndim > 2 else x.flatten(1))

    handle = module.register_forward_pre_hook(keep)
    try:
        model.eval()
        for x in ordered_batches(data, batch_size):
            forward(model, x)
    finally:
        handle.remove()
    if not captured:
        return np.empty((0, 0), np.float32)
    return torch.cat(captured).cpu().numpy()


def train_classifier(
    model_name: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    *,
    num_classes: int,
    cfg: TrainConfig,
    seed: int,
    task: str,
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, list[dict]]:
    """A classifier of ``task`` data (cross-entropy; binary cross-entropy per label for
    multi-label data; best epoch by the validation monitor) trained on images
    ``(N, C, *spatial)``; returns it and its history."""
    torch.manual_seed(seed)
    device = torch.device(device)
    model = build_model(model_name, train_images.shape[1], num_classes, train_images.shape[2:])
    model = model.to(device)
    train = load_set(train_images, train_labels, device, task=task)
    val = load_set(val_images, val_labels, device, task=task)
    loss = nn.BCEWithLogitsLoss() if task == "multilabel" else nn.CrossEntropyLoss()
    history = fit(model, loss, train, val, cfg, seed, task=task)
    return model, history


def load_extractor(path: str, device: torch.device | str = "cpu") -> nn.Module:
    """The feature extractor saved by ``train_extractor`` (:func:`save_model`'s format)."""
    blob = load_model_file(path, device)
    meta = blob["meta"]
    model = build_model(
        blob["run_config"]["model"], meta["channels"], len(meta["classes"]), meta["spatial_shape"]
    )
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval()
