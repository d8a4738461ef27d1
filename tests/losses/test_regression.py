"""Regression losses: hand values, label-distribution smoothing, Balanced MSE, gradcheck."""

import math

import numpy as np
import pytest
import torch

from medimbalance.losses import build_loss
from medimbalance.losses.regression import BalancedMSE, WeightedMSE
from medimbalance.targets import TargetStats


def test_mse_hand_value():
    loss = build_loss("mse", TargetStats(values=np.array([1.0])))
    assert loss(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 1.0])).item() == 2.5


def test_lds_mse_weighs_rare_targets_more():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(0, 1, 900), rng.uniform(1, 2, 100)])
    loss = build_loss("lds_mse", TargetStats(values=values), bins=20)
    rare, common = torch.tensor([1.9]), torch.tensor([0.5])
    assert loss(torch.zeros(1, 1), rare) / 1.9**2 > 5 * loss(torch.zeros(1, 1), common) / 0.5**2
    # by hand: weight 3 on [0, 1), 0.5 on [1, 2]
    weighted = WeightedMSE(np.array([0.0, 1.0, 2.0]), np.array([3.0, 0.5]))
    value = weighted(torch.tensor([[1.0], [0.0]]), torch.tensor([0.5, 1.5])).item()
    assert value == pytest.approx((3 * 0.25 + 0.5 * 2.25) / 2)


def test_balanced_mse_hand_value_and_learnable_sigma():
    loss = build_loss("balanced_mse", TargetStats(values=np.array([1.0])), sigma=1.0)
    pred, target = torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 3.0])
    # logits −(ŷ_i − y_j)²/2: row 0 [0, −2], row 1 [−0.5, −0.5]; CE with diagonal targets, × 2σ²
    row0 = -0.0 + math.log(math.exp(0) + math.exp(-2))
    row1 = 0.5 + math.log(2 * math.exp(-0.5))
    assert loss(pred, target).item() == pytest.approx(2 * (row0 + row1) / 2)
    assert [p.requires_grad for p in loss.parameters()] == [True]
    fixed = build_loss("balanced_mse", TargetStats(), learn_sigma=False)
    assert not any(p.requires_grad for p in fixed.parameters())


@pytest.mark.parametrize(
    "loss",
    [WeightedMSE(np.array([0.0, 1.0, 2.0]), np.array([3.0, 0.5])), BalancedMSE(1.0)],
    ids=["lds_mse", "balanced_mse"],
)
def test_gradcheck_of_custom_losses(loss):
    loss = loss.double()
    target = torch.tensor([0.5, 1.5], dtype=torch.double)
    z = torch.randn(2, 1, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,))
