"""Multi-label, segmentation and regression losses: hand values, MONAI where MONAI has the loss,
gradcheck for ours."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, FocalLoss, GeneralizedDiceLoss

from medimbalance.losses import (
    BalancedMSE,
    LargeMarginLoss,
    SegmentationFocal,
    TargetStats,
    WeightedBCE,
    WeightedMSE,
    build_loss,
    label_weights,
    lds_weights,
    target_stats,
)


def seg_batch(seed=0, classes=3, shape=(6, 5)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, *shape, generator=g, dtype=torch.double)
    masks = torch.randint(0, classes, (2, *shape), generator=g)
    return logits, masks


# ---- Multi-label ------------------------------------------------------------------------------


def test_bce_hand_value():
    loss = build_loss("bce", TargetStats((1, 1), 2))
    z = torch.tensor([[0.0, 2.0]])
    y = torch.tensor([[1.0, 0.0]])
    assert loss(z, y).item() == pytest.approx((math.log(2) + math.log1p(math.e**2)) / 2)


def test_weighted_bce_gives_positives_and_negatives_equal_weight():
    pos, neg = label_weights([1, 3], total=4)
    assert pos.tolist() == pytest.approx([2.0, 2 / 3]) and neg.tolist() == pytest.approx([2 / 3, 2])
    loss = build_loss("weighted_bce", TargetStats((1, 3), 4))
    z = torch.tensor([[0.0, 0.0]])
    y = torch.tensor([[1.0, 0.0]])  # label 0 positive (weight 2), label 1 negative (weight 2)
    assert loss(z, y).item() == pytest.approx(2 * math.log(2))
    with pytest.raises(ValueError, match=r"label\(s\) \[1\] have \[0\] positives among 5"):
        label_weights([2, 0], total=5)


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


# ---- Segmentation -----------------------------------------------------------------------------


def test_dice_ce_equals_monai_dice_ce():
    logits, masks = seg_batch()
    ours = build_loss("dice_ce", TargetStats((10, 10, 10), 30))(logits, masks)
    monai = DiceCELoss(to_onehot_y=True, softmax=True)(logits, masks[:, None])
    assert ours.item() == pytest.approx(monai.item(), rel=1e-9)


def test_gdl_wll_is_monai_generalized_dice_plus_weighted_log_loss():
    logits, masks = seg_batch(1, classes=2)
    loss = build_loss("gdl_wll", TargetStats((3, 1), 4))  # weights ∝ 1/n: 0.5, 1.5 (sum C)
    gdl = GeneralizedDiceLoss(to_onehot_y=True, softmax=True)(logits, masks[:, None])
    log_p = F.log_softmax(logits, 1)
    w = torch.tensor([0.5, 1.5], dtype=torch.double)[masks]
    wll = -(w * log_p.gather(1, masks[:, None])[:, 0]).mean()
    assert loss(logits, masks).item() == pytest.approx((gdl + wll).item(), rel=1e-9)


def test_seg_focal_equals_monai_focal_summed_over_classes():
    logits, masks = seg_batch(2)
    ours = build_loss("seg_focal", TargetStats((1, 1, 1), 3), gamma=2.0)(logits, masks)
    monai = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0, reduction="none")
    assert ours.item() == pytest.approx(monai(logits, masks[:, None]).sum(1).mean().item())


def test_asymmetric_focal_keeps_cross_entropy_on_the_foreground():
    logits, _ = seg_batch(3)
    ce = lambda m: F.cross_entropy(logits, m).item()  # noqa: E731
    asym, sym = SegmentationFocal(2.0, asymmetric=True), SegmentationFocal(2.0)
    foreground = torch.full((2, 6, 5), 2)
    background = torch.zeros((2, 6, 5), dtype=torch.long)
    assert asym(logits, foreground).item() == pytest.approx(ce(foreground))  # not down-weighted
    assert asym(logits, background).item() == pytest.approx(sym(logits, background).item())
    assert asym(logits, background).item() < ce(background)
    assert SegmentationFocal(0.0, True)(logits, background).item() == pytest.approx(ce(background))


def test_asymmetric_large_margin_lowers_only_foreground_logits():
    logits, masks = seg_batch(4)
    m = 1.5
    shifted = logits - m * F.one_hot(masks, 3).movedim(-1, 1) * (masks > 0)[:, None]
    assert LargeMarginLoss(m, asymmetric=True)(logits, masks).item() == pytest.approx(
        F.cross_entropy(shifted, masks).item()
    )
    everywhere = logits - m * F.one_hot(masks, 3).movedim(-1, 1)
    assert LargeMarginLoss(m)(logits, masks).item() == pytest.approx(
        F.cross_entropy(everywhere, masks).item()
    )
    assert LargeMarginLoss(0.0)(logits, masks).item() == pytest.approx(
        F.cross_entropy(logits, masks).item()
    )


@pytest.mark.parametrize("asymmetric", [False, True])
def test_mixup_blends_images_and_labels(asymmetric):
    images = torch.randn(4, 2, 6, 5)
    masks = torch.zeros(4, 6, 5, dtype=torch.long)
    masks[0, :2] = 1
    masks[1, 3:] = 2
    loss = build_loss("dice_ce", TargetStats((1, 1, 1), 3), "asymmetric" if asymmetric else "mixup")
    mixed, labels = loss.mix(images, masks, torch.Generator().manual_seed(0))
    # the same draws by hand: λ ~ Beta(0.2, 0.2) seeded from the generator, then the partners
    g = torch.Generator().manual_seed(0)
    lam = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=g))).beta(0.2, 0.2)
    order = torch.randperm(4, generator=g)
    assert 0 < lam < 1
    assert torch.allclose(mixed, lam * images + (1 - lam) * images[order])
    assert labels.shape == (4, 3, 6, 5) and torch.allclose(labels.sum(1), torch.ones(4, 6, 5))
    one_hot = F.one_hot(masks, 3).movedim(-1, 1).float()
    either_foreground = (masks > 0) | (masks[order] > 0)
    if asymmetric:  # hard foreground labels wherever either image has foreground
        assert set(labels.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(labels[:, 0] == 0, either_foreground)
        assert torch.equal(labels.argmax(1)[masks > 0], masks[masks > 0])  # own label first
    else:
        assert torch.allclose(labels, lam * one_hot + (1 - lam) * one_hot[order], atol=1e-6)
    assert loss(torch.randn(4, 3, 6, 5), labels).isfinite()  # the loss takes soft labels


# ---- Regression -------------------------------------------------------------------------------


def test_mse_hand_value():
    loss = build_loss("mse", TargetStats(values=np.array([1.0])))
    assert loss(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 1.0])).item() == 2.5


def test_lds_weights_favour_rare_targets_and_average_one():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(0, 1, 900), rng.uniform(1, 2, 100)])
    edges, weights = lds_weights(values, bins=20, kernel_size=5, sigma=2.0)
    per_sample = weights[np.clip(np.searchsorted(edges, values, side="right") - 1, 0, 19)]
    assert per_sample.mean() == pytest.approx(1.0)
    assert weights[-1] > 5 * weights[0]  # the rare half weighs more
    _, flat = lds_weights(rng.uniform(0, 1, 100000), bins=10, kernel_size=1)
    assert flat == pytest.approx(np.ones(10), rel=0.05)  # uniform targets: equal weights
    loss = build_loss("lds_mse", TargetStats(values=values), bins=20)
    rare, common = torch.tensor([1.9]), torch.tensor([0.5])
    assert loss(torch.zeros(1, 1), rare) / 1.9**2 > 5 * loss(torch.zeros(1, 1), common) / 0.5**2


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


GRADCHECK = {
    "weighted_bce": (
        WeightedBCE(torch.tensor([2.0, 0.5]), torch.tensor([0.5, 2.0])),
        (2, 2),
        torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.double),
    ),
    "asym_focal": (SegmentationFocal(2.0, True), (1, 3, 2, 2), torch.tensor([[[0, 1], [2, 0]]])),
    "asym_large_margin": (
        LargeMarginLoss(1.0, True),
        (1, 3, 2, 2),
        torch.tensor([[[0, 1], [2, 0]]]),
    ),
    "lds_mse": (
        WeightedMSE(np.array([0.0, 1.0, 2.0]), np.array([3.0, 0.5])),
        (2, 1),
        torch.tensor([0.5, 1.5], dtype=torch.double),
    ),
    "balanced_mse": (BalancedMSE(1.0), (2, 1), torch.tensor([0.5, 1.5], dtype=torch.double)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradcheck_of_custom_losses(name):
    loss, shape, target = GRADCHECK[name]
    loss = loss.double()
    z = torch.randn(*shape, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,))


def test_target_stats_of_every_task():
    classes = np.array([0, 2, 2, 1])
    assert target_stats("multiclass", classes, np.array([1, 2, 3]), 3).counts == (0, 1, 2)
    multi = np.array([[1, 0], [1, 1], [0, 0]], np.uint8)
    stats = target_stats("multilabel", multi, np.array([0, 1, 2]), 2)
    assert stats.counts == (2, 1) and stats.total == 3
    masks = np.zeros((3, 4, 4), np.uint8)
    masks[0, 0, :3] = 1
    masks[2, 1, 1] = 2
    stats = target_stats("segmentation", masks, np.array([0, 2, 2]), 3, chunk=1)
    assert stats.counts == (43, 3, 2) and stats.total == 48  # image 2 counted twice
    stats = target_stats("regression", np.array([1.0, 2.5, 4.0]), np.array([2, 0]), 1)
    assert stats.values.tolist() == [4.0, 1.0]
