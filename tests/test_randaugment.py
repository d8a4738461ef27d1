"""RandAugment's operations by hand, and its draws fixed by seed and epoch."""

import math

import pytest
import torch

from medimbalance.augment import build_augmenter
from medimbalance.randaugment import OPERATIONS, RandAugment, apply


def test_intensity_operations_by_hand():
    u = torch.tensor([[[0.0, 0.25], [0.5, 1.0]]])
    assert torch.allclose(apply("brightness", u, 1.0, -1.0), u * 0.1)
    mean = u.mean()
    assert torch.allclose(apply("contrast", u, 0.5, 1.0), (mean + 1.45 * (u - mean)).clamp(0, 1))
    assert torch.allclose(apply("solarize", u, 0.6, 1.0), torch.tensor([[[0.0, 0.25], [0.5, 0.0]]]))
    four_bits = apply("posterize", u, 1.0, 1.0)  # 8 − 4 = 4 bits: 16 levels
    assert torch.allclose(four_bits, torch.floor(u * 15 + 0.5) / 15)
    narrow = torch.stack([u[0] * 0.5, u[0]])
    assert torch.allclose(apply("autocontrast", narrow, 1.0, 1.0)[0], u[0])
    assert torch.equal(apply("identity", u, 1.0, 1.0), u)
    flat = torch.full((1, 5, 5), 0.4)
    assert torch.allclose(apply("sharpness", flat, 1.0, 1.0), flat)  # nothing to sharpen


def test_geometric_operations_move_the_image():
    u = torch.zeros(1, 8, 8)
    u[0, 3:5, 1:3] = 1.0  # a block left of centre
    moved = apply("translate_x", u, 0.5, -1.0)  # 0.45 × 0.5 of the side: 1.8 of 8 pixels
    assert moved.sum().item() == pytest.approx(u.sum().item(), rel=0.05)
    assert moved[0].sum(0).argmax() != u[0].sum(0).argmax()  # the columns shifted
    turned = apply("rotate", u, 3.0, 1.0)  # 3 × 30°: 90°, which rot90 gives exactly
    expected = torch.rot90(u, k=1, dims=(1, 2))
    assert torch.allclose(turned, expected, atol=1e-4) or torch.allclose(
        turned, torch.rot90(u, k=-1, dims=(1, 2)), atol=1e-4
    )
    assert math.isclose(OPERATIONS["rotate"] * 3.0, 90.0)


def test_each_image_gets_n_operations_and_the_draws_repeat_by_seed_and_epoch():
    images = torch.randn(6, 1, 16, 16)
    targets = torch.arange(6)
    aug = RandAugment(n=3, m=5)
    aug.reseed(1, 2)
    first, same_targets = aug(images, targets)
    assert torch.equal(same_targets, targets) and aug.seen == 6
    assert sum(aug.fired.values()) == 18
    assert set(aug.rates()) == set(OPERATIONS)
    again = RandAugment(n=3, m=5)
    again.reseed(1, 2)
    assert torch.equal(again(images, targets)[0], first)
    again.reseed(1, 3)
    assert not torch.equal(again(images, targets)[0], first)
    assert first.min() >= images.min() - 1e-5 and first.max() <= images.max() + 1e-5  # range kept


def test_randaugment_by_name_and_its_limits():
    assert isinstance(build_augmenter("randaugment", 2, 1, 0.3, "multiclass", (1, 4)), RandAugment)
    with pytest.raises(ValueError, match="randaugment is for 2D images"):
        build_augmenter("randaugment", 3, 1, 0.3, "multiclass")
    with pytest.raises(ValueError, match="randaugment is for 2D images"):
        build_augmenter("randaugment", 2, 1, 0.3, "segmentation")
    with pytest.raises(ValueError, match="n ≥ 1 and 0 ≤ m ≤ 10"):
        RandAugment(2, 11)
