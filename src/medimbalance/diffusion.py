"""Class-conditional diffusion model for minority-class synthesis: a denoising diffusion
probabilistic model (Ho et al. 2020) trained per dataset × profile, sampled with DDIM (Song et
al. 2021) and classifier-free guidance (Ho and Salimans 2021).

The network is MONAI's ``DiffusionModelUNet``; the class enters through its class embedding
(added to the time embedding), with one extra embedding for "no class" that replaces the label
of a share ``drop_class`` of the training images, so that one network is both conditional and
unconditional. Training follows MONAI's ``DiffusionInferer`` and a ``DDPMScheduler``: a random
step ``t`` per image, the image noised to ``x_t``, the network predicting the velocity ``v``
(Salimans and Ho 2022; or the noise ``ε`` of Ho et al.) by mean squared error. Sampling runs
``DiffusionInferer.sample`` with a ``DDIMScheduler`` of ``sample_steps`` steps (η = 0:
deterministic given the starting noise) and the guided prediction
``p(x, ∅) + w·(p(x, y) − p(x, ∅))`` of guidance scale ``w``.

For segmentation (``condition="mask"``) the same model is conditioned on a label map instead:
its one-hot encoding is concatenated to the noisy image at the network's input (MONAI's
``concat`` mode, as in mask-conditioned diffusion for image–mask synthesis), an all-zero map
being "no mask" for the guidance; sampling it on new masks (:func:`generation_masks`) gives new
image–mask pairs.

For multi-label data (``condition="findings"``) an image's multi-hot findings vector ``y``
enters as the sum of one learned embedding per finding present (``y @ E``, the class embedding
of several classes at once; an image with no finding gets the zero vector), with a separate
learned embedding for "no condition" (a vector of −1, never a findings vector). A rare finding
thus shares the network with every image that has other findings, and is drawn with new
combinations of them.

Training is seeded, checkpointed after every epoch and resumable, like the conditional DCGAN
(:mod:`medimbalance.gan`); the trained model samples with the same interface (``sample(labels,
seed)`` in the stored images' dtype and range), so the same quality measures and oversampling
apply.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import Checkpoints, load_model_file
from .config import TrainConfig
from .gan import (
    GanDivergedError,
    Intensity,
    Synthesizer,
    ema_decay,
    epoch_order,
    training_set,
    update_average,
)

log = logging.getLogger(__name__)


# What the network predicts (MONAI's scheduler names): the noise ε (Ho et al. 2020), or the
# velocity v = sqrt(ᾱ_t)·ε − sqrt(1 − ᾱ_t)·x_0 (Salimans and Ho 2022), whose image estimate
# stays accurate at the noisiest steps where ε's is divided by sqrt(ᾱ_t) ≈ 0.
PREDICTIONS = {"v": "v_prediction", "epsilon": "epsilon"}


@dataclass(frozen=True)
class DiffusionConfig:
    """Settings of one class-conditional diffusion model (``resample_args.diffusion``)."""

    epochs: int = 100  # passes over the training set (its size in images per epoch)
    batch_size: int = 64  # images per step
    channels: tuple[int, ...] = (16, 32, 32)  # U-Net channels per level (each halves the side)
    res_blocks: int = 1  # residual blocks per level
    timesteps: int = 1000  # steps of the forward (noising) process
    sample_steps: int = 50  # DDIM steps when sampling
    guidance: float = 2.0  # classifier-free guidance scale w (1: the conditional model alone)
    prediction: str = "v"  # what the network predicts: "v" (velocity) or "epsilon" (the noise)
    drop_class: float = 0.1  # share of training images whose class is replaced by "no class"
    lr: float = 1e-3  # Adam learning rate
    ema: float = 0.999  # decay of the weights' moving average used for sampling; 0 = off
    balanced: bool = True  # class-balanced batches
    seed: int = 0  # weights, batch order, noise and steps

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        for name in ("epochs", "batch_size", "res_blocks", "sample_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"diffusion.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.timesteps < 50:  # the scaled linear schedule's last β must stay below 1
            raise ValueError(f"diffusion.timesteps must be ≥ 50, got {self.timesteps}")
        if not self.channels or any(c < 8 or c % 8 for c in self.channels):
            raise ValueError(
                f"diffusion.channels must be multiples of 8 (group norm of 8 groups), "
                f"got {list(self.channels)}"
            )
        if self.sample_steps > self.timesteps:
            raise ValueError(
                f"diffusion.sample_steps ({self.sample_steps}) cannot exceed diffusion.timesteps "
                f"({self.timesteps})"
            )
        if self.guidance < 0 or not 0 <= self.drop_class < 1 or self.lr <= 0:
            raise ValueError(
                "diffusion.guidance must be ≥ 0, diffusion.drop_class in [0, 1) and diffusion.lr "
                f"> 0, got {self.guidance}, {self.drop_class}, {self.lr}"
            )
        if not 0 <= self.ema < 1:
            raise ValueError(f"diffusion.ema must lie in [0, 1), got {self.ema}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(
                f"diffusion.prediction must be one of {', '.join(PREDICTIONS)}, "
                f"got {self.prediction!r}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> DiffusionConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"diffusion: unknown key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**values)

    def settings(self) -> dict:
        """The settings as plain values (saved with the model, hashed into run identities)."""
        return {**asdict(self), "channels": list(self.channels)}


def _check_shape(shape: tuple[int, ...], levels: int) -> tuple[int, ...]:
    step = 2 ** (levels - 1)
    if len(shape) != 2 or any(s % step for s in shape):
        raise ValueError(
            f"the diffusion model takes 2D images whose sides are multiples of {step} (its "
            f"{levels} levels halve them {levels - 1} times), got {tuple(shape)} (set the "
            f"dataset's preprocess.shape or fewer diffusion.channels)"
        )
    return tuple(shape)


class ClassConditionedUNet(nn.Module):
    """MONAI's ``DiffusionModelUNet`` with ``num_classes + 1`` class embeddings (the last one is
    "no class"), called as ``DiffusionInferer`` calls a network: the labels arrive as
    ``context`` and are passed on as ``class_labels``."""

    def __init__(self, num_classes: int, image_channels: int, cfg: DiffusionConfig) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        self.num_classes = num_classes
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=image_channels,
            out_channels=image_channels,
            num_res_blocks=cfg.res_blocks,
            channels=cfg.channels,
            attention_levels=(False,) * len(cfg.channels),
            norm_num_groups=8,
            num_class_embeds=num_classes + 1,
        )

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        if context is None:
            context = torch.full((len(x),), self.num_classes, device=x.device)
        labels = context.long().view(-1)
        if len(timesteps) == 1:
            timesteps = timesteps.expand(len(x))
        return self.unet(x, timesteps.long(), class_labels=labels)


class MaskConditionedUNet(nn.Module):
    """MONAI's ``DiffusionModelUNet`` whose input is the noisy image with the one-hot label map
    (``num_classes`` channels) concatenated, as ``DiffusionInferer`` does in ``concat`` mode;
    its output is the prediction for the image channels only."""

    def __init__(self, num_classes: int, image_channels: int, cfg: DiffusionConfig) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        self.num_classes = num_classes
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=image_channels + num_classes,
            out_channels=image_channels,
            num_res_blocks=cfg.res_blocks,
            channels=cfg.channels,
            attention_levels=(False,) * len(cfg.channels),
            norm_num_groups=8,
        )

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        if len(timesteps) == 1:
            timesteps = timesteps.expand(len(x))
        return self.unet(x, timesteps.long())


class FindingsEmbedding(nn.Module):
    """The embedding of multi-hot findings vectors ``(N, L)``: ``y @ E`` for ``E`` of one row
    per finding, and a learned row of its own for the "no condition" vector (every entry
    negative, as ``DiffusionInferer`` fills the unconditional half with ``cfg_fill_value``)."""

    def __init__(self, num_findings: int, dim: int) -> None:
        super().__init__()
        self.findings = nn.Parameter(torch.randn(num_findings, dim) / num_findings**0.5)
        self.unconditional = nn.Parameter(torch.randn(dim))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        y = y.float().view(len(y), -1)
        empty = (y < 0).all(1, keepdim=True)
        return torch.where(empty, self.unconditional.expand(len(y), -1), y @ self.findings)


class FindingsConditionedUNet(nn.Module):
    """MONAI's ``DiffusionModelUNet`` whose class embedding is a :class:`FindingsEmbedding`
    of ``num_classes`` findings: the multi-hot vectors arrive as ``context``, as
    ``DiffusionInferer`` passes them, and are passed on as ``class_labels``."""

    def __init__(self, num_classes: int, image_channels: int, cfg: DiffusionConfig) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        self.num_classes = num_classes
        self.unet = DiffusionModelUNet(
            spatial_dims=2,
            in_channels=image_channels,
            out_channels=image_channels,
            num_res_blocks=cfg.res_blocks,
            channels=cfg.channels,
            attention_levels=(False,) * len(cfg.channels),
            norm_num_groups=8,
            num_class_embeds=1,  # replaced below: MONAI adds class_embedding(class_labels)
        )
        dim = self.unet.class_embedding.embedding_dim
        self.unet.class_embedding = FindingsEmbedding(num_classes, dim)

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        if context is None:
            context = torch.full((len(x), self.num_classes), -1.0, device=x.device)
        if len(timesteps) == 1:
            timesteps = timesteps.expand(len(x))
        return self.unet(x, timesteps.long(), class_labels=context.view(len(x), -1))


CONDITIONS = {
    "class": ClassConditionedUNet,
    "mask": MaskConditionedUNet,
    "findings": FindingsConditionedUNet,
}
# How each conditioning enters DiffusionInferer (its mode) and its "no condition" fill value
# for classifier-free guidance (the class conditioning's is its number of classes).
MODES = {"class": "crossattn", "mask": "concat", "findings": "crossattn"}
EMPTY = {"mask": 0.0, "findings": -1.0}


def one_hot(masks: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Label maps ``(N, H, W)`` as float one-hot maps ``(N, num_classes, H, W)``."""
    encoded = nn.functional.one_hot(masks.long(), num_classes)
    return encoded.movedim(-1, 1).float()


