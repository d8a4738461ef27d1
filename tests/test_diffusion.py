"""The class-conditional diffusion synthesizer (medimbalance.diffusion): the sampler's shape,
range and determinism, class control, checkpoints, the noising by hand, and bad settings; the
mask-conditioned model of segmentation data and the new masks its image–mask pairs get; the
findings-conditioned model of multi-label data and the findings vectors it is sampled for."""

import numpy as np
import pytest
import torch

from medimbalance.checkpoints import Checkpoints
from medimbalance.diffusion import (
    DiffusionConfig,
    FindingsEmbedding,
    TrainedDiffusion,
    finding_classes,
    findings_quality,
    generation_findings,
    generation_masks,
    image_classes,
    load_synthesizer,
    one_hot,
    schedulers,
    train_diffusion,
)
from medimbalance.gan import GanConfig, train_gan

TINY = DiffusionConfig(
    epochs=2, batch_size=16, channels=(8, 16), timesteps=100, sample_steps=10, lr=2e-3, seed=1
)


def two_classes(n=48, size=16, seed=0):
    """Class 0: dark images; class 1: bright ones (uint8, with noise)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], [n - n // 4, n // 4])
    base = np.where(labels == 0, 40, 210)[:, None, None, None]
    images = base + rng.normal(0, 15, (n, 1, size, size))
    return np.clip(images, 0, 255).astype(np.uint8), labels


def test_samples_have_the_shape_dtype_and_range_of_the_images_and_follow_the_seed(tmp_path):
    images, labels = two_classes()
    model, history = train_diffusion(images, labels, 2, TINY)
    assert [r["epoch"] for r in history] == [1, 2] and np.isfinite(history[-1]["loss"])
    wanted = np.array([0, 1, 1, 0, 1])
    out = model.sample(wanted, seed=0)
    assert out.shape == (5, 1, 16, 16) and out.dtype == np.uint8
    assert np.array_equal(out, model.sample(wanted, seed=0))  # DDIM with η = 0
    assert not np.array_equal(out, model.sample(wanted, seed=1))
    # Batches do not change what each image is.
    assert np.array_equal(out, model.sample(wanted, seed=0, batch_size=2))
    assert model.sample(np.empty(0, np.int64), 0).shape == (0, 1, 16, 16)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        model.sample(np.array([2]), 0)
    scaled = images.astype(np.float32) / 255 * 4 - 2  # a z-scored-like range [-2, 2]
    floats, _ = train_diffusion(scaled, labels, 2, TINY)
    values = floats.sample(labels[:6], 0)
    assert values.dtype == np.float32 and values.min() >= -2 - 1e-5 and values.max() <= 2 + 1e-5
    model.save(tmp_path / "generator.pt")
    reloaded = load_synthesizer(tmp_path / "generator.pt")
    assert isinstance(reloaded, TrainedDiffusion) and reloaded.cfg == TINY
    assert np.array_equal(reloaded.sample(wanted, 0), out)


def test_the_class_controls_the_samples():
    images, labels = two_classes(n=64)
    cfg = DiffusionConfig(**{**TINY.__dict__, "epochs": 40})
    model, _ = train_diffusion(images, labels, 2, cfg)
    out = model.sample(np.repeat([0, 1], 12), seed=0).astype(float)
    dark, bright = out[:12].mean(), out[12:].mean()
    assert bright > dark + 60, (dark, bright)


def test_two_runs_agree_and_a_killed_run_resumes_from_its_checkpoint(tmp_path):
    images, labels = two_classes()
    cfg = DiffusionConfig(**{**TINY.__dict__, "epochs": 3})
    straight, history = train_diffusion(images, labels, 2, cfg)
    _, history_again = train_diffusion(images, labels, 2, cfg)
    assert history == history_again
    checkpoints = Checkpoints(tmp_path, "diffusion run")

    def kill_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_diffusion(
            images, labels, 2, cfg, checkpoints=checkpoints, on_epoch_end=kill_after_two
        )
    assert torch.load(checkpoints.path("diffusion"), weights_only=True)["state"]["epoch"] == 2
    resumed, resumed_history = train_diffusion(images, labels, 2, cfg, checkpoints=checkpoints)
    assert resumed_history == history
    np.testing.assert_array_equal(resumed.sample(labels[:8], 3), straight.sample(labels[:8], 3))


@pytest.mark.parametrize("timesteps", [100, 1000])
def test_the_training_noise_follows_the_ddpm_forward_process_to_pure_noise(timesteps):
    """x_t = sqrt(ᾱ_t)·x_0 + sqrt(1 − ᾱ_t)·ε, ᾱ_t the product of (1 − β_s), β linear from
    1e-4 to 0.02 over 1000 steps, scaled by 1000 / T for T steps."""
    cfg = DiffusionConfig(timesteps=timesteps, sample_steps=10)
    training, sampling = schedulers(cfg)
    betas = np.linspace(1e-4, 0.02, timesteps) * 1000 / timesteps
    alpha_bar = np.cumprod(1 - betas)
    assert alpha_bar[-1] < 1e-4  # the last step is noise: sampling may start from N(0, 1)
    x0, eps = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), -1.0)
    for t in (0, timesteps // 3, timesteps - 1):
        noised = training.add_noise(x0, eps, torch.tensor([t]))
        want = np.sqrt(alpha_bar[t]) * 0.5 - np.sqrt(1 - alpha_bar[t])
        assert noised.flatten()[0].item() == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert len(sampling.timesteps) == 10 and sampling.timesteps.max() < timesteps


def test_the_saved_file_says_which_model_it_holds(tmp_path):
    images, labels = two_classes()
    gan, _ = train_gan(images, labels, 2, GanConfig(epochs=1, batch_size=16, width=8))
    gan.save(tmp_path / "generator.pt")
    loaded = load_synthesizer(tmp_path / "generator.pt")
    assert loaded.kind == "cdcgan" and loaded.sample(labels[:3], 0).shape == (3, 1, 16, 16)


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValueError, match=r"diffusion: unknown key\(s\) \['beta'\]"):
        DiffusionConfig.from_dict({"beta": 0.1})
    with pytest.raises(ValueError, match=r"channels must be multiples of 8.*got \[8, 12\]"):
        DiffusionConfig(channels=[8, 12])
    with pytest.raises(ValueError, match=r"sample_steps \(80\) cannot exceed .*timesteps \(60\)"):
        DiffusionConfig(timesteps=60, sample_steps=80)
    with pytest.raises(ValueError, match=r"diffusion.prediction must be one of v, epsilon"):
        DiffusionConfig(prediction="x0")
    with pytest.raises(ValueError, match=r"diffusion.timesteps must be ≥ 50, got 20"):
        DiffusionConfig(timesteps=20, sample_steps=10)
    with pytest.raises(ValueError, match=r"diffusion.ema must lie in \[0, 1\)"):
        DiffusionConfig(ema=1.0)
    images, labels = two_classes(size=18)
    with pytest.raises(
        ValueError, match=r"multiples of 4 \(its 3 levels halve them 2 times\), got \(18, 18\)"
    ):
        train_diffusion(
            images, labels, 2, DiffusionConfig(**{**TINY.__dict__, "channels": (8, 8, 8)})
        )
    images, labels = two_classes()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\)"):
        train_diffusion(images, labels, 1, TINY)


def squares(n=32, size=16, seed=0):
    """Images bright inside a square lesion of label 1 (a 2 × 2 core of label 2 in half of
    them) and dark elsewhere, with their label maps."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        r, c = rng.integers(2, size - 8, 2)
        masks[i, r : r + 6, c : c + 6] = 1
        if i % 2:
            masks[i, r + 2 : r + 4, c + 2 : c + 4] = 2
    images = np.where(masks > 0, 200.0, 40.0)[:, None] + rng.normal(0, 10, (n, 1, size, size))
    return np.clip(images, 0, 255).astype(np.uint8), masks


