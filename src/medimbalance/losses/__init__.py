"""Losses by name, for every task, in one module per task: :mod:`.classification`,
:mod:`.multilabel`, :mod:`.segmentation` and :mod:`.regression`; the count formulas they share
live in :mod:`.weights`.

Each builder receives the training set's :class:`~medimbalance.targets.TargetStats` (class
counts, label positives, voxel counts or regression targets, for re-weighting) and the loss's own
keyword arguments (``loss_args`` in the config; ``medimbalance.tasks.LOSS_ARGS`` lists them).

- classification: logits ``(B, C)``, integer targets ``(B,)``;
- multi-label: logits ``(B, L)``, multi-hot targets ``(B, L)`` (float);
- segmentation: logits ``(B, C, *spatial)``, integer masks ``(B, *spatial)`` or soft labels
  ``(B, C, *spatial)`` (after mixup, :class:`medimbalance.augment.Mixup`);
- regression: predictions ``(B, 1)``, targets ``(B,)``.

Every loss returns the batch mean. The task modules import torch and MONAI; the registry imports
them on first use, so :mod:`.weights` stays importable without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..registry import Registry
from ..targets import TargetStats

if TYPE_CHECKING:
    from torch import nn

LossBuilder = Callable[..., "nn.Module"]
LOSSES: Registry[LossBuilder] = Registry(
    "loss",
    modules=[
        f"{__name__}.{task}"
        for task in ("classification", "multilabel", "segmentation", "regression")
    ],
)


def build_loss(name: str, stats: TargetStats | Sequence[int], **kwargs) -> nn.Module:
    """Build the loss registered as ``name`` for a training set described by ``stats`` (or its
    class counts); ``kwargs`` are the loss's own parameters (``loss_args`` in the config)."""
    builder = LOSSES.get(name)
    try:
        return builder(TargetStats.of(stats), **kwargs)
    except TypeError as error:
        raise ValueError(f"loss {name!r}: {error}") from None