def image_classes(masks: np.ndarray, num_classes: int) -> np.ndarray:
    """One class per label map: the rarest label it contains, rarest by the number of maps
    containing it (ties: the higher label). Balanced draws over these classes show the maps
    with a rare foreground label as often as the others."""
    masks = np.asarray(masks)
    present = np.zeros((len(masks), num_classes), bool)
    for i, mask in enumerate(masks):
        present[i] = np.bincount(mask.reshape(-1), minlength=num_classes)[:num_classes] > 0
    containing = present.sum(0)
    # Among the labels present, the fewest maps containing it; the higher label breaks ties.
    rank = np.where(present, containing[None, :] * num_classes - np.arange(num_classes), np.inf)
    return np.argmin(rank, axis=1).astype(np.int64)


def finding_classes(findings: np.ndarray) -> np.ndarray:
    """One class per multi-hot findings vector ``(N, L)``: its rarest finding, rarest by the
    number of images with it (ties: the higher finding), or ``L`` for an image with none.
    Balanced draws over these classes show the images with a rare finding as often as the
    others."""
    findings = np.asarray(findings) > 0
    count = findings.shape[1]
    having = findings.sum(0)
    rank = np.where(findings, having[None, :] * count - np.arange(count), np.inf)
    return np.where(findings.any(1), np.argmin(rank, axis=1), count).astype(np.int64)