def test_image_classes_are_the_rarest_label_each_map_contains():
    masks = np.zeros((4, 2, 2), np.uint8)
    masks[1, 0, 0] = 1  # labels {0, 1}
    masks[2, 0, 0], masks[2, 1, 1] = 1, 2  # {0, 1, 2}: 2 is in 1 map, 1 in 2 maps
    masks[3] = 3  # {3} alone
    # Maps containing each label: 0 → 3, 1 → 2, 2 → 1, 3 → 1.
    assert image_classes(masks, 4).tolist() == [0, 1, 2, 3]
    assert one_hot(torch.from_numpy(masks[2:3]), 4)[0, :, 0, 0].tolist() == [0, 1, 0, 0]
    assert one_hot(torch.from_numpy(masks), 4).sum(1).eq(1).all()


def test_new_masks_are_symmetries_of_training_masks_with_rare_labels_drawn_as_often():
    masks = np.zeros((10, 6, 6), np.uint8)
    masks[:, 0, :2] = 1  # every map: label 1 in the top-left corner
    masks[0, 4:, 4:] = 2  # one map also holds the rare label 2 (bottom-right)
    new = generation_masks(masks, 3, ratio=40.0, seed=0)
    assert new.shape == (400, 6, 6) and new.dtype == np.uint8
    symmetries = {
        np.rot90(m, k)[:, ::flip].tobytes() for m in masks[:2] for k in range(4) for flip in (1, -1)
    }
    assert all(m.tobytes() in symmetries for m in new)
    # Weights 1/n_c: the map with label 2 (class 2, n = 1) weighs 1, the 9 others 1/9 each,
    # so half of the draws hold label 2 (binomial sd for 400 draws: 10).
    rare = sum((m == 2).any() for m in new)
    assert 160 < rare < 240
    # Every symmetry of the square is drawn (8 of them for the asymmetric first map).
    drawn = {m.tobytes() for m in new if (m == 2).any()}
    assert len(drawn) == 8
    # Non-square maps are only flipped (4 symmetries, shape kept).
    wide = np.pad(masks, ((0, 0), (0, 0), (0, 2)))
    flat = generation_masks(wide, 3, 4.0, 1)
    flips = {m[::a, ::b].tobytes() for m in wide[:2] for a in (1, -1) for b in (1, -1)}
    assert flat.shape == (40, 6, 8) and all(m.tobytes() in flips for m in flat)
    assert generation_masks(masks, 3, 0.25, 0).shape == (2, 6, 6)  # round(0.25 · 10)
    assert np.array_equal(generation_masks(masks, 3, 1.0, 5), generation_masks(masks, 3, 1.0, 5))
    with pytest.raises(ValueError, match="ratio must be > 0"):
        generation_masks(masks, 3, 0.0, 0)
    with pytest.raises(ValueError, match=r"label maps \(N, H, W\)"):
        generation_masks(masks[0], 3, 1.0, 0)


