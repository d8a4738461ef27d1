"""The conditional DCGAN (medimbalance.gan): shapes, conditioning, checkpoints, determinism,
divergence, each few-shot option (upsampling, spectral norm, hinge loss, projection, DiffAugment,
EMA, balanced batches), and the quality measures."""

import numpy as np
import pytest
import torch
from torch import nn

from medimbalance import gan as gan_module
from medimbalance.checkpoints import Checkpoints
from medimbalance.config import TrainConfig
from medimbalance.gan import (
    Discriminator,
    GanConfig,
    GanDivergedError,
    Generator,
    TrainedGan,
    diff_augment,
    epoch_order,
    fid,
    synthesis_quality,
    train_gan,
)
from medimbalance.reporting import synthesis_markdown

TINY = GanConfig(epochs=2, batch_size=16, latent_dim=8, embed_dim=4, width=8, lr=1e-3, seed=3)


def two_classes(n=48, channels=1, size=16, seed=0):
    """Class 0: dark images; class 1: bright ones (uint8, with noise)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], [n - n // 4, n // 4])
    base = np.where(labels == 0, 40, 210)[:, None, None, None]
    images = base + rng.normal(0, 15, (n, channels, size, size))
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.mark.parametrize("channels", [1, 3])
def test_generated_images_have_the_right_shape_dtype_and_class(channels):
    images, labels = two_classes(channels=channels)
    trained, history = train_gan(images, labels, 2, GanConfig(**{**TINY.__dict__, "epochs": 25}))
    assert len(history) == 25 and {"loss_d", "loss_g", "d_real", "d_fake"} <= set(history[0])
    wanted = np.array([0] * 20 + [1] * 20)
    out = trained.sample(wanted, seed=0)
    assert out.shape == (40, channels, 16, 16) and out.dtype == np.uint8
    dark, bright = out[:20].mean(), out[20:].mean()
    assert bright > dark + 60, (dark, bright)  # the condition controls the class
    assert trained.sample(np.empty(0, np.int64), 0).shape == (0, channels, 16, 16)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        trained.sample(np.array([2]), 0)


def test_float_images_come_back_in_their_range():
    images, labels = two_classes()
    scaled = images.astype(np.float32) / 255 * 4 - 2  # z-scored-like range [-2, 2]
    trained, _ = train_gan(scaled, labels, 2, TINY)
    out = trained.sample(labels, 0)
    assert out.dtype == np.float32 and out.min() >= -2.0 - 1e-5 and out.max() <= 2.0 + 1e-5


def test_two_runs_with_one_seed_agree_and_the_saved_generator_reloads(tmp_path):
    images, labels = two_classes()
    first, history_1 = train_gan(images, labels, 2, TINY)
    second, history_2 = train_gan(images, labels, 2, TINY)
    assert history_1 == history_2
    assert np.array_equal(first.sample(labels, 5), second.sample(labels, 5))
    other, _ = train_gan(images, labels, 2, GanConfig(**{**TINY.__dict__, "seed": 4}))
    assert not np.array_equal(first.sample(labels, 5), other.sample(labels, 5))
    first.save(tmp_path / "generator.pt")
    reloaded = TrainedGan.load(tmp_path / "generator.pt")
    assert reloaded.shape == (16, 16) and reloaded.cfg == TINY
    assert np.array_equal(reloaded.sample(labels, 5), first.sample(labels, 5))


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path):
    images, labels = two_classes()
    cfg = GanConfig(**{**TINY.__dict__, "epochs": 3})
    straight, history = train_gan(images, labels, 2, cfg)
    checkpoints = Checkpoints(tmp_path, "gan run")

    def kill_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_gan(images, labels, 2, cfg, checkpoints=checkpoints, on_epoch_end=kill_after_two)
    assert torch.load(checkpoints.path("gan"), weights_only=True)["state"]["epoch"] == 2
    resumed, resumed_history = train_gan(images, labels, 2, cfg, checkpoints=checkpoints)
    assert resumed_history == history
    assert np.array_equal(resumed.sample(labels, 1), straight.sample(labels, 1))


def test_a_diverging_gan_stops_with_a_clear_error(monkeypatch):
    images, labels = two_classes()

    def nan_logits(self, images, labels):
        return torch.full((len(images),), float("nan")) + 0 * self.label(labels).sum()

    monkeypatch.setattr(gan_module.Discriminator, "forward", nan_logits)
    with pytest.raises(
        GanDivergedError, match=r"the discriminator loss is nan at epoch 1, batch 0"
    ):
        train_gan(images, labels, 2, TINY)


def test_bad_inputs_are_refused():
    images, labels = two_classes(size=18)
    with pytest.raises(ValueError, match=r"sides are multiples of 4.*got \(18, 18\)"):
        train_gan(images, labels, 2, TINY)
    images, labels = two_classes()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\)"):
        train_gan(images, labels, 1, TINY)
    broken = images.astype(np.float32)
    broken[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        train_gan(broken, labels, 2, TINY)
    with pytest.raises(ValueError, match=r"gan: unknown key\(s\) \['lr_d'\]"):
        GanConfig.from_dict({"lr_d": 0.1})
    with pytest.raises(ValueError, match=r"gan.width must be ≥ 1"):
        GanConfig(width=0)
    with pytest.raises(ValueError, match=r"gan.upsample must be one of resize, transposed"):
        GanConfig(upsample="bilinear")
    with pytest.raises(ValueError, match=r"gan.loss must be one of hinge, bce, got 'wgan'"):
        GanConfig(loss="wgan")
    with pytest.raises(ValueError, match=r"gan.discriminator must be one of channel, projection"):
        GanConfig(discriminator="acgan")
    with pytest.raises(ValueError, match=r"gan.diffaugment: unknown polic\(ies\) \['flip'\]"):
        GanConfig(diffaugment=["translation", "flip"])
    with pytest.raises(ValueError, match=r"gan.ema must lie in \[0, 1\), got 1"):
        GanConfig(ema=1)
    with pytest.raises(ValueError, match=r"gan.kimg must be > 0 \(or left out\), got 0"):
        GanConfig(kimg=0)
    assert GanConfig(diffaugment="cutout").diffaugment == ("cutout",)


def test_kimg_sets_the_same_number_of_images_for_every_set_size():
    # 26.58 kimg: 60 epochs of 443 images (26,580 exactly, no 61st epoch from rounding), 23
    # of 1,200 (22.15 rounded up: the last epoch is completed); without kimg, epochs.
    cfg = GanConfig(kimg=26.58)
    assert (cfg.epochs_for(443), cfg.epochs_for(1200), cfg.epochs_for(10**6)) == (60, 23, 1)
    assert GanConfig(epochs=7).epochs_for(443) == 7
    assert "kimg" not in GanConfig().settings()  # identities of GANs without it are unchanged
    assert GanConfig(kimg=2.0).settings()["kimg"] == 2.0
    images, labels = two_classes(n=48)  # 0.2 kimg of 48 images: ceil(4.17) = 5 epochs
    _, history = train_gan(images, labels, 2, GanConfig(**{**TINY.__dict__, "kimg": 0.2}))
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]


def test_fid_is_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    real = rng.normal(0, 1, (400, 4))
    same = rng.normal(0, 1, (400, 4))
    shifted = rng.normal(2, 1, (400, 4))
    assert fid(real, real) == pytest.approx(0, abs=1e-6)
    assert fid(real, same) < 0.2
    assert fid(real, shifted) == pytest.approx(16, rel=0.1)  # |Δμ|² = 4 × 2²
    assert fid(real[:1], same) is None


def test_synthesis_quality_reports_fid_and_tstr():
    from medimbalance.features import train_classifier

    images, labels = two_classes(n=64)
    trained, _ = train_gan(images, labels, 2, GanConfig(**{**TINY.__dict__, "epochs": 25}))
    cfg = TrainConfig(epochs=3, batch_size=16)
    extractor, _ = train_classifier(
        "small_cnn", images, labels, images, labels, num_classes=2, cfg=cfg, seed=0, task="binary"
    )
    test_images, test_labels = two_classes(n=40, seed=1)
    quality = synthesis_quality(
        trained,
        extractor,
        test_images,
        test_labels,
        classes=["dark", "bright"],
        cfg=cfg,
        seed=0,
        tstr_per_class=16,
        task="binary",
    )
    assert set(quality["fid_per_class"]) == {"dark", "bright"}
    assert quality["fid"] is not None and quality["fid"] >= 0
    assert quality["real_accuracy"] == 1.0  # the classes are trivially separable
    assert quality["tstr_accuracy"] > 0.9  # so are the generated ones
    table = synthesis_markdown(quality, labels, ["dark", "bright"], "t", 25, 16)
    assert "| bright | 16 |" in table and "| all | 64 |" in table


# ---- The few-shot options, one by one ------------------------------------------------------

PLAIN = dict(
    upsample="transposed",
    spectral_norm=False,
    loss="bce",
    diffaugment=(),
    ema=0.0,
    balanced=False,
)


def smooth_discs(n=96, size=16, seed=0):
    """Two classes of soft bright discs (radius 2.5 or 4.5) on a flat background: images with
    almost no power at high spatial frequencies."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    labels = np.repeat([0, 1], [n - n // 4, n // 4])
    radius = np.where(labels == 0, 2.5, 4.5)[:, None, None]
    cy, cx = rng.uniform(5, size - 5, (2, n))
    distance = np.hypot(yy - cy[:, None, None], xx - cx[:, None, None])
    return (60 + 150 / (1 + np.exp(distance - radius)))[:, None].astype(np.uint8), labels


