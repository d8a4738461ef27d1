"""Losses by name. Each builder receives the training set's class counts (for re-weighting)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from .registry import Registry

LossBuilder = Callable[[Sequence[int]], nn.Module]
LOSSES: Registry[LossBuilder] = Registry("loss")


@LOSSES.register("ce")
def cross_entropy(class_counts: Sequence[int]) -> nn.Module:
    """Softmax cross-entropy on logits ``(B, C)`` and integer targets ``(B,)``."""
    return nn.CrossEntropyLoss()


def build_loss(name: str, class_counts: Sequence[int], **kwargs) -> nn.Module:
    """Build the loss registered as ``name`` for a training set with ``class_counts``;
    ``kwargs`` are the loss's own parameters (``loss_args`` in the config)."""
    builder = LOSSES.get(name)
    try:
        return builder(class_counts, **kwargs)
    except TypeError as error:
        raise ValueError(f"loss {name!r}: {error}") from None
