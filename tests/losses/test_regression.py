"""Regression losses: hand values, label-distribution smoothing, Balanced MSE, gradcheck."""

import math

import numpy as np
import pytest
import torch

from medimbalance.losses import build_loss
from medimbalance.losses.regression import BalancedMSE, BalancedMSEGAI, WeightedMSE
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


def test_balanced_mse_gai_hand_value():
    # One component N(0, 1), σ = 1, ŷ = 1, y = 0: (ŷ − y)²/2σ² + ½ log σ² = 0.5; the balancing
    # term log N(ŷ; 0, 1 + σ²)·√(2π) = −½ log 2 − 1/4; the sum × 2σ².
    one = BalancedMSEGAI(np.array([0.0]), np.array([1.0]), np.array([1.0]), sigma=1.0)
    value = one(torch.tensor([[1.0]]), torch.tensor([0.0])).item()
    assert value == pytest.approx(2 * (0.5 - 0.5 * math.log(2) - 0.25))
    # Two components (weights 0.25, 0.75 at −1 and 2, variances 0.5 and 1), σ = 0.5, ŷ = 0.5,
    # y = 1: fit 0.25/0.5 + ½ log 0.25; balancing
    # log Σ φ_k (v_k + σ²)^−½ exp(−(ŷ − μ_k)²/2(v_k + σ²))
    two = BalancedMSEGAI(np.array([-1.0, 2.0]), np.array([0.5, 1.0]), np.array([0.25, 0.75]), 0.5)
    fit = 0.25 / (2 * 0.25) + 0.5 * math.log(0.25)
    terms = [
        0.25 / math.sqrt(0.75) * math.exp(-2.25 / 1.5),
        0.75 / math.sqrt(1.25) * math.exp(-2.25 / 2.5),
    ]
    expected = (fit + math.log(sum(terms))) * 2 * 0.25
    assert two(torch.tensor([[0.5]]), torch.tensor([1.0])).item() == pytest.approx(
        expected, rel=1e-5
    )


def test_balanced_mse_gai_fits_the_target_mixture():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 0.1, 900), rng.normal(5, 0.1, 100)])
    loss = build_loss("balanced_mse", TargetStats(values=values), form="gai", components=2)
    order = torch.argsort(loss.means)
    assert loss.means[order].tolist() == pytest.approx([0, 5], abs=0.05)
    assert loss.weights[order].tolist() == pytest.approx([0.9, 0.1], abs=0.01)
    assert loss.variances.tolist() == pytest.approx([0.01, 0.01], abs=0.005)
    with pytest.raises(ValueError, match="only 1 distinct value"):
        build_loss("balanced_mse", TargetStats(values=np.ones(10)), form="gai")
    with pytest.raises(ValueError, match="unknown balanced_mse form 'gia'"):
        build_loss("balanced_mse", TargetStats(values=values), form="gia")


@pytest.mark.parametrize(
    "loss",
    [
        WeightedMSE(np.array([0.0, 1.0, 2.0]), np.array([3.0, 0.5])),
        BalancedMSE(1.0),
        BalancedMSEGAI(np.array([0.0, 1.0]), np.array([0.5, 1.0]), np.array([0.4, 0.6])),
    ],
    ids=["lds_mse", "balanced_mse", "balanced_mse_gai"],
)
def test_gradcheck_of_custom_losses(loss):
    loss = loss.double()
    target = torch.tensor([0.5, 1.5], dtype=torch.double)
    z = torch.randn(2, 1, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,))