def generation_findings(findings: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """The findings vectors of the images a findings-conditioned model adds so that every
    finding is present in at least ``ratio`` times as many images as the most frequent one
    (the multi-label form of oversampling to ``ratio`` × the majority count). Findings are
    served rarest first: each new vector is that of a training image with the finding, drawn
    uniformly with replacement (seeded), so findings keep the combinations they occur in; the
    findings it carries besides count towards theirs. A finding no training image has is
    left out (nothing to learn it from)."""
    findings = (np.asarray(findings) > 0).astype(np.uint8)
    if findings.ndim != 2 or not len(findings):
        raise ValueError(f"expected multi-hot findings (N, L), got shape {findings.shape}")
    if not 0 < ratio <= 1:
        raise ValueError(f"resample_args.ratio must lie in (0, 1], got {ratio}")
    rng = np.random.default_rng(seed)
    have = findings.sum(0).astype(np.int64)
    goal = int(np.ceil(ratio * have.max()))
    new = []
    for k in np.argsort(have, kind="stable"):
        rows = np.flatnonzero(findings[:, k])
        need = goal - have[k]
        if need <= 0 or not len(rows):
            continue
        drawn = findings[rng.choice(rows, size=need)]
        have += drawn.sum(0, dtype=np.int64)
        new.append(drawn)
    if not new:
        return np.zeros((0, findings.shape[1]), np.uint8)
    return np.concatenate(new)


def generation_masks(masks: np.ndarray, num_classes: int, ratio: float, seed: int) -> np.ndarray:
    """The label maps of ``round(ratio · N)`` new image–mask pairs made from ``N`` training
    maps: each a training map drawn with weight ``1 / n_c`` (``c`` its :func:`image_classes`
    class, so that maps with a rare label are drawn as often as the others), then flipped
    left–right and/or up–down, and transposed when square, each with probability 1/2 (for
    square maps one of the 8 symmetries of the square, uniformly)."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or not len(masks):
        raise ValueError(f"expected label maps (N, H, W), got shape {masks.shape}")
    if not ratio > 0:
        raise ValueError(f"resample_args.ratio must be > 0 for segmentation, got {ratio}")
    rng = np.random.default_rng(seed)
    classes = image_classes(masks, num_classes)
    weights = 1.0 / np.bincount(classes)[classes]
    rows = rng.choice(len(masks), size=round(ratio * len(masks)), p=weights / weights.sum())
    square = masks.shape[1] == masks.shape[2]
    new = np.empty((len(rows), *masks.shape[1:]), masks.dtype)
    for i, row in enumerate(rows):
        mask = masks[row]
        flips = rng.random(3) < 0.5
        if flips[0]:
            mask = mask[:, ::-1]
        if flips[1]:
            mask = mask[::-1, :]
        if flips[2] and square:
            mask = mask.T
        new[i] = mask
    return new


def beta_range(timesteps: int) -> tuple[float, float]:
    """Ho et al.'s linear noise schedule (β from 1e-4 to 0.02 over 1000 steps) scaled to
    ``timesteps`` steps by ``1000 / timesteps`` (Nichol and Dhariwal 2021), so that the noised
    image reaches pure noise at the last step whatever their number."""
    scale = 1000 / timesteps
    return 1e-4 * scale, 0.02 * scale


def schedulers(cfg: DiffusionConfig):
    """MONAI's DDPM scheduler (training: adds noise) and DDIM scheduler (sampling, with
    ``sample_steps`` steps) on the same linear schedule."""
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    start, end = beta_range(cfg.timesteps)
    common = {
        "num_train_timesteps": cfg.timesteps,
        "beta_start": start,
        "beta_end": end,
        "prediction_type": PREDICTIONS[cfg.prediction],
    }
    training = DDPMScheduler(**common)
    sampling = DDIMScheduler(**common)
    sampling.set_timesteps(num_inference_steps=cfg.sample_steps)
    return training, sampling


@dataclass
class TrainedDiffusion(Synthesizer):
    """A trained class-conditional diffusion model with what is needed to sample from it."""

    model: ClassConditionedUNet
    cfg: DiffusionConfig
    num_classes: int
    channels: int
    shape: tuple[int, int]
    intensity: Intensity
    condition: str = "class"  # what the model is conditioned on: "class" or "mask" (label map)
    kind = "diffusion"

    @property
    def description(self) -> str:
        if self.condition == "mask":
            return "Mask-conditioned diffusion model (DDPM, DDIM sampling)"
        if self.condition == "findings":
            return "Findings-conditioned diffusion model (DDPM, DDIM sampling)"
        return "Class-conditional diffusion model (DDPM, DDIM sampling)"

    @property
    def network(self) -> nn.Module:
        return self.model

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> TrainedDiffusion:
        blob = load_model_file(path, device)
        cfg, meta = DiffusionConfig(**blob["run_config"]), blob["meta"]
        condition = meta.get("condition", "class")
        model = CONDITIONS[condition](meta["num_classes"], meta["channels"], cfg).to(device)
        model.load_state_dict(blob["state_dict"])
        intensity = Intensity(**meta["intensity"])
        shape = tuple(meta["shape"])
        return cls(model, cfg, meta["num_classes"], meta["channels"], shape, intensity, condition)

    def _conditioning(self, labels: np.ndarray) -> tuple[np.ndarray, str, float]:
        """The checked labels or label maps, the inferer's mode and the "no condition" value."""
        if self.condition == "findings":
            return checked_findings(labels, self.num_classes), "crossattn", EMPTY["findings"]
        labels = self.checked_labels(labels)
        if self.condition == "class":
            return labels, "crossattn", float(self.num_classes)
        if labels.size and labels.shape[1:] != tuple(self.shape):
            raise ValueError(
                f"the model makes {tuple(self.shape)} images; got label maps of shape "
                f"{labels.shape[1:]}"
            )
        return labels, "concat", 0.0

    @torch.no_grad()
    def sample(self, labels: np.ndarray, seed: int, batch_size: int = 256) -> np.ndarray:
        """One generated image per entry of ``labels`` (class labels ``(N,)``, label maps
        ``(N, H, W)`` for a mask-conditioned model, findings vectors ``(N, L)`` for a
        findings-conditioned one), in the stored images' dtype and range;
        the same ``seed`` gives the same images (DDIM with η = 0 is deterministic given its
        starting noise, drawn from ``seed``)."""
        from monai.inferers import DiffusionInferer

        labels, mode, empty = self._conditioning(labels)
        self.model.eval()
        device = next(self.model.parameters()).device
        _, scheduler = schedulers(self.cfg)
        inferer = DiffusionInferer(scheduler)
        rng = torch.Generator().manual_seed(seed)
        out = [np.empty((0, self.channels, *self.shape), self.intensity.dtype)]
        for chunk in torch.from_numpy(labels).split(batch_size) if labels.size else ():
            noise = torch.randn(len(chunk), self.channels, *self.shape, generator=rng)
            guided = self.cfg.guidance != 1
            condition = chunk.to(device)
            if mode == "concat":
                condition = one_hot(condition, self.num_classes)
            elif self.condition == "findings":
                condition = condition.float()
            images = inferer.sample(
                input_noise=noise.to(device),
                diffusion_model=self.model,
                scheduler=scheduler,
                conditioning=condition,
                mode=mode,
                verbose=False,
                cfg=self.cfg.guidance if guided else None,
                cfg_fill_value=empty,
            )
            out.append(self.intensity.from_unit(images.clamp(-1, 1)))
        return np.concatenate(out)