def test_a_mask_conditioned_model_draws_its_images_to_the_masks(tmp_path):
    images, masks = squares(n=48)
    cfg = DiffusionConfig(**{**TINY.__dict__, "epochs": 30, "guidance": 1.0, "drop_class": 0.0})
    model, _ = train_diffusion(images, masks, 3, cfg, condition="mask")
    assert model.condition == "mask"
    wanted = generation_masks(masks, 3, 0.25, 7)
    out = model.sample(wanted, seed=0)
    assert out.shape == (12, 1, 16, 16) and out.dtype == np.uint8
    assert np.array_equal(out, model.sample(wanted, seed=0))
    assert not np.array_equal(out, model.sample(wanted, seed=1))
    # The lesion is where the mask puts it: bright inside, dark outside (real: 200 vs 40).
    inside = out[:, 0][wanted > 0].mean()
    outside = out[:, 0][wanted == 0].mean()
    assert inside - outside > 80, (inside, outside)
    model.save(tmp_path / "generator.pt")
    reloaded = load_synthesizer(tmp_path / "generator.pt")
    assert reloaded.condition == "mask" and np.array_equal(reloaded.sample(wanted, 0), out)
    with pytest.raises(ValueError, match=r"makes \(16, 16\) images; got label maps of shape"):
        model.sample(np.zeros((1, 8, 8), np.int64), 0)
    with pytest.raises(ValueError, match="one label map of shape"):
        train_diffusion(images, masks[:, :8], 3, TINY, condition="mask")
    with pytest.raises(ValueError, match="condition must be one of class, mask"):
        train_diffusion(images, masks, 3, TINY, condition="text")


