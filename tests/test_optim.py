"""Optimisers (SGD momentum a setting) and learning-rate factors per epoch: warm-up, step decay,
cosine annealing."""

import numpy as np
import pytest
import torch

from medimbalance.config import TrainConfig
from medimbalance.optim import build_optimizer, lr_factor


def test_lr_factors():
    step = TrainConfig(epochs=10, lr_schedule="step", milestones=(4, 7), gamma=0.1)
    factors = [round(lr_factor(step, e), 6) for e in range(9)]
    assert factors == [1, 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01]
    warm = TrainConfig(epochs=10, lr_schedule="cosine", warmup_epochs=2)
    factors = [lr_factor(warm, e) for e in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[6] == pytest.approx(0.5 * (1 + np.cos(np.pi * 4 / 8)))
    with pytest.raises(ValueError, match=r"training\.lr_schedule: unknown 'linear'"):
        TrainConfig(lr_schedule="linear")


def test_sgd_momentum_is_a_setting():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(TrainConfig(optimizer="sgd", lr=0.1, momentum=0.5), params)
    assert sgd.param_groups[0]["momentum"] == 0.5 and sgd.param_groups[0]["lr"] == 0.1
    assert build_optimizer(TrainConfig(optimizer="sgd"), params).param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match=r"training.momentum must be in \[0, 1\), got 1.0"):
        TrainConfig(momentum=1.0)


def test_the_ldam_drw_recipe_gives_the_reference_learning_rates():
    # kaidic/LDAM-DRW cifar_train.py: with e the 1-based epoch, lr × e/5 for e ≤ 5,
    # × 0.0001 for e > 180, × 0.01 for e > 160, else × 1
    cfg = TrainConfig(
        epochs=200, warmup_epochs=5, lr_schedule="step", milestones=(160, 180), gamma=0.01
    )
    for epoch in range(200):
        e = epoch + 1
        expected = e / 5 if e <= 5 else 1e-4 if e > 180 else 0.01 if e > 160 else 1.0
        assert lr_factor(cfg, epoch) == pytest.approx(expected, rel=1e-12), e
