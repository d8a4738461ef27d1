"""Optimisers and learning-rate schedules (one multiplicative factor per epoch, applied by
``LambdaLR``), built from a run's training settings."""

from __future__ import annotations

import bisect
import math

import torch

from .config import TrainConfig


def lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Factor on ``cfg.lr`` during ``epoch`` (0-based): linear warm-up over the first
    ``warmup_epochs`` (``(epoch+1)/warmup``), then constant, step decay (× ``gamma`` after each
    milestone epoch) or cosine annealing to 0 over the remaining epochs."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / cfg.warmup_epochs
    if cfg.lr_schedule == "step":
        return cfg.gamma ** bisect.bisect_right(sorted(cfg.milestones), epoch)
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return 1.0


def build_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """Adam, or SGD with ``cfg.momentum`` (0.9 by default, the CIFAR-LT recipe), with ``cfg.lr``
    and weight decay."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """A ``LambdaLR`` stepping once per epoch with :func:`lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(cfg, epoch))
