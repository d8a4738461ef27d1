"""Classification losses against hand-computed values, each other and gradcheck."""

import math

import pytest
import torch
import torch.nn.functional as F

from medimbalance.losses import build_loss
from medimbalance.losses.classification import (
    LDAMLoss,
    PriorShiftedCrossEntropy,
    SigmoidClassBalanced,
    WeightedCrossEntropy,
)
from medimbalance.losses.weights import class_weights


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
    weights = torch.from_numpy(class_weights([16, 1], "effective", 0.5))
    weighted = F.cross_entropy(shifted, y, weight=weights)
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
    w = torch.from_numpy(class_weights([9, 3, 2, 1], "effective", 0.9))
    cb = build_loss("cb_softmax_focal", [9, 3, 2, 1], gamma=2.0, beta=0.9)(z, y)
    assert cb.item() == pytest.approx((-((1 - p) ** 2) * p.log() * w[y]).mean().item(), rel=1e-5)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_cb_focal_is_cuis_sigmoid_form_by_hand():
    # Cui et al. 2019, eq. 7: w_y Σ_c (1 − p^t_c)^γ (−log p^t_c), p = σ(z); weights of counts
    # (1, 2) at β = 0.5: (1 − β)/(1 − β^n) = 0.5, 2/3 → normalised to sum 2: 1.2, 0.8.
    z, y = torch.tensor([[1.0, -1.0], [0.5, 2.0]]), torch.tensor([0, 1])
    terms = []
    for (a, b), label in (((1.0, -1.0), 0), ((0.5, 2.0), 1)):
        p_true = [
            sigmoid(a) if label == 0 else 1 - sigmoid(a),
            sigmoid(b) if label == 1 else 1 - sigmoid(b),
        ]
        terms.append([(1 - q) ** 2 * -math.log(q) for q in p_true])
    hand = (1.2 * sum(terms[0]) + 0.8 * sum(terms[1])) / 2  # batch mean
    loss = build_loss("cb_focal", [1, 2], gamma=2.0, beta=0.5)
    assert loss(z, y).item() == pytest.approx(hand, rel=1e-6)
    # γ = 0: the class-balanced sigmoid cross-entropy
    bce = (1.2 * (-math.log(sigmoid(1.0)) - math.log(1 - sigmoid(-1.0)))) + 0.8 * (
        -math.log(1 - sigmoid(0.5)) - math.log(sigmoid(2.0))
    )
    sigmoid_ce = build_loss("cb_sigmoid", [1, 2], beta=0.5)(z, y).item()
    assert sigmoid_ce == pytest.approx(bce / 2, rel=1e-6)
    assert build_loss("cb_focal", [1, 2], gamma=0.0, beta=0.5)(z, y).item() == pytest.approx(
        sigmoid_ce, rel=1e-6
    )
    # The softmax adaptation is a different number: about half at γ = 2 on these logits.
    softmax = build_loss("cb_softmax_focal", [1, 2], gamma=2.0, beta=0.5)(z, y).item()
    assert softmax < 0.75 * loss(z, y).item()


def test_cuis_sigmoid_losses_start_the_output_bias_at_the_prior():
    from medimbalance.models import build_model
    from medimbalance.schedules import start_bias
    from medimbalance.training import last_layer

    model = build_model("small_cnn", 1, 4, (16, 16))
    start_bias(model, build_loss("cb_focal", [5, 3, 2, 1]))
    bias = last_layer(model).bias
    assert bias.tolist() == pytest.approx([-math.log(3)] * 4)  # −log((1 − 1/4) / (1/4))
    assert torch.sigmoid(bias).tolist() == pytest.approx([0.25] * 4)
    fresh = build_model("small_cnn", 1, 4, (16, 16))
    before = last_layer(fresh).bias.clone()
    start_bias(fresh, build_loss("cb_focal", [5, 3, 2, 1], prior_bias=False))
    start_bias(fresh, build_loss("ce", [5, 3, 2, 1]))  # losses without a starting bias
    assert torch.equal(last_layer(fresh).bias, before)


@pytest.mark.parametrize(
    "loss",
    [
        LDAMLoss([20, 5, 1], scale=2.0),
        PriorShiftedCrossEntropy([20, 5, 1], tau=0.7),
        WeightedCrossEntropy(torch.tensor([0.2, 0.8, 2.0])),
        SigmoidClassBalanced(torch.tensor([0.2, 0.8, 2.0]), gamma=2.0),
    ],
    ids=["ldam", "logit_adjusted", "weighted_ce", "cb_focal"],
)
def test_gradcheck_of_custom_losses(loss):
    loss = loss.double()
    z = torch.randn(4, 3, dtype=torch.double, requires_grad=True)
    y = torch.tensor([0, 2, 1, 2])
    assert torch.autograd.gradcheck(lambda x: loss(x, y), (z,))


def test_vector_scaling_loss_by_hand():
    # counts 80, 20: Δ = (1, 0.25^γ), ι = τ log(0.8, 0.2); γ = 0.5, τ = 1
    loss = build_loss("vs", [80, 20], gamma=0.5, tau=1.0)
    z = torch.tensor([[2.0, 1.0]])
    adjusted = [2.0 * 1.0 + math.log(0.8), 1.0 * 0.5 + math.log(0.2)]
    expected = -adjusted[1] + math.log(math.exp(adjusted[0]) + math.exp(adjusted[1]))
    assert loss(z, torch.tensor([1])).item() == pytest.approx(expected, rel=1e-5)
    # γ = 0 is logit adjustment with the same τ
    la = build_loss("logit_adjusted", [80, 20], tau=1.0)
    vs0 = build_loss("vs", [80, 20], gamma=0.0, tau=1.0)
    assert vs0(z, torch.tensor([0])).item() == pytest.approx(la(z, torch.tensor([0])).item())


def test_lade_by_hand():
    counts, alpha, lam = [3, 1], 0.1, 0.1
    prior = [0.75, 0.25]
    z = [[1.0, -1.0], [0.5, 2.0], [0.0, 0.3]]
    y = [0, 1, 0]
    loss = build_loss("lade", counts, alpha=alpha, remine_lambda=lam)
    value = loss(torch.tensor(z), torch.tensor(y)).item()
    # prior-corrected cross-entropy on z + log π
    ce = 0.0
    for row, label in zip(z, y, strict=True):
        adjusted = [v + math.log(p) for v, p in zip(row, prior, strict=True)]
        ce += -adjusted[label] + math.log(sum(math.exp(a) for a in adjusted))
    ce /= 3
    regulariser = 0.0
    for c in range(2):
        members = [row[c] for row, label in zip(z, y, strict=True) if label == c]
        first = sum(members) / len(members)
        second = math.log(sum(math.exp(row[c] - math.log(prior[c]) - math.log(2)) for row in z))
        second -= math.log(3)
        regulariser -= prior[c] * (first - second - lam * second**2)
    assert value == pytest.approx(ce + alpha * regulariser, rel=1e-5)
    plain = build_loss("lade", counts, alpha=0.0)
    balanced = build_loss("balanced_softmax", counts)
    assert plain(torch.tensor(z), torch.tensor(y)).item() == pytest.approx(
        balanced(torch.tensor(z), torch.tensor(y)).item()
    )