def checked_findings(findings: np.ndarray, num_findings: int) -> np.ndarray:
    """Multi-hot findings vectors ``(N, num_findings)`` of 0s and 1s, as uint8."""
    findings = np.asarray(findings)
    if findings.ndim != 2 or findings.shape[1] != num_findings:
        raise ValueError(
            f"expected findings vectors (N, {num_findings}), got shape {findings.shape}"
        )
    if findings.size and not np.isin(findings, (0, 1)).all():
        raise ValueError("findings vectors must hold only 0 and 1")
    return findings.astype(np.uint8)


def train_diffusion(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    cfg: DiffusionConfig,
    *,
    device: torch.device | str = "cpu",
    checkpoints: Checkpoints | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
    condition: str = "class",
) -> tuple[TrainedDiffusion, list[dict]]:
    """Train a class-conditional DDPM on ``images (N, C, H, W)`` with class ``labels (N,)``;
    with ``condition="mask"`` a mask-conditioned one with label maps ``labels (N, H, W)``;
    with ``condition="findings"`` a findings-conditioned one with multi-hot ``labels (N, L)``
    (``num_classes`` = L).

    An epoch is ``N`` images in batches (a shuffle, or a class-balanced draw with replacement
    as the GAN's; label maps are balanced over their :func:`image_classes`, findings vectors
    over their :func:`finding_classes`). With
    ``checkpoints``, the state after every epoch is saved (phase ``diffusion``) and resumed
    from on the next call. Raises ``GanDivergedError`` naming the epoch and batch when the loss
    is NaN or infinite.
    """
    from monai.inferers import DiffusionInferer

    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, got {condition!r}")
    masks, findings = condition == "mask", condition == "findings"
    if findings:
        labels = checked_findings(labels, num_classes)
        # the shared checks, on one class per image (its rarest finding; L: none)
        images, draw_classes, intensity = training_set(
            images, finding_classes(labels), num_classes + 1
        )
    else:
        images, labels, intensity = training_set(images, labels, num_classes)
    shape = _check_shape(images.shape[2:], len(cfg.channels))
    if masks and labels.shape != (len(images), *shape):
        raise ValueError(
            f"expected one label map of shape {shape} per image, got masks of shape "
            f"{labels.shape} for images of shape {images.shape}"
        )
    if masks:
        draw_classes = image_classes(labels, num_classes)
    elif not findings:
        draw_classes = labels
    mode, empty = MODES[condition], EMPTY.get(condition, num_classes)
    torch.manual_seed(cfg.seed)
    model = CONDITIONS[condition](num_classes, images.shape[1], cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scheduler, _ = schedulers(cfg)
    inferer = DiffusionInferer(scheduler)
    rng = torch.Generator().manual_seed(cfg.seed)
    real_x, real_y = intensity.to_unit(images).to(device), torch.from_numpy(labels).to(device)
    if findings:
        real_y = real_y.float()
    parts = {"model": model, "optimizer": optimizer, "rng": rng}
    average = None
    if cfg.ema:
        average = copy.deepcopy(model).requires_grad_(False)
        parts["model_ema"] = average
    state = {"epoch": 0, "history": [], "steps": 0}
    if checkpoints is not None:
        state = checkpoints.restore("diffusion", parts) or state
    epoch, history, steps = state["epoch"], state["history"], state["steps"]
    while epoch < cfg.epochs:
        epoch += 1
        model.train()
        total = 0.0
        order = epoch_order(draw_classes, cfg.balanced, rng)
        for batch, idx in enumerate(order.split(cfg.batch_size)):
            x, y = real_x[idx.to(device)], real_y[idx.to(device)].clone()
            if masks:
                y = one_hot(y, num_classes)
            dropped = torch.rand(len(idx), generator=rng) < cfg.drop_class
            y[dropped.to(device)] = empty
            noise = torch.randn(x.shape, generator=rng).to(device)
            t = torch.randint(0, cfg.timesteps, (len(idx),), generator=rng).to(device)
            predicted = inferer(
                inputs=x, diffusion_model=model, noise=noise, timesteps=t, condition=y, mode=mode
            )
            target = noise if cfg.prediction == "epsilon" else scheduler.get_velocity(x, noise, t)
            loss = nn.functional.mse_loss(predicted.float(), target)
            if not torch.isfinite(loss):
                raise GanDivergedError(
                    f"the diffusion model diverged: its loss is {loss.item()} at epoch {epoch}, "
                    f"batch {batch}; lower diffusion.lr (now {cfg.lr}) or check the images"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            if average is not None:
                update_average(average, model, ema_decay(cfg.ema, steps))
            total += loss.item() * len(idx)
        record = {"epoch": epoch, "loss": total / len(labels)}
        history.append(record)
        if checkpoints is not None:
            state = {"epoch": epoch, "history": history, "steps": steps}
            checkpoints.save("diffusion", parts, state)
        if on_epoch_end is not None:
            on_epoch_end(record)
    sampler = model if average is None else average
    trained = TrainedDiffusion(
        sampler, cfg, num_classes, images.shape[1], shape, intensity, condition
    )
    return trained, history


def load_synthesizer(path: str | Path, device: torch.device | str = "cpu"):
    """The generative model saved at ``path``: a :class:`TrainedDiffusion` or a conditional
    DCGAN (:class:`medimbalance.gan.TrainedGan`), by the kind recorded in the file."""
    from .gan import TrainedGan

    kind = load_model_file(path, "cpu")["meta"].get("kind", "cdcgan")
    return (TrainedDiffusion if kind == "diffusion" else TrainedGan).load(path, device)


def pair_quality(
    model: TrainedDiffusion,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    classes: list[str],
    cfg: TrainConfig,
    seed: int,
    model_name: str = "unet",
    device: torch.device | str = "cpu",
) -> dict:
    """How good the image–mask pairs of a mask-conditioned ``model`` are, against the real
    ``(images, masks)`` of the ``train``, ``val`` and ``test`` splits:

    - ``intensity``: per label and channel, the mean and standard deviation of the pixels of
      that label in the real test images and in images generated for the same test masks
      (a generated image that follows its mask has the real contrasts);
    - ``tstr_dice`` / ``real_dice``: per label, the test Dice of a ``model_name`` network
      trained by cross-entropy on as many generated pairs as there are real training images
      (new masks of :func:`generation_masks`; best epoch chosen on other generated pairs), and
      of the same network trained on the real training pairs (validated on ``val``), for
      reference.
    """
    from .features import train_classifier
    from .metrics import task_metrics
    from .training import load_set, predict_logits

    device = torch.device(device)
    (train_x, train_y), (test_x, test_y) = train, test
    test_y = np.asarray(test_y)
    k = len(classes)
    test_x, fake_x = np.asarray(test_x), model.sample(test_y, seed)

    def stats(x: np.ndarray, inside: np.ndarray) -> list[float]:
        return [float(np.mean(x[inside])), float(np.std(x[inside]))]

    intensity = {
        name: [
            {
                "real": stats(test_x[:, ch], test_y == c),
                "generated": stats(fake_x[:, ch], test_y == c),
            }
            for ch in range(test_x.shape[1])
        ]
        for c, name in enumerate(classes)
        if (test_y == c).any()
    }
    new_train = generation_masks(train_y, k, 1.0, seed + 1)
    new_val = generation_masks(train_y, k, 0.25, seed + 2)
    pairs = {
        "tstr": (
            model.sample(new_train, seed + 1),
            new_train,
            model.sample(new_val, seed + 2),
            new_val,
        ),
        "real": (np.asarray(train_x), np.asarray(train_y), *map(np.asarray, val)),
    }
    test_set = load_set(test_x, test_y, device, task="segmentation")
    report = {"intensity": intensity, "pairs": len(new_train)}
    for prefix, (x, y, vx, vy) in pairs.items():
        network, _ = train_classifier(
            model_name,
            x,
            y,
            vx,
            vy,
            num_classes=k,
            cfg=cfg,
            seed=seed,
            task="segmentation",
            device=device,
        )
        logits = predict_logits(network, test_set).cpu().numpy()
        scores = task_metrics("segmentation", test_y, logits, classes, hausdorff=False)
        dice = dict(zip(classes, scores["per_class"]["dice"], strict=True))
        report[f"{prefix}_dice"] = {name: dice[name] for name in classes[1:]}
    return report


def findings_quality(
    model: TrainedDiffusion,
    extractor: nn.Module,
    test: tuple[np.ndarray, np.ndarray],
    train_findings: np.ndarray,
    *,
    classes: list[str],
    cfg: TrainConfig,
    seed: int,
    tstr_per_class: int,
    model_name: str = "small_cnn",
    device: torch.device | str = "cpu",
) -> dict:
    """How good the images of a findings-conditioned ``model`` are, against the real ``test``
    split ``(images, findings)`` of multi-label data:

    - ``fid`` (all test images) and ``fid_per_class`` (the test images with each finding),
      generated images made for the same findings vectors, on the penultimate-layer features
      of ``extractor`` (a classifier trained on the real images);
    - ``tstr_*``: macro and per-finding test AUROC of a ``model_name`` classifier trained (by
      binary cross-entropy per finding) on ``tstr_per_class`` generated images for each
      finding and for "no finding", their findings vectors those of training images with it
      (``train_findings``; the best epoch chosen on other generated images); ``real_*``: the
      extractor on the same split, for reference.
    """
    from .features import embed, train_classifier
    from .gan import fid
    from .metrics import task_metrics
    from .training import load_set, predict_logits

    device = torch.device(device)
    test_x, test_y = np.asarray(test[0]), checked_findings(test[1], len(classes))
    train_findings = checked_findings(train_findings, len(classes))
    test_set = load_set(test_x, test_y, device, task="multilabel")
    real = embed(extractor, test_set)
    fake_x = model.sample(test_y, seed)
    fake = embed(extractor, load_set(fake_x, test_y, device, task="multilabel"))
    report = {
        "fid": fid(real, fake),
        "fid_per_class": {
            name: fid(real[test_y[:, k] == 1], fake[test_y[:, k] == 1])
            for k, name in enumerate(classes)
        },
    }
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(train_findings[:, k]) for k in range(len(classes))]
    groups.append(np.flatnonzero(train_findings.sum(1) == 0))  # no finding
    groups = [rows for rows in groups if len(rows)]

    def draw(per_group: int) -> np.ndarray:
        return np.concatenate([train_findings[rng.choice(r, size=per_group)] for r in groups])

    tstr_y, held_out_y = draw(tstr_per_class), draw(max(tstr_per_class // 4, 2))
    classifier, _ = train_classifier(
        model_name,
        model.sample(tstr_y, seed + 1),
        tstr_y,
        model.sample(held_out_y, seed + 2),
        held_out_y,
        num_classes=len(classes),
        cfg=cfg,
        seed=seed,
        task="multilabel",
        device=device,
    )
    report["tstr_images"] = len(tstr_y)
    for prefix, network in (("tstr", classifier), ("real", extractor)):
        logits = predict_logits(network, test_set).cpu().numpy()
        scores = task_metrics("multilabel", test_y, logits, classes)
        report[f"{prefix}_auroc"] = scores["auroc"]
        report[f"{prefix}_average_precision"] = scores["average_precision"]
        report[f"{prefix}_auroc_per_class"] = dict(
            zip(classes, scores["per_class"]["auroc"], strict=True)
        )
    return report