def quadrant_findings(n=64, size=16, seed=0):
    """Multi-hot findings of 3 findings (prevalences 1/2, 1/4, 1/8); finding k brightens the
    k-th quadrant (top left, top right, bottom left) of a dark image."""
    rng = np.random.default_rng(seed)
    findings = (rng.random((n, 3)) < [0.5, 0.25, 0.125]).astype(np.uint8)
    images = np.full((n, 1, size, size), 40.0) + rng.normal(0, 10, (n, 1, size, size))
    half = size // 2
    for k, (r, c) in enumerate([(0, 0), (0, half), (half, 0)]):
        images[findings[:, k] == 1, :, r : r + half, c : c + half] += 160
    return np.clip(images, 0, 255).astype(np.uint8), findings


def test_the_findings_embedding_sums_the_embeddings_of_the_findings_present():
    embedding = FindingsEmbedding(3, 4)
    rows = embedding.findings.detach()
    y = torch.tensor([[1.0, 0, 1], [0, 0, 0], [-1, -1, -1], [0, 1, 0]])
    out = embedding(y).detach()
    assert torch.allclose(out[0], rows[0] + rows[2])
    assert torch.equal(out[1], torch.zeros(4))  # no finding: the zero vector
    assert torch.equal(out[2], embedding.unconditional.detach())  # "no condition"
    assert torch.allclose(out[3], rows[1])


def test_finding_classes_are_each_images_rarest_finding_or_none():
    # images with each finding: 3, 2, 2 (findings 1 and 2 tie: the higher one is rarer)
    findings = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 1], [0, 0, 0]])
    assert finding_classes(findings).tolist() == [0, 1, 2, 2, 3]


def test_new_findings_vectors_bring_every_finding_to_the_goal_from_its_own_images():
    # images with each finding: 6, 3, 1, 0 — goal at ratio 1: 6 for each
    findings = np.array(
        [[1, 0, 0, 0]] * 3 + [[1, 1, 0, 0]] * 2 + [[1, 0, 1, 0]] + [[0, 1, 0, 0]] + [[0] * 4]
    )
    new = generation_findings(findings, 1.0, seed=0)
    # the rarest finding first: 5 copies of its only image [1, 0, 1, 0], which make the most
    # frequent one 11; then finding 1 needs 3 draws among its images [1, 1, 0, 0], [0, 1, 0, 0]
    assert len(new) == 8
    assert (new[:5] == [1, 0, 1, 0]).all()
    assert all(row.tolist() in ([1, 1, 0, 0], [0, 1, 0, 0]) for row in new[5:])
    total = findings.sum(0) + new.sum(0)
    assert (total[:3] >= 6).all() and total[3] == 0  # no image has finding 3: left out
    assert np.array_equal(new, generation_findings(findings, 1.0, seed=0))
    half = generation_findings(findings, 0.5, seed=0)  # goal 3: finding 2 gets 2 copies
    assert half.tolist() == [[1, 0, 1, 0]] * 2
    for ratio in (0.0, 1.5):
        with pytest.raises(ValueError, match=r"ratio must lie in \(0, 1\]"):
            generation_findings(findings, ratio, 0)
    with pytest.raises(ValueError, match=r"expected multi-hot findings \(N, L\)"):
        generation_findings(findings[:, 0], 1.0, 0)


