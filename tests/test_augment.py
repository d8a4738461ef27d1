"""Class-balanced sampling (medimbalance.balancing) and the augmentation preset
(medimbalance.augment)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medimbalance.augment import (
    AugmentDraw,
    Augmenter,
    BatchMix,
    MixedTargets,
    Mixup,
    affine_matrices,
    build_augmenter,
    build_mixup,
    cutmix_box,
    rotation_matrices,
)
from medimbalance.balancing import class_draw_probabilities, sample_weights
from medimbalance.training import TensorSet, train_one_epoch


def test_draw_probabilities_follow_each_scheme():
    counts = [400, 100, 25, 0]
    assert np.allclose(class_draw_probabilities(counts, "none"), np.array([400, 100, 25, 0]) / 525)
    assert np.allclose(class_draw_probabilities(counts, "class_balanced"), [1 / 3] * 3 + [0])
    assert np.allclose(class_draw_probabilities(counts, "sqrt"), np.array([20, 10, 5, 0]) / 35)
    beta = 0.99
    effective = [n * (1 - beta) / (1 - beta**n) for n in counts[:3]]
    expected = np.array([*effective, 0]) / sum(effective)
    assert np.allclose(class_draw_probabilities(counts, "effective_number", beta), expected)
    with pytest.raises(ValueError, match="sampler: unknown 'uniform'; valid choices: none, "):
        class_draw_probabilities(counts, "uniform")


def test_weighted_sampler_draws_every_class_equally_in_training():
    labels = np.repeat([0, 1, 2], [500, 50, 5])
    data = TensorSet(torch.zeros(len(labels), 1, 2, 2), torch.from_numpy(labels))
    drawn = []

    class Recorder(nn.Module):
        def forward(self, logits, targets):
            drawn.append(targets.clone())
            return logits.sum() * 0

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    generator = torch.Generator().manual_seed(0)
    weights = torch.from_numpy(sample_weights(labels, 3, "class_balanced"))
    for epoch in range(1, 21):  # 20 epochs × 555 draws
        train_one_epoch(
            model,
            Recorder(),
            optimizer,
            data,
            batch_size=64,
            generator=generator,
            epoch=epoch,
            sampler_weights=weights,
        )
    fractions = np.bincount(torch.cat(drawn).numpy(), minlength=3) / (20 * len(labels))
    assert np.allclose(fractions, 1 / 3, atol=0.015), fractions  # std ≈ 0.003 per class
    assert len(torch.cat(drawn)) == 20 * len(labels)  # an epoch still has len(data) samples


def test_each_transform_of_the_preset_fires_with_probability_0_3():
    augment = Augmenter(spatial_dims=2, channels=3, prob=0.3)
    images = torch.rand(100, 3, 16, 16)
    unchanged = 0
    for epoch in range(20):  # 2000 samples: std of each rate ≈ 0.010
        augment.reseed(0, epoch)
        out, _ = augment(images, torch.zeros(100))
        assert out.shape == images.shape
        unchanged += int((out == images).flatten(1).all(1).sum())
    assert augment.seen == 2000
    for name, rate in augment.rates().items():
        assert abs(rate - 0.3) < 0.04, (name, rate)
    # An image comes back untouched only when none of the four fired: 0.7⁴ ≈ 0.24.
    assert abs(unchanged / 2000 - 0.7**4) < 0.04, unchanged / 2000


def test_augmentation_is_fixed_by_seed_and_epoch():
    images = torch.rand(8, 1, 12, 12)
    runs = []
    for epoch in (1, 1, 2):
        augment = Augmenter(2, 1, prob=0.5)
        augment.reseed(7, epoch)
        runs.append(augment(images, torch.zeros(8))[0])
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def smooth(n, channels, shape, seed=0):
    """Smooth random images (a 5-voxel box blur of noise): bilinear resampling of them is
    well conditioned, so two implementations agree to float precision."""
    x = torch.randn(n, channels, *shape, generator=torch.Generator().manual_seed(seed))
    pool = F.avg_pool2d if len(shape) == 2 else F.avg_pool3d
    return pool(x, 5, stride=1, padding=2, count_include_pad=False)


def test_the_batch_matrices_are_monais():
    from monai.transforms.utils import create_rotate, create_scale, create_shear, create_translate

    rng = np.random.default_rng(0)
    for d in (2, 3):
        angles = rng.uniform(-0.3, 0.3, (5, 1 if d == 2 else 3))
        shear = rng.uniform(-0.1, 0.1, (5, 2 if d == 2 else 6))
        translate, scale = rng.uniform(-3, 3, (5, d)), 1 + rng.uniform(-0.1, 0.1, (5, d))
        expected = [create_rotate(d, tuple(a)) for a in angles]
        assert np.allclose(rotation_matrices(angles), expected, atol=1e-12)
        expected = [
            create_shear(d, tuple(s)) @ create_translate(d, tuple(t)) @ create_scale(d, tuple(c))
            for s, t, c in zip(shear, translate, scale, strict=True)
        ]
        assert np.allclose(affine_matrices(shear, translate, scale), expected, atol=1e-12)


@pytest.mark.parametrize(
    "dims, shape, channels", [(2, (28, 28), 1), (2, (30, 24), 3), (3, (12, 14, 10), 2)]
)
@pytest.mark.parametrize("masks", [False, True])
def test_the_batched_preset_gives_monais_images_for_the_same_draws(dims, shape, channels, masks):
    images = smooth(40, channels, shape)
    labels = (images[:, 0] > 0.1).to(torch.uint8) + (images[:, 0] > 0.3).to(torch.uint8)
    batched, reference = (
        Augmenter(dims, channels, 0.5, masks=masks, batched=flag) for flag in (True, False)
    )
    for augmenter in (batched, reference):
        augmenter.reseed(3, 2)
    for _ in range(2):  # two batches: each draws its own parameters, the same for both paths
        (x, y), (x_ref, y_ref) = batched(images, labels), reference(images, labels)
        # Stated tolerance: 1e-5 on images of unit scale (float32 rounding of the same
        # grid_sample arithmetic); masks (nearest neighbour) and untouched samples exactly.
        assert torch.allclose(x, x_ref, atol=1e-5, rtol=0), (x - x_ref).abs().max()
        assert torch.equal(y, y_ref)
        assert not torch.equal(x, images)
    assert batched.fired == reference.fired and batched.seen == reference.seen == 80
    assert all(batched.fired[name] > 10 for name in Augmenter.NAMES)


def test_the_jitter_follows_monais_formulas_by_hand():
    augment = Augmenter(2, 2, prob=1.0)
    draw = AugmentDraw.draw(np.random.default_rng(0), 1, (4, 4), 2, 1.0)
    draw.fires[:] = [[False, False, False, True]]
    draw.offset[:], draw.gamma[:], draw.colour[:] = 0.05, 0.9, [[0.1, -0.2]]
    image = torch.linspace(0, 1, 32).reshape(1, 2, 4, 4)
    out, _ = augment._batch_apply(image, torch.zeros(1), draw)
    shifted = image + 0.05  # brightness, then gamma over the sample's own range, then colour
    lo, span = shifted.min(), shifted.max() - shifted.min()
    contrast = ((shifted - lo) / (span + 1e-7)) ** 0.9 * span + lo
    expected = contrast * torch.tensor([1.1, 0.8]).view(1, 2, 1, 1)
    assert torch.allclose(out, expected, atol=1e-6)


def test_each_batch_draws_from_seed_epoch_and_batch_so_a_resumed_run_repeats_them():
    images = smooth(16, 1, (12, 12))
    first = Augmenter(2, 1, prob=0.5)
    first.reseed(5, 3)
    batches = [first(images, torch.zeros(16))[0] for _ in range(3)]
    assert not torch.equal(batches[0], batches[1])  # every batch its own draw
    resumed = Augmenter(2, 1, prob=0.5)  # a new process, at the start of the same epoch
    resumed.reseed(5, 3)
    assert all(torch.equal(resumed(images, torch.zeros(16))[0], b) for b in batches)
    with pytest.raises(ValueError, match=r"built for 1-channel 2D images, got a batch of shape"):
        resumed(torch.zeros(2, 3, 12, 12), torch.zeros(2))


def blob_masks(n=6, size=40):
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for i in range(n):
        masks[i, 6 + i : 20 + i, 8:22] = 1
        masks[i, 22:34, 6 + i : 18 + i] = 2
    return masks


def test_masks_move_with_their_images():
    masks = blob_masks()
    images = torch.stack([masks.float() * 10, torch.rand(masks.shape)], 1)  # channel 0 = mask
    augment = build_augmenter("preset", 2, 2, 1.0, "segmentation")  # every transform fires
    augment.reseed(3, 1)
    out_images, out_masks = augment(images, masks)
    assert out_masks.dtype == torch.uint8 and set(out_masks.unique().tolist()) <= {0, 1, 2}
    assert not torch.equal(out_masks, masks)
    for image, mask in zip(out_images, out_masks, strict=True):
        for label in (1, 2):  # the image's drawn regions overlap the mask's labels
            drawn = (image[0] - 10 * label).abs() < 5  # drawn at 10 × label, jittered
            region = mask == label
            overlap = (drawn & region).sum() / (drawn | region).sum()
            assert overlap > 0.6, (label, float(overlap))


def test_foreground_augmentation_leaves_background_only_samples_alone():
    masks = blob_masks(4)
    masks[1] = 0
    masks[3] = 0
    images = torch.rand(4, 1, 40, 40)
    augment = build_augmenter("foreground", 2, 1, 1.0, "segmentation")
    out_images, out_masks = augment(images, masks)
    assert augment.seen == 2
    for i in (1, 3):
        assert torch.equal(out_images[i], images[i]) and torch.equal(out_masks[i], masks[i])
    for i in (0, 2):
        assert not torch.equal(out_images[i], images[i])
    with pytest.raises(ValueError, match="augment: unknown 'strong'; valid choices: none, "):
        build_augmenter("strong", 2, 1, 0.3, "multiclass")
    with pytest.raises(ValueError, match="foreground-only augmentation needs segmentation"):
        build_augmenter("foreground", 2, 1, 0.3, "multiclass")


@pytest.mark.parametrize("asymmetric", [False, True])
def test_mixup_blends_images_and_labels(asymmetric):
    images = torch.randn(4, 2, 6, 5)
    masks = torch.zeros(4, 6, 5, dtype=torch.long)
    masks[0, :2] = 1
    masks[1, 3:] = 2
    mix = build_mixup("asymmetric" if asymmetric else "mixup", 0.2, 3)
    mixed, labels = mix(images, masks, torch.Generator().manual_seed(0))
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


def test_mixup_by_name():
    assert build_mixup("none", 0.2, 3) is None
    assert isinstance(build_mixup("mixup", 0.4, 3), Mixup)
    assert isinstance(build_mixup("mixup", 0.4, 3, "multilabel"), BatchMix)
    with pytest.raises(ValueError, match="mixup: unknown 'cutout'; valid choices: none, mixup"):
        build_mixup("cutout", 0.2, 3)
    with pytest.raises(ValueError, match="'remix' does not apply to multilabel data"):
        build_mixup("remix", 0.2, 3, "multilabel")
    with pytest.raises(ValueError, match="'cutmix' is for image-level tasks"):
        build_mixup("cutmix", 0.2, 3)
    with pytest.raises(ValueError, match="mixup_alpha must be > 0, got 0"):
        build_mixup("mixup", 0.0, 3)


def _draws(seed, n, beta):
    """The generator's draws of a batch mix, by hand: λ's seed, then the partners' order."""
    g = torch.Generator().manual_seed(seed)
    lam = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=g))).beta(*beta)
    return lam, g


