"""Losses against hand-computed values, MONAI and each other; gradcheck for the custom ones."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medimbalance.losses import (
    LOSSES,
    LDAMLoss,
    PriorShiftedCrossEntropy,
    WeightedCrossEntropy,
    build_loss,
    class_weights,
    ldam_margins,
    posthoc_logit_adjustment,
)
from medimbalance.tasks import LOSS_TASKS


def test_class_weights_by_hand():
    # inverse: 1/1 and 1/3, normalised to sum 2
    assert class_weights([1, 3], "inverse").tolist() == pytest.approx([1.5, 0.5])
    # effective, beta 0.5: (1-.5)/(1-.5) = 1 and .5/(1-.25) = 2/3 -> x 2/(5/3)
    assert class_weights([1, 2], "effective", 0.5).tolist() == pytest.approx([1.2, 0.8])


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.9999])
def test_class_balanced_weights_formula(beta):
    counts = np.array([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    raw = (1 - beta) / (1 - beta**counts)
    w = class_weights(counts, "effective", beta).numpy()
    assert w.sum() == pytest.approx(10, rel=1e-6)
    assert w == pytest.approx(raw / raw.sum() * 10, rel=1e-5)
    assert (np.diff(w) >= -1e-6).all()  # rarer classes never weigh less
    if beta == 0.9999:  # small beta: beta^n ~ 0 for every class, so the weights are equal
        assert (np.diff(w) > 0).all()


def test_ldam_margins_scale_as_inverse_fourth_root():
    m = ldam_margins([16, 1]).tolist()
    assert m == pytest.approx([0.25, 0.5])  # 16^-1/4 = 0.5 of 1^-1/4
    counts = np.array([5000, 500, 50])
    m = ldam_margins(counts).numpy()
    assert m.max() == pytest.approx(0.5)
    assert m * counts**0.25 == pytest.approx(np.full(3, m[0] * 5000**0.25), rel=1e-6)


def test_ldam_value_and_deferred_reweighting():
    loss = LDAMLoss([16, 1], max_margin=0.5, scale=1.0, drw_epoch=3, beta=0.5)
    logits, target = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    # true class 0 lowered by its margin 0.25: CE([0.75, 0], 0) = log(1 + e^-0.75)
    assert loss(logits, target).item() == pytest.approx(math.log1p(math.exp(-0.75)), rel=1e-6)
    z, y = (
        torch.randn(6, 2, generator=torch.Generator().manual_seed(0)),
        torch.tensor([0, 1, 1, 0, 0, 0]),
    )
    shifted = z - F.one_hot(y, 2) * loss.margins
    loss.set_epoch(2)
    assert loss(z, y).item() == pytest.approx(F.cross_entropy(shifted, y).item(), rel=1e-6)
    loss.set_epoch(3)
    weighted = F.cross_entropy(shifted, y, weight=class_weights([16, 1], "effective", 0.5))
    assert loss(z, y).item() == pytest.approx(weighted.item(), rel=1e-6)


def test_logit_adjusted_and_balanced_softmax_by_hand():
    logits, target = torch.zeros(1, 2), torch.tensor([1])
    # prior (0.75, 0.25): CE([log .75, log .25], 1) = -log(.25) = log 4
    for name, args in (("logit_adjusted", {}), ("balanced_softmax", {})):
        assert build_loss(name, [3, 1], **args)(logits, target).item() == pytest.approx(math.log(4))
    z = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 2, 1, 0, 0, 0])
    a = build_loss("logit_adjusted", [50, 10, 2], tau=1.0)(z, y)
    b = build_loss("balanced_softmax", [50, 10, 2])(z, y)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    half = build_loss("logit_adjusted", [3, 1], tau=0.5)(logits, target).item()
    expected = -math.log(0.25**0.5 / (0.75**0.5 + 0.25**0.5))
    assert half == pytest.approx(expected, rel=1e-6)


def test_posthoc_adjustment_removes_the_prior():
    logits = np.array([[2.0, 1.0]])
    adjusted = posthoc_logit_adjustment(logits, [3, 1])
    assert adjusted == pytest.approx(np.array([[2 - math.log(0.75), 1 - math.log(0.25)]]), rel=1e-6)


def test_weighted_ce_by_hand_and_inverse_weights():
    loss = WeightedCrossEntropy(torch.tensor([1.5, 0.5]))
    assert loss(torch.zeros(2, 2), torch.tensor([0, 0])).item() == pytest.approx(1.5 * math.log(2))
    built = build_loss("weighted_ce", [1, 3], weighting="inverse")
    assert built.weights.tolist() == pytest.approx([1.5, 0.5])
    cb = build_loss("cb_ce", [1, 2], beta=0.5)
    assert cb.weights.tolist() == pytest.approx([1.2, 0.8])


def test_focal_by_hand_and_against_cross_entropy():
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 3, 1, 1, 2])
    p = z.softmax(1)[torch.arange(5), y]
    hand = (-((1 - p) ** 2) * p.log()).mean()
    assert build_loss("focal", [1] * 4, gamma=2.0)(z, y).item() == pytest.approx(
        hand.item(), rel=1e-5
    )
    assert build_loss("focal", [1] * 4, gamma=0.0)(z, y).item() == pytest.approx(
        F.cross_entropy(z, y).item(), rel=1e-5
    )
    w = class_weights([9, 3, 2, 1], "effective", 0.9)
    cb = build_loss("cb_focal", [9, 3, 2, 1], gamma=2.0, beta=0.9)(z, y)
    assert cb.item() == pytest.approx((-((1 - p) ** 2) * p.log() * w[y]).mean().item(), rel=1e-5)


@pytest.mark.parametrize(
    "loss",
    [
        LDAMLoss([20, 5, 1], scale=2.0),
        PriorShiftedCrossEntropy([20, 5, 1], tau=0.7),
        WeightedCrossEntropy(torch.tensor([0.2, 0.8, 2.0])),
    ],
    ids=["ldam", "logit_adjusted", "weighted_ce"],
)
def test_gradcheck_of_custom_losses(loss):
    loss = loss.double()
    z = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    y = torch.tensor([0, 2, 1, 2])
    assert torch.autograd.gradcheck(lambda x: loss(x, y), (z,))


def test_registry_and_bad_arguments():
    assert LOSSES.names() == sorted(LOSS_TASKS)
    with pytest.raises(ValueError, match=r"loss 'focal': .*unexpected keyword argument 'beta'"):
        build_loss("focal", [3, 1], beta=0.9)
    with pytest.raises(ValueError, match="every class needs at least one training image"):
        build_loss("cb_ce", [3, 0])
