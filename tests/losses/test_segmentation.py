"""Segmentation losses against MONAI where MONAI has the loss, by hand otherwise; gradcheck."""

import pytest
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, FocalLoss, GeneralizedDiceLoss

from medimbalance.losses import build_loss
from medimbalance.losses.segmentation import LargeMarginLoss, SegmentationFocal
from medimbalance.targets import TargetStats


def seg_batch(seed=0, classes=3, shape=(6, 5)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, *shape, generator=g, dtype=torch.double)
    masks = torch.randint(0, classes, (2, *shape), generator=g)
    return logits, masks


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


def test_losses_take_soft_labels():
    logits, masks = seg_batch(5)
    hard = F.one_hot(masks, 3).movedim(-1, 1).double()
    for name in ("dice_ce", "gdl_wll", "seg_focal", "asym_large_margin"):
        loss = build_loss(name, TargetStats((4, 3, 3), 10))
        assert loss(logits, hard).item() == pytest.approx(loss(logits, masks).item(), rel=1e-9)


@pytest.mark.parametrize(
    "loss",
    [SegmentationFocal(2.0, True), LargeMarginLoss(1.0, True)],
    ids=["asym_focal", "asym_large_margin"],
)
def test_gradcheck_of_custom_losses(loss):
    loss = loss.double()
    target = torch.tensor([[[0, 1], [2, 0]]])
    z = torch.randn(1, 3, 2, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: loss(x, target), (z,))


def _one_class_maps():
    # 1 image, 2 classes, 4 voxels; logits that give foreground probabilities 0.9, 0.6, 0.2, 0.1
    p = torch.tensor([0.9, 0.6, 0.2, 0.1])
    logits = torch.stack([torch.zeros(4), torch.log(p / (1 - p))]).view(1, 2, 2, 2)
    mask = torch.tensor([1, 0, 1, 0]).view(1, 2, 2)
    return p, logits, mask


def test_fbeta_is_the_tversky_loss_with_the_f_beta_weights_by_hand():
    from medimbalance.losses.segmentation import fbeta_weights

    assert fbeta_weights(2.0) == pytest.approx((0.2, 0.8))
    p, logits, mask = _one_class_maps()
    y = mask.flatten().float()
    tp, fp, fn = (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()
    f2 = (tp + 1e-5) / (tp + 0.2 * fp + 0.8 * fn + 1e-5)
    loss = build_loss("fbeta", [10, 2], beta=2.0, include_background=False)
    assert loss(logits, mask).item() == pytest.approx(1 - f2.item(), rel=1e-5)
    # the F-β score is (1 + β²) TP / ((1 + β²) TP + β² FN + FP)
    assert f2.item() == pytest.approx((5 * tp / (5 * tp + 4 * fn + fp)).item(), rel=1e-4)
    tversky = build_loss("tversky", [10, 2], alpha=0.2, beta=0.8, include_background=False)
    assert tversky(logits, mask).item() == pytest.approx(loss(logits, mask).item())


def test_dice_alone_and_plain_cross_entropy_by_hand():
    p, logits, mask = _one_class_maps()
    y = mask.flatten().float()
    dice = (2 * (p * y).sum() + 1e-5) / (p.sum() + y.sum() + 1e-5)
    loss = build_loss("dice", [10, 2], include_background=False)
    assert loss(logits, mask).item() == pytest.approx(1 - dice.item(), rel=1e-5)
    ce = build_loss("seg_ce", [10, 2])(logits, mask).item()
    expected = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    assert ce == pytest.approx(expected.item(), rel=1e-5)


def test_margin_focal_combinations_by_hand():
    # one voxel of class 1 and one of class 0, logits (0, 1) each; margin 0.5, γ = 2
    logits = torch.tensor([[0.0, 0.0], [1.0, 1.0]]).view(1, 2, 2, 1)
    mask = torch.tensor([1, 0]).view(1, 2, 1)

    def focal_term(z, label, gamma):
        p = torch.softmax(torch.tensor(z), 0)[label]
        return -((1 - p) ** gamma) * torch.log(p)

    sym = build_loss("margin_focal", [10, 2], margin=0.5, gamma=2.0)(logits, mask).item()
    # symmetric: both true logits lowered by 0.5, both focal
    expected = (focal_term([0.0, 0.5], 1, 2) + focal_term([-0.5, 1.0], 0, 2)) / 2
    assert sym == pytest.approx(expected.item(), rel=1e-5)
    asym = build_loss("asym_margin_focal", [10, 2], margin=0.5, gamma=2.0)(logits, mask).item()
    # asymmetric: margin on the foreground voxel only, plain CE there; focal on the background
    expected = (focal_term([0.0, 0.5], 1, 0) + focal_term([0.0, 1.0], 0, 2)) / 2
    assert asym == pytest.approx(expected.item(), rel=1e-5)