def test_classification_mixup_mixes_the_loss_of_both_targets():
    images, labels = torch.randn(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    mixed, targets = BatchMix("mixup", 0.4)(images, labels, torch.Generator().manual_seed(3))
    lam, g = _draws(3, 6, (0.4, 0.4))
    order = torch.randperm(6, generator=g)
    assert torch.allclose(mixed, lam * images + (1 - lam) * images[order])
    assert torch.equal(targets.second, labels[order]) and torch.allclose(
        targets.weight, torch.tensor(lam).float()
    )
    logits = torch.randn(6, 3)
    ce = nn.CrossEntropyLoss()
    expected = lam * ce(logits, labels) + (1 - lam) * ce(logits, labels[order])
    assert targets.loss(ce, logits).item() == pytest.approx(expected.item(), rel=1e-5)
    soft = targets.soft(3)
    assert torch.allclose(soft.sum(1), torch.ones(6)) and soft[0, 0] >= lam - 1e-6


def test_mixed_targets_weigh_each_group_of_samples_by_its_share():
    # Two samples keep their own label (w = 1), one takes its partner's (w = 0), one is mixed.
    mixed = MixedTargets(
        torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2]), torch.tensor([1.0, 1.0, 0.0, 0.3])
    )
    logits = torch.randn(4, 3)
    per = nn.CrossEntropyLoss(reduction="none")
    a, b = per(logits, mixed.first), per(logits, mixed.second)
    expected = (a[0] + a[1] + b[2] + 0.3 * a[3] + 0.7 * b[3]) / 4
    assert mixed.loss(nn.CrossEntropyLoss(), logits).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_cutmix_pastes_one_box_and_mixes_labels_by_the_area_kept():
    images, partner = torch.zeros(2, 1, 10, 10), torch.ones(2, 1, 10, 10)
    rng = np.random.default_rng(0)
    mixed, kept = cutmix_box(images, partner, 0.64, rng)  # side ⌊10·0.6⌋ = 6 before clipping
    centre = np.random.default_rng(0).integers(10, size=2)  # the same draws: rows, then columns
    rows = slice(max(centre[0] - 3, 0), min(centre[0] + 3, 10))
    cols = slice(max(centre[1] - 3, 0), min(centre[1] + 3, 10))
    area = (rows.stop - rows.start) * (cols.stop - cols.start)
    assert kept == pytest.approx(1 - area / 100)
    assert mixed[:, :, rows, cols].eq(1).all() and mixed.sum().item() == 2 * area
    own = torch.arange(1.0, 5.0).view(4, 1, 1, 1).expand(4, 1, 10, 10)  # sample k is k + 1
    out, targets = BatchMix("cutmix", 1.0)(own, torch.arange(4), torch.Generator().manual_seed(2))
    _, g = _draws(2, 4, (1.0, 1.0))
    order = torch.randperm(4, generator=g)
    for k in range(4):
        kept_here = (out[k] == k + 1).float().mean().item()
        assert kept_here == pytest.approx(targets.weight[k].item() if order[k] != k else 1.0)
    assert 0 < targets.weight[0] < 1 and torch.equal(targets.second, order)


