"""Multi-label losses: hand values, MONAI's focal loss, gradcheck."""

import math

import pytest
import torch
import torch.nn.functional as F

from medimbalance.losses import build_loss
from medimbalance.losses.multilabel import WeightedBCE
from medimbalance.targets import TargetStats


def test_bce_hand_value():
    loss = build_loss("bce", TargetStats((1, 1), 2))
    z = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([[1.0, 0.0]])
    assert loss(z, y).item() == pytest.approx((math.log(2) + math.log1p(math.e**2)) / 2)


def test_weighted_bce_gives_positives_and_negatives_equal_weight():
    loss = build_loss("weighted_bce", TargetStats((1, 3), 4))
    z = torch.tensor([[0.0, 0.0]])
    y = torch.tensor([[1.0, 0.0]])  # label 0 positive (weight 2), label 1 negative (weight 2)
    assert loss(z, y).item() == pytest.approx(2 * math.log(2))
    with pytest.raises(ValueError, match=r"label\(s\) \[1\] have \[0\] positives among 5"):
        build_loss("weighted_bce", TargetStats((2, 0), 5))


def test_focal_bce_is_monai_and_reduces_to_bce_at_gamma_zero():
    z = torch.randn(4, 3)
    y = (torch.rand(4, 3) > 0.5).float()
    assert build_loss("focal_bce", TargetStats((2, 2, 2), 4), gamma=0.0)(z, y).item() == (
        pytest.approx(F.binary_cross_entropy_with_logits(z, y).item(), rel=1e-5)
    )
    p = torch.sigmoid(z)
    p_true = torch.where(y == 1, p, 1 - p)
    by_hand = (-((1 - p_true) ** 2) * torch.log(p_true)).mean()
    built = build_loss("focal_bce", TargetStats((2, 2, 2), 4), gamma=2.0)(z, y)
    assert built.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_gradcheck_of_weighted_bce():
    loss = WeightedBCE(torch.tensor([2.0, 0.5]), torch.tensor([0.5, 2.0])).double()
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.double)
    z = torch.randn(2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,))


def test_asymmetric_loss_by_hand():
    # One image, two labels: z = (0, 2), y = (1, 0); γ+ = 1, γ− = 2, m = 0.1.
    loss = build_loss("asl", [3, 1], gamma_pos=1.0, gamma_neg=2.0, clip=0.1)
    p = [0.5, 1 / (1 + math.exp(-2))]
    positive = (1 - p[0]) ** 1 * math.log(p[0])
    shifted = p[1] - 0.1  # p_m
    negative = shifted**2 * math.log(1 - shifted)
    value = loss(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])).item()
    assert value == pytest.approx(-(positive + negative), rel=1e-5)
    # a negative below the margin costs nothing; γ = 0 and m = 0 is BCE summed over labels
    assert loss(torch.tensor([[5.0, -3.0]]), torch.tensor([[1.0, 0.0]])).item() < 1e-2
    plain = build_loss("asl", [3, 1], gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    z, y = torch.tensor([[0.3, -1.2], [2.0, 0.1]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bce = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(1).mean()
    assert plain(z, y).item() == pytest.approx(bce.item(), rel=1e-5)
    with pytest.raises(ValueError, match="clip in"):
        build_loss("asl", [3, 1], clip=1.0)