def test_a_findings_conditioned_model_draws_each_finding_where_it_belongs(tmp_path):
    images, findings = quadrant_findings(n=64)
    cfg = DiffusionConfig(**{**TINY.__dict__, "epochs": 40})
    model, history = train_diffusion(images, findings, 3, cfg, condition="findings")
    assert model.condition == "findings" and np.isfinite(history[-1]["loss"])
    wanted = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], [1, 0, 1]] * 4, np.uint8)
    out = model.sample(wanted, seed=0)
    assert out.shape == (20, 1, 16, 16) and out.dtype == np.uint8
    assert np.array_equal(out, model.sample(wanted, seed=0))
    assert not np.array_equal(out, model.sample(wanted, seed=1))
    quadrants = [(0, 0), (0, 8), (8, 0)]
    for k, (r, c) in enumerate(quadrants):
        inside = out[:, 0, r : r + 8, c : c + 8].mean(axis=(1, 2)).astype(float)
        # bright (real: 200) in the images with finding k, dark (real: 40) in the others
        assert inside[wanted[:, k] == 1].mean() - inside[wanted[:, k] == 0].mean() > 60, k
    model.save(tmp_path / "generator.pt")
    reloaded = load_synthesizer(tmp_path / "generator.pt")
    assert reloaded.condition == "findings"
    assert np.array_equal(reloaded.sample(wanted, 0), out)
    with pytest.raises(ValueError, match=r"expected findings vectors \(N, 3\)"):
        model.sample(np.zeros((2, 4), np.uint8), 0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        model.sample(np.full((2, 3), 2), 0)
    with pytest.raises(ValueError, match=r"expected findings vectors \(N, 3\)"):
        train_diffusion(images, findings[:, :2], 3, TINY, condition="findings")


def test_the_findings_quality_report_measures_fid_and_auroc_per_finding():
    from medimbalance.config import TrainConfig
    from medimbalance.features import train_classifier

    images, findings = quadrant_findings(n=96)
    model, _ = train_diffusion(images[:64], findings[:64], 3, TINY, condition="findings")
    cfg = TrainConfig(epochs=2, batch_size=16)
    extractor, _ = train_classifier(
        "small_cnn", images[:64], findings[:64], images[64:80], findings[64:80],
        num_classes=3, cfg=cfg, seed=0, task="multilabel",
    )  # fmt: skip
    names = ["a", "b", "c"]
    report = findings_quality(
        model, extractor, (images[64:], findings[64:]), findings[:64],
        classes=names, cfg=cfg, seed=0, tstr_per_class=8,
    )  # fmt: skip
    assert set(report["fid_per_class"]) == set(names)
    assert report["tstr_images"] == 8 * 4  # 3 findings and "no finding"
    for prefix in ("tstr", "real"):
        assert 0 <= report[f"{prefix}_auroc"] <= 1
        per = [v for v in report[f"{prefix}_auroc_per_class"].values() if v is not None]
        assert report[f"{prefix}_auroc"] == pytest.approx(np.mean(per))


def test_the_findings_quality_table_has_a_row_per_finding_and_says_n_a_for_missing_values():
    from medimbalance.reporting import findings_synthesis_markdown

    quality = {
        "fid": 1.25,
        "fid_per_class": {"a": 0.5, "b": None},
        "tstr_images": 24,
        "tstr_auroc": 0.8,
        "real_auroc": 0.9,
        "tstr_auroc_per_class": {"a": 0.75, "b": None},
        "real_auroc_per_class": {"a": 0.95, "b": 0.85},
    }
    train = np.array([[1, 0], [1, 1], [0, 0]])
    table = findings_synthesis_markdown(quality, train, ["a", "b"], "t", 7, 8, "Model")
    assert "Model trained for 7 epochs on 3 real images" in table
    assert "| a | 2 | 0.500 | 0.750 | 0.950 |" in table
    assert "| b | 1 | n/a | n/a | 0.850 |" in table
    assert "| all (macro AUROC) | 3 images | 1.250 | 0.800 | 0.900 |" in table
    assert "24 generated images (8 per finding and for no finding" in table