def test_remix_gives_the_label_to_the_rarer_class():
    counts = [300, 100, 10]  # n_0 / n_2 = 30 ≥ κ, n_1 / n_2 = 10, n_0 / n_1 = 3
    mix = BatchMix("remix", 1.0, counts=counts)
    images = torch.randn(3, 1, 2, 2)
    labels = torch.tensor([0, 1, 2])
    _, targets = mix(images, labels, torch.Generator().manual_seed(5))
    lam, g = _draws(5, 3, (1.0, 1.0))
    order = torch.randperm(3, generator=g)
    n = torch.tensor(counts, dtype=torch.float64)
    for i, j in enumerate(order.tolist()):
        ratio = n[labels[i]] / n[labels[j]]
        expected = lam
        if ratio >= 3 and lam < 0.5:
            expected = 0.0  # i's class is the frequent one: the label goes to j's
        elif ratio <= 1 / 3 and 1 - lam < 0.5:
            expected = 1.0
        assert targets.weight[i].item() == pytest.approx(expected, abs=1e-6)


def test_balanced_mixup_draws_partners_with_class_balanced_sampling():
    labels = torch.tensor([0] * 9 + [1])
    data = TensorSet(torch.arange(10.0).view(10, 1, 1, 1), labels)
    weights = torch.from_numpy(sample_weights(labels.numpy(), 2, "class_balanced"))
    mix = BatchMix("balanced_mixup", 0.2, data=data, weights=weights)
    batch = torch.zeros(4, 1, 1, 1)
    out, targets = mix(batch, torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(1))
    lam, g = _draws(1, 4, (0.2, 1.0))
    drawn = torch.multinomial(weights, 4, replacement=True, generator=g)
    assert torch.allclose(out.flatten(), lam * drawn.float())  # (1 − λ)·0 + λ·x_balanced
    assert torch.equal(targets.second, labels[drawn])
    assert torch.allclose(targets.weight, torch.tensor(1 - lam).float())
    many = torch.multinomial(
        weights, 10000, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    assert abs(labels[many].float().mean().item() - 0.5) < 0.02  # the rare class half the time