def upsampling_peaks(images):
    """Power at the frequencies two stride-2 upsamplings print (periods 2 and 4 pixels) over
    the power at the neighbouring frequencies, along each axis (> 1: a spectral peak)."""
    x = images[:, 0].astype(np.float64)
    power = (np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2).mean(0)
    h = power.shape[0]
    ratios = []
    for profile in (power.mean(1), power.mean(0)):
        ratios.append(profile[h // 2] / profile[h // 2 - 1])
        ratios.append(profile[h // 4] / ((profile[h // 4 - 1] + profile[h // 4 + 1]) / 2))
    return np.array(ratios)


def test_resize_convolutions_print_no_periodic_artefact_that_transposed_ones_do():
    images, labels = smooth_discs()
    assert upsampling_peaks(images).max() < 1  # the real images have no such peak
    cfg = GanConfig(**{**TINY.__dict__, "epochs": 25, "lr": GanConfig().lr})
    many = np.repeat([0, 1], 300)  # the spectrum of 600 generated images
    default, _ = train_gan(images, labels, 2, cfg)
    assert upsampling_peaks(default.sample(many, 0)).max() < 1
    plain, _ = train_gan(images, labels, 2, GanConfig(**{**cfg.__dict__, **PLAIN}))
    assert upsampling_peaks(plain.sample(many, 0)).max() > 1.5  # the measure sees its peaks
    layers = lambda net: {type(m) for m in net.modules()}  # noqa: E731
    assert nn.Upsample in layers(default.generator)
    assert nn.ConvTranspose2d not in layers(default.generator)
    assert nn.ConvTranspose2d in layers(plain.generator)


def test_spectral_norm_bounds_every_discriminator_layer_and_drops_batch_norm():
    torch.manual_seed(0)
    d = Discriminator(3, 1, (16, 16), TINY)
    x, y = torch.randn(8, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    for _ in range(30):  # power iterations run in training mode
        d(x, y)
    layers = [*d.body.modules(), *d.head.modules()]  # not the input's label map
    weights = [m.weight for m in layers if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(weights) == 3
    for w in weights:
        assert torch.linalg.matrix_norm(w.flatten(1), ord=2).item() == pytest.approx(1, abs=0.02)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    plain = Discriminator(3, 1, (16, 16), GanConfig(**{**TINY.__dict__, "spectral_norm": False}))
    assert any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_hinge_and_bce_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-3.0, 0.0, 0.5])
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5 + 2)/3 + (0 + 1 + 1.5)/3
    assert gan_module._discriminator_loss("hinge", real, fake).item() == pytest.approx(5 / 3)
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731  -log σ(v) = softplus(-v)
    want = np.mean(softplus(-real.numpy())) + np.mean(softplus(fake.numpy()))
    assert gan_module._discriminator_loss("bce", real, fake).item() == pytest.approx(want)


def test_the_projection_discriminator_adds_the_class_embedding_dot_the_features():
    torch.manual_seed(0)
    d = Discriminator(3, 1, (16, 16), GanConfig(**{**TINY.__dict__, "discriminator": "projection"}))
    d.eval()
    assert d.label is None  # the image alone goes through the convolutions
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        phi = d.body(x).sum(dim=(2, 3))
        for label in range(3):
            y = torch.full((2,), label)
            want = d.head(phi).squeeze(1) + phi @ d.embed.weight[label]
            torch.testing.assert_close(d(x, y), want)
        # Only the projection term depends on the class.
        gap = d(x, torch.tensor([1, 1])) - d(x, torch.tensor([0, 0]))
        torch.testing.assert_close(gap, phi @ (d.embed.weight[1] - d.embed.weight[0]))


def test_diffaugment_translation_shifts_whole_pixels_and_fills_zeros():
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16) + 1
    out = diff_augment(x, ("translation",), torch.Generator().manual_seed(1))
    for image, shifted in zip(x[:, 0].numpy(), out[:, 0].numpy(), strict=True):
        matches = []
        for dy in range(-2, 3):  # at most side/8 = 2 pixels
            for dx in range(-2, 3):
                want = np.zeros_like(image)
                ys, xs = slice(max(dy, 0), 16 + min(dy, 0)), slice(max(dx, 0), 16 + min(dx, 0))
                ys_src = slice(max(-dy, 0), 16 + min(-dy, 0))
                xs_src = slice(max(-dx, 0), 16 + min(-dx, 0))
                want[ys, xs] = image[ys_src, xs_src]
                matches.append(np.array_equal(shifted, want))
        assert sum(matches) == 1
    draws = diff_augment(x.repeat(50, 1, 1, 1), ("translation",), torch.Generator().manual_seed(2))
    assert (draws == x.repeat(50, 1, 1, 1)).all(dim=(1, 2, 3)).any()  # no shift is a draw too


def test_diffaugment_cutout_zeroes_one_half_side_square():
    x = torch.ones(64, 1, 16, 16)
    out = diff_augment(x, ("cutout",), torch.Generator().manual_seed(0))
    for hole in (out[:, 0] == 0).numpy():
        rows, cols = np.nonzero(hole.any(1))[0], np.nonzero(hole.any(0))[0]
        assert hole.sum() == len(rows) * len(cols)  # a rectangle
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8  # 8 × 8, clipped at the border
    interior = [(o[0] == 0).sum().item() for o in out]
    assert 64 in interior  # uncropped holes are 8 × 8


def test_diffaugment_color_is_an_affine_change_per_image_and_lets_gradients_through():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.uniform(-1, 1, (4, 1, 8, 8)), dtype=torch.float32, requires_grad=True)
    out = diff_augment(x, ("color",), torch.Generator().manual_seed(0))
    for before, after in zip(x.detach().numpy(), out.detach().numpy(), strict=True):
        slope, offset = np.polyfit(before.ravel(), after.ravel(), 1)
        assert np.allclose(after, slope * before + offset, atol=1e-5)
        assert 0 <= slope <= 3  # saturation × contrast of one channel: U(0, 2) × U(0.5, 1.5)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    again = diff_augment(x, ("color",), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)  # the same stream draws the same augmentation


def test_the_moving_average_generator_is_what_samples():
    assert gan_module.ema_decay(0.999, 1) == pytest.approx(2 / 11)
    assert gan_module.ema_decay(0.999, 10_000) == 0.999
    average, model = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        average.weight.fill_(1.0), model.weight.fill_(3.0)
    gan_module.update_average(average, model, 0.75)
    torch.testing.assert_close(average.weight, torch.full((1, 2), 1.5))  # 0.75·1 + 0.25·3
    images, labels = two_classes()
    with_ema, _ = train_gan(images, labels, 2, TINY)
    without, _ = train_gan(images, labels, 2, GanConfig(**{**TINY.__dict__, "ema": 0.0}))
    assert isinstance(with_ema.generator, Generator)
    # Same seed, same training; only the sampled weights differ.
    assert not np.array_equal(with_ema.sample(labels, 0), without.sample(labels, 0))


def test_balanced_epochs_draw_every_class_equally_often():
    labels = np.repeat([0, 1, 2], [200, 20, 4])
    rng = torch.Generator().manual_seed(0)
    drawn = np.concatenate([labels[epoch_order(labels, True, rng).numpy()] for _ in range(50)])
    assert len(drawn) == 50 * len(labels)
    np.testing.assert_allclose(np.bincount(drawn) / len(drawn), 1 / 3, atol=0.02)
    plain = epoch_order(labels, False, rng).numpy()
    assert sorted(plain) == list(range(len(labels)))  # a permutation: each row once
