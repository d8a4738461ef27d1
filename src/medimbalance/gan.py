"""Conditional DCGAN for minority-class synthesis (Paul and Tewari 2021), and the measures of its
images.

The generator and the discriminator are conditioned on the class as Paul and Tewari recommend:
an embedding of the label, followed by a linear layer that scales it to the size of a feature
map (the generator's first map, the discriminator's input image), concatenated as an extra
channel (Radford et al., ICLR 2016, for the DCGAN; Mirza and Osindero 2014 for the condition).
2D images of any channel count whose sides are multiples of 4.

The plain DCGAN, trained on a dozen images of a class, prints stripes and grey noise instead of
lesions. The defaults (:class:`GanConfig`) are the known remedies of that regime: upsampling by
nearest-neighbour resize and convolution (Odena, Dumoulin and Olah 2016), a spectrally
normalised discriminator (Miyato et al. 2018) with the hinge loss (Lim and Ye 2017),
differentiable augmentation of everything the discriminator sees (DiffAugment, Zhao et al.
2020), sampling from a moving average of the generator's weights (Karras et al. 2018) and
class-balanced batches; a projection discriminator (Miyato and Koyama 2018) is an option.

Training is seeded, checkpointed after every epoch and resumable; a NaN or infinite loss stops
it with ``GanDivergedError``. Quality is measured by the FID (MONAI ``FIDMetric``) between
features of real and generated images, taken from a classifier trained on real data, and by the
accuracy on real test images of a classifier trained on generated images only (TSTR).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import Checkpoints, load_model_file, save_model
from .config import TrainConfig

log = logging.getLogger(__name__)


class GanDivergedError(FloatingPointError):
    """A GAN loss became NaN or infinite."""


UPSAMPLING = ("resize", "transposed")
LOSSES = ("hinge", "bce")
CONDITIONING = ("channel", "projection")
AUGMENTATIONS = ("translation", "cutout", "color")


@dataclass(frozen=True)
class GanConfig:
    """Settings of one conditional DCGAN (``methods.<name>.resample_args.gan``).

    The defaults are the combination that works on a few dozen images per class; ``upsample:
    transposed, spectral_norm: false, loss: bce, discriminator: channel, diffaugment: [],
    ema: 0, balanced: false`` is the plain DCGAN of Paul and Tewari (2021)."""

    epochs: int = 30  # passes over the imbalanced training set (its size in images per epoch)
    # Thousands of real images shown to the discriminator (StyleGAN's "kimg"): when set, the
    # training length whatever the set's size (epochs_for), instead of ``epochs``.
    kimg: float | None = None
    batch_size: int = 64  # real images per step
    latent_dim: int = 64  # size of the noise vector z
    embed_dim: int = 50  # size of the label embedding
    width: int = 64  # channels of the widest convolution
    lr: float = 5e-4  # Adam learning rate of both networks (the plain DCGAN: 2e-4)
    beta1: float = 0.5  # Adam β1 (the DCGAN setting)
    upsample: str = "resize"  # generator: nearest-neighbour resize + 3×3 conv, or transposed conv
    spectral_norm: bool = True  # spectral normalisation of every discriminator layer
    loss: str = "hinge"  # hinge loss (Lim and Ye 2017) or the original binary cross-entropy
    discriminator: str = "channel"  # class as an extra input channel, or a projection
    diffaugment: tuple[str, ...] = ("translation",)  # DiffAugment policies (Zhao et al. 2020)
    ema: float = 0.999  # decay of the generator's moving average used for sampling; 0 = off
    balanced: bool = True  # class-balanced batches (every class drawn equally often)
    seed: int = 0  # weights, batch order and noise

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "latent_dim", "embed_dim", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"gan.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.beta1 < 1:
            raise ValueError(
                f"gan.lr must be > 0 and gan.beta1 in [0, 1), got {self.lr}, {self.beta1}"
            )
        for name, choices in (
            ("upsample", UPSAMPLING),
            ("loss", LOSSES),
            ("discriminator", CONDITIONING),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"gan.{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}"
                )
        policies = (self.diffaugment,) if isinstance(self.diffaugment, str) else self.diffaugment
        object.__setattr__(self, "diffaugment", tuple(policies))
        wrong = [p for p in self.diffaugment if p not in AUGMENTATIONS]
        if wrong:
            raise ValueError(
                f"gan.diffaugment: unknown polic(ies) {wrong}; valid: {', '.join(AUGMENTATIONS)}"
            )
        if not 0 <= self.ema < 1:
            raise ValueError(f"gan.ema must lie in [0, 1), got {self.ema}")
        if self.kimg is not None and not self.kimg > 0:
            raise ValueError(f"gan.kimg must be > 0 (or left out), got {self.kimg}")

    def epochs_for(self, images: int) -> int:
        """Epochs of training on a set of ``images`` images: ``epochs``, or with ``kimg`` as
        many as show the discriminator ``1000 · kimg`` real images (the last epoch completed),
        so that GANs of different profiles train for the same number of steps."""
        if self.kimg is None:
            return self.epochs
        return max(1, math.ceil(round(1000 * self.kimg / images, 9)))

    @classmethod
    def from_dict(cls, values: dict) -> GanConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"gan: unknown key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**values)

    def settings(self) -> dict:
        """The settings as plain values (saved with the generator, hashed into run identities;
        ``kimg`` only when set, so that GANs trained before it existed keep their identity)."""
        values = {**asdict(self), "diffaugment": list(self.diffaugment)}
        if self.kimg is None:
            del values["kimg"]
        return values


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) != 2 or any(s % 4 or s < 8 for s in shape):
        raise ValueError(
            f"the conditional DCGAN takes 2D images whose sides are multiples of 4 (at least 8), "
            f"got {tuple(shape)} (set the dataset's preprocess.shape)"
        )
    return shape[0], shape[1]


class LabelMap(nn.Module):
    """The class as an extra feature map: embedding → linear layer → ``(B, 1, H, W)``."""

    def __init__(self, num_classes: int, embed_dim: int, shape: tuple[int, int]) -> None:
        super().__init__()
        self.shape = shape
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.scale = nn.Linear(embed_dim, shape[0] * shape[1])

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.scale(self.embed(labels)).view(len(labels), 1, *self.shape)


def _upsample(in_channels: int, out_channels: int, how: str) -> list[nn.Module]:
    """Double the side: a 4×4 stride-2 transposed convolution (DCGAN), or a nearest-neighbour
    resize followed by a 3×3 convolution, whose kernels overlap evenly and so cannot print the
    checkerboard of uneven overlap (Odena, Dumoulin and Olah 2016)."""
    if how == "transposed":
        return [nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1)]
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
    ]


class Generator(nn.Module):
    """z and the class → an image in ``[−1, 1]``: a linear projection to ``2·width`` maps of a
    quarter of the image side, the label map concatenated, two upsamplings (``cfg.upsample``;
    to ``width`` then ``width/2`` channels, ``width`` twice for transposed convolutions as the
    plain DCGAN had; batch norm, LeakyReLU), a 3×3 convolution and tanh."""

    def __init__(
        self, num_classes: int, channels: int, shape: tuple[int, ...], cfg: GanConfig
    ) -> None:
        super().__init__()
        h, w = _check_shape(shape)
        self.start = (h // 4, w // 4)
        self.wide = wide = 2 * cfg.width
        # Channels halve with each doubling of the side (DCGAN); the plain DCGAN keeps width.
        narrow = cfg.width if cfg.upsample == "transposed" else max(cfg.width // 2, 1)
        self.project = nn.Sequential(
            nn.Linear(cfg.latent_dim, wide * self.start[0] * self.start[1]), nn.LeakyReLU(0.2)
        )
        self.label = LabelMap(num_classes, cfg.embed_dim, self.start)
        self.body = nn.Sequential(
            *_upsample(wide + 1, cfg.width, cfg.upsample),
            nn.BatchNorm2d(cfg.width),
            nn.LeakyReLU(0.2),
            *_upsample(cfg.width, narrow, cfg.upsample),
            nn.BatchNorm2d(narrow),
            nn.LeakyReLU(0.2),
            nn.Conv2d(narrow, channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        maps = self.project(z).view(len(z), self.wide, *self.start)
        return self.body(torch.cat([maps, self.label(labels)], dim=1))


class Discriminator(nn.Module):
    """An image and the class → one logit (real vs generated): two stride-2 convolutions with
    LeakyReLU, then

    - ``channel`` conditioning (the seed's): the class enters as an extra input channel, and
      dropout and a linear layer of the flattened maps give the logit;
    - ``projection`` (Miyato and Koyama 2018): the image alone goes through the convolutions,
      ``φ`` their maps summed over space, and the logit is ``ψ(φ) + ⟨embed(y), φ⟩``.

    With ``spectral_norm`` every layer's weight is divided by its largest singular value
    (Miyato et al. 2018) and batch norm is left out; without it, the DCGAN's batch norm."""

    def __init__(
        self, num_classes: int, channels: int, shape: tuple[int, ...], cfg: GanConfig
    ) -> None:
        super().__init__()
        h, w = _check_shape(shape)
        sn = nn.utils.parametrizations.spectral_norm if cfg.spectral_norm else (lambda m: m)
        self.projection = cfg.discriminator == "projection"
        wide = 2 * cfg.width
        self.label = None if self.projection else LabelMap(num_classes, cfg.embed_dim, (h, w))
        norm = [] if cfg.spectral_norm else [nn.BatchNorm2d(wide)]
        self.body = nn.Sequential(
            sn(nn.Conv2d(channels + (not self.projection), cfg.width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(cfg.width, wide, 4, stride=2, padding=1)),
            *norm,
            nn.LeakyReLU(0.2),
        )
        if self.projection:
            self.head = sn(nn.Linear(wide, 1))
            self.embed = sn(nn.Embedding(num_classes, wide))
        else:
            self.head = nn.Sequential(
                nn.Flatten(), nn.Dropout(0.4), sn(nn.Linear(wide * (h // 4) * (w // 4), 1))
            )

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self.projection:
            return self.head(self.body(torch.cat([images, self.label(labels)], dim=1))).squeeze(1)
        phi = self.body(images).sum(dim=(2, 3))
        return self.head(phi).squeeze(1) + (self.embed(labels) * phi).sum(dim=1)


def _init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: convolutions N(0, 0.02), batch-norm scales N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# ---- Differentiable augmentation (Zhao et al. 2020) ----------------------------------------


def diff_augment(x: torch.Tensor, policies: tuple[str, ...], rng: torch.Generator) -> torch.Tensor:
    """Augment a batch in ``[−1, 1]`` differentiably, each image by its own draw from ``rng``
    (a CPU generator, so a resumed run draws the same), policy by policy in the order given,
    with Zhao et al.'s ranges:

    - ``color``: brightness ``+ U(−0.5, 0.5)``; saturation (each channel's deviation from the
      pixel's mean over channels; nothing for one channel) ``× U(0, 2)``; contrast (deviation
      from the image mean) ``× U(0.5, 1.5)``;
    - ``translation``: a shift by a whole number of pixels in ``[−side/8, side/8]`` per axis,
      the pixels shifted in set to 0;
    - ``cutout``: a square of half the side, centred anywhere in the image, set to 0.
    """
    n, _, h, w = x.shape

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(n, *shape, generator=rng).to(x.device, x.dtype)

    def integers(low: int, high: int) -> torch.Tensor:
        return torch.randint(low, high + 1, (n, 1, 1), generator=rng).to(x.device)

    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    for policy in policies:
        if policy == "color":
            x = x + (uniform(1, 1, 1) - 0.5)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (uniform(1, 1, 1) * 2) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (uniform(1, 1, 1) + 0.5) + mean
        elif policy == "translation":
            dy, dx = integers(-(h // 8), h // 8), integers(-(w // 8), w // 8)
            src_y, src_x = rows - dy, cols - dx  # (n, h, 1) and (n, 1, w)
            inside = (src_y >= 0) & (src_y < h) & (src_x >= 0) & (src_x < w)
            batch = torch.arange(n, device=x.device).view(n, 1, 1)
            moved = x[batch, :, src_y.clamp(0, h - 1), src_x.clamp(0, w - 1)]  # (n, h, w, C)
            x = moved.permute(0, 3, 1, 2) * inside.unsqueeze(1).to(x.dtype)
        elif policy == "cutout":
            top, left = integers(0, h - 1) - h // 4, integers(0, w - 1) - w // 4
            hole = (rows >= top) & (rows < top + h // 2) & (cols >= left) & (cols < left + w // 2)
            x = x * (~hole).unsqueeze(1).to(x.dtype)
        else:
            raise ValueError(f"unknown DiffAugment policy {policy!r}")
    return x


def ema_decay(decay: float, step: int) -> float:
    """The moving average's decay at ``step`` (from 1): ``min(decay, (1 + t)/(10 + t))``, so the
    first steps' random weights are forgotten quickly (TensorFlow's ``num_updates`` warm-up)."""
    return min(decay, (1 + step) / (10 + step))


@dataclass(frozen=True)
class Intensity:
    """How stored images map to the GAN's ``[−1, 1]``: ``lo`` → −1, ``hi`` → +1. uint8 images
    use ``[0, 255]`` (as the classifiers do); float images their training set's range."""

    dtype: str
    lo: float
    hi: float

    @classmethod
    def of(cls, images: np.ndarray) -> Intensity:
        if images.dtype == np.uint8:
            return cls("uint8", 0.0, 255.0)
        lo, hi = float(np.min(images)), float(np.max(images))
        if not np.isfinite([lo, hi]).all():
            raise ValueError("the training images hold NaN or infinite values")
        return cls(str(images.dtype), lo, hi if hi > lo else lo + 1.0)

    def to_unit(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(images, dtype=np.float32))
        return (x - self.lo) / (self.hi - self.lo) * 2 - 1

    def from_unit(self, x: torch.Tensor) -> np.ndarray:
        values = ((x.float().cpu().numpy() + 1) / 2) * (self.hi - self.lo) + self.lo
        if self.dtype == "uint8":
            return np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return values.astype(self.dtype)


def training_set(
    images: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray, Intensity]:
    """The training images and int64 labels of a generative model, checked, and their
    intensity range."""
    images = np.asarray(images)
    labels = np.asarray(labels, dtype=np.int64)
    if images.ndim != 4 or len(images) != len(labels) or not len(labels):
        raise ValueError(
            f"expected images (N, C, H, W) and N labels, got {images.shape} and {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    return images, labels, Intensity.of(images)


class Synthesizer:
    """What the trained generative models share (:class:`TrainedGan` and the diffusion model):
    the file they are saved to, and the check of the labels they are asked for. A subclass has
    ``network``, ``cfg`` (with ``settings()``), ``kind``, ``num_classes``, ``channels``,
    ``shape`` and ``intensity``."""

    def save(self, path: str | Path) -> None:
        """Write the network (``generator.pt``) with its settings and image format."""
        meta = {
            "kind": self.kind,
            "num_classes": self.num_classes,
            "channels": self.channels,
            "shape": list(self.shape),
            "intensity": asdict(self.intensity),
            "condition": getattr(self, "condition", "class"),
        }
        save_model(path, self.network, self.cfg.settings(), meta)

    def checked_labels(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got {labels.max()}")
        return labels


@dataclass
class TrainedGan(Synthesizer):
    """A trained generator with what is needed to sample from it."""

    generator: Generator
    cfg: GanConfig
    num_classes: int
    channels: int
    shape: tuple[int, int]
    intensity: Intensity
    kind = "cdcgan"
    description = "Conditional DCGAN"

    @property
    def network(self) -> nn.Module:
        return self.generator

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> TrainedGan:
        blob = load_model_file(path, device)
        cfg, meta = GanConfig(**blob["run_config"]), blob["meta"]
        shape = tuple(meta["shape"])
        generator = Generator(meta["num_classes"], meta["channels"], shape, cfg).to(device)
        generator.load_state_dict(blob["state_dict"])
        return cls(
            generator,
            cfg,
            meta["num_classes"],
            meta["channels"],
            shape,
            Intensity(**meta["intensity"]),
        )

    @torch.no_grad()
    def sample(self, labels: np.ndarray, seed: int, batch_size: int = 512) -> np.ndarray:
        """One generated image per entry of ``labels``, in the stored images' dtype and range;
        the same ``seed`` gives the same images."""
        labels = self.checked_labels(labels)
        self.generator.eval()
        device = next(self.generator.parameters()).device
        rng = torch.Generator().manual_seed(seed)
        out = [np.empty((0, self.channels, *self.shape), self.intensity.dtype)]
        for chunk in torch.from_numpy(labels).split(batch_size) if labels.size else ():
            z = torch.randn(len(chunk), self.cfg.latent_dim, generator=rng).to(device)
            out.append(self.intensity.from_unit(self.generator(z, chunk.to(device))))
        return np.concatenate(out)


def train_gan(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    cfg: GanConfig,
    *,
    device: torch.device | str = "cpu",
    checkpoints: Checkpoints | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> tuple[TrainedGan, list[dict]]:
    """Train a conditional DCGAN on ``images (N, C, H, W)`` with class ``labels (N,)``.

    Trains for ``cfg.epochs_for(N)`` epochs. An epoch is ``N`` real images in batches: a
    shuffle of the set, or with ``cfg.balanced`` a draw with replacement in which every class
    is as likely as any other. Each step updates the discriminator on the real batch and a
    generated batch of the same classes (both through the same DiffAugment policies), then the
    generator to fool it; with ``cfg.ema`` a moving average of the generator's weights follows
    it and is what is returned. With ``checkpoints``, the state after every epoch is saved
    (phase ``gan``) and resumed from on the next call. Raises ``GanDivergedError`` naming the
    epoch and batch when a loss is NaN or infinite.
    """
    images, labels, intensity = training_set(images, labels, num_classes)
    shape = _check_shape(images.shape[2:])
    torch.manual_seed(cfg.seed)
    g = Generator(num_classes, images.shape[1], shape, cfg).apply(_init_weights).to(device)
    d = Discriminator(num_classes, images.shape[1], shape, cfg).apply(_init_weights).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    rng = torch.Generator().manual_seed(cfg.seed)
    real_x, real_y = intensity.to_unit(images).to(device), torch.from_numpy(labels).to(device)
    parts = {"generator": g, "discriminator": d, "opt_g": opt_g, "opt_d": opt_d, "rng": rng}
    g_ema = None
    if cfg.ema:
        g_ema = copy.deepcopy(g).requires_grad_(False)
        parts["generator_ema"] = g_ema
    state = {"epoch": 0, "history": [], "steps": 0}
    if checkpoints is not None:
        state = checkpoints.restore("gan", parts) or state
    epoch, history, steps = state["epoch"], state["history"], state.get("steps", 0)

    def augment(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, cfg.diffaugment, rng) if cfg.diffaugment else x

    while epoch < cfg.epochs_for(len(labels)):
        epoch += 1
        g.train(), d.train()
        sums = np.zeros(4)
        order = epoch_order(labels, cfg.balanced, rng)
        for batch, idx in enumerate(order.split(cfg.batch_size)):
            x, y = real_x[idx.to(device)], real_y[idx.to(device)]
            z = torch.randn(len(idx), cfg.latent_dim, generator=rng).to(device)
            fake = g(z, y)
            real_logit, fake_logit = d(augment(x), y), d(augment(fake.detach()), y)
            loss_d = _discriminator_loss(cfg.loss, real_logit, fake_logit)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            fooled = d(augment(fake), y)
            loss_g = -fooled.mean() if cfg.loss == "hinge" else _bce(fooled, 1.0)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            for name, loss in (("discriminator", loss_d), ("generator", loss_g)):
                if not torch.isfinite(loss):
                    raise GanDivergedError(
                        f"the GAN diverged: the {name} loss is {loss.item()} at epoch {epoch}, "
                        f"batch {batch}; lower gan.lr (now {cfg.lr}) or check the images"
                    )
            steps += 1
            if g_ema is not None:
                update_average(g_ema, g, ema_decay(cfg.ema, steps))
            n = len(idx)
            sums += n * np.array(
                [
                    loss_d.item(),
                    loss_g.item(),
                    torch.sigmoid(real_logit).mean().item(),
                    torch.sigmoid(fake_logit).mean().item(),
                ]
            )
        means = sums / len(labels)
        names = ("loss_d", "loss_g", "d_real", "d_fake")
        record = {"epoch": epoch, **{k: float(v) for k, v in zip(names, means, strict=True)}}
        history.append(record)
        if checkpoints is not None:
            checkpoints.save("gan", parts, {"epoch": epoch, "history": history, "steps": steps})
        if on_epoch_end is not None:
            on_epoch_end(record)
    sampler = g if g_ema is None else g_ema
    trained = TrainedGan(sampler, cfg, num_classes, images.shape[1], shape, intensity)
    return trained, history


def epoch_order(labels: np.ndarray, balanced: bool, rng: torch.Generator) -> torch.Tensor:
    """The rows of one epoch (as many as ``labels``): a permutation, or with ``balanced`` a draw
    with replacement of weight ``1/n_c`` per row of class ``c``, so every class present is drawn
    equally often on average whatever its count."""
    if not balanced:
        return torch.randperm(len(labels), generator=rng)
    counts = np.bincount(labels)
    weights = torch.from_numpy(1.0 / counts[labels])
    return torch.multinomial(weights, len(labels), replacement=True, generator=rng)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge: ``mean(relu(1 − D(x))) + mean(relu(1 + D(G(z))))``; BCE: real → 1, fake → 0."""
    if kind == "hinge":
        return torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
    return _bce(real, 1.0) + _bce(fake, 0.0)


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``θ̄ ← decay·θ̄ + (1 − decay)·θ`` for the weights; buffers (batch-norm statistics) copied."""
    for mean, param in zip(average.parameters(), model.parameters(), strict=True):
        mean.lerp_(param, 1 - decay)
    for mean, buffer in zip(average.buffers(), model.buffers(), strict=True):
        mean.copy_(buffer)


# ---- Quality of the generated images -------------------------------------------------------


def fid(real_features: np.ndarray, fake_features: np.ndarray) -> float | None:
    """Fréchet inception distance between two sets of features (MONAI ``FIDMetric``); ``None``
    when either set has fewer than two rows or the covariance product has no real square root
    (too few images for the feature size)."""
    from monai.metrics import FIDMetric

    if len(real_features) < 2 or len(fake_features) < 2:
        return None
    try:
        with warnings.catch_warnings():  # MONAI passes SciPy's deprecated ``disp`` to sqrtm
            warnings.simplefilter("ignore", DeprecationWarning)
            value = FIDMetric()(torch.from_numpy(fake_features), torch.from_numpy(real_features))
    except ValueError as error:  # "Imaginary component ... too high"
        log.warning("FID undefined: %s", error)
        return None
    return float(value)


def synthesis_quality(
    gan: TrainedGan,
    extractor: nn.Module,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    classes: list[str],
    cfg: TrainConfig,
    seed: int,
    tstr_per_class: int,
    task: str,
    model_name: str = "small_cnn",
    device: torch.device | str = "cpu",
) -> dict:
    """How good the images of ``gan`` (any trained generative model with ``sample(labels,
    seed)``: a :class:`TrainedGan` or a diffusion model) are, against the real test split (of
    ``task`` data):

    - ``fid`` (all classes, with the test split's class frequencies) and ``fid_per_class``, on
      the penultimate-layer features of ``extractor`` (a classifier trained on real images);
    - ``tstr_*``: a ``model_name`` classifier trained on ``tstr_per_class`` generated images of
      every class (the best epoch chosen on other generated images) and tested on the real test
      split; ``real_*``: the extractor itself on the same split, for reference.
    """
    from .features import embed, train_classifier
    from .metrics import task_metrics
    from .training import load_set, predict_logits

    device = torch.device(device)
    test_labels = np.asarray(test_labels, dtype=np.int64)
    test = load_set(test_images, test_labels, device, task=task)
    real = embed(extractor, test)
    fake_images = gan.sample(test_labels, seed)
    fake = embed(extractor, load_set(fake_images, test_labels, device, task=task))
    report = {
        "fid": fid(real, fake),
        "fid_per_class": {
            name: fid(real[test_labels == c], fake[test_labels == c])
            for c, name in enumerate(classes)
        },
    }
    per_class = np.repeat(np.arange(len(classes)), tstr_per_class)
    held_out = np.repeat(np.arange(len(classes)), max(tstr_per_class // 4, 2))
    classifier, _ = train_classifier(
        model_name,
        gan.sample(per_class, seed + 1),
        per_class,
        gan.sample(held_out, seed + 2),
        held_out,
        num_classes=len(classes),
        cfg=cfg,
        seed=seed,
        task=task,
        device=device,
    )
    for prefix, model in (("tstr", classifier), ("real", extractor)):
        logits = predict_logits(model, test).cpu().numpy()
        scores = task_metrics(task, test_labels, logits, classes)
        report[f"{prefix}_accuracy"] = scores["accuracy"]
        report[f"{prefix}_balanced_accuracy"] = scores["balanced_accuracy"]
    return report
