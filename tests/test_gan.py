"""The conditional DCGAN (medimbalance.gan): shapes, conditioning, checkpoints, determinism,
divergence, and the quality measures."""

import numpy as np
import pytest
import torch

from medimbalance import gan as gan_module
from medimbalance.checkpoints import Checkpoints
from medimbalance.config import TrainConfig
from medimbalance.gan import (
    GanConfig,
    GanDivergedError,
    TrainedGan,
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
