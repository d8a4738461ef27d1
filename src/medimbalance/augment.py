"""On-the-fly augmentation, and mixing of batches: mixup for segmentation (soft labels) and,
for image-level tasks, mixup, CutMix, ReMix and Balanced-MixUp (pairs of targets and the
weight of each); the class-balanced sampler the augmentation goes with is
:func:`medimbalance.balancing.sample_weights`.

The augmentation preset applies rotation, affine, horizontal flip and intensity/colour
jitter, each independently with probability ``p`` (0.3 by default, as in re-weighted random
sampling with augmentation), per sample, with MONAI transforms; segmentation masks move with
their images. ``foreground`` augments only samples whose mask holds foreground (the
class-specific augmentation of Li, Kamnitsas and Glocker 2021).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch
from monai.data import get_track_meta, set_track_meta
from monai.transforms import (
    RandAdjustContrast,
    RandAffine,
    RandAffined,
    RandFlip,
    RandFlipd,
    RandomizableTransform,
    RandRotate,
    RandRotated,
    RandScaleIntensity,
    RandShiftIntensity,
)

from .config import AUGMENTS, MIXUPS
from .randaugment import RandAugment
from .targets import one_hot
from .tasks import MIXUP_TASKS

BATCH_MIXES = ("mixup", "cutmix", "remix", "balanced_mixup")  # of image-level batches


class ColourJitter(RandomizableTransform):
    """Intensity/colour jitter, applied whenever called: a brightness shift, a contrast (gamma)
    change and, for several channels, a per-channel scaling (colour). Takes an image or an
    ``{"image", "label"}`` pair (whose label it leaves alone)."""

    def __init__(self, channels: int, strength: float = 0.2) -> None:
        super().__init__(prob=1.0)
        self.parts = [
            RandShiftIntensity(offsets=strength / 2, prob=1.0),
            RandAdjustContrast(prob=1.0, gamma=(1 - strength, 1 + strength)),
        ]
        if channels > 1:
            self.parts.append(RandScaleIntensity(factors=strength, prob=1.0, channel_wise=True))

    def set_random_state(self, seed=None, state=None) -> ColourJitter:
        super().set_random_state(seed, state)
        for i, part in enumerate(self.parts):
            part.set_random_state(seed=int(self.R.randint(2**31)) + i)
        return self

    def __call__(self, data):
        img = data["image"] if isinstance(data, dict) else data
        for part in self.parts:
            img = part(img)
        return {**data, "image": img} if isinstance(data, dict) else img


class Augmenter:
    """The augmentation preset, applied per sample of a batch: rotation (±15°), affine (±10 %
    translation, ±10 % scale, ±0.1 shear), horizontal flip, intensity/colour jitter, each
    independently with probability ``prob``: whether each fires is one draw per transform and
    sample from the augmenter's generator; the MONAI transforms then draw their parameters.

    With ``masks``, the spatial transforms move each mask with its image (nearest-neighbour
    interpolation, so labels stay labels) and the jitter touches the image only. With
    ``foreground_only``, samples whose mask is all background are left as they are. Counts of
    how often each transform fired are kept in ``fired`` (and samples seen in ``seen``).
    """

    NAMES = ("rotate", "affine", "flip", "jitter")

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        prob: float = 0.3,
        masks: bool = False,
        foreground_only: bool = False,
    ) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f"augment_prob must lie in [0, 1], got {prob}")
        if foreground_only and not masks:
            raise ValueError("foreground-only augmentation needs segmentation masks")
        self.masks, self.foreground_only = masks, foreground_only
        angle = math.radians(15)
        rotate = dict(range_x=angle, prob=1.0, keep_size=True, padding_mode="zeros")
        if spatial_dims == 3:
            rotate.update(range_y=angle, range_z=angle)
        affine = dict(
            prob=1.0,
            translate_range=None,  # set per image: 10 % of its side
            scale_range=[0.1] * spatial_dims,
            shear_range=[0.1] * (spatial_dims if spatial_dims == 2 else 6),
            padding_mode="zeros",
        )
        self._affine_args = affine
        if masks:
            keys, modes = ("image", "label"), ("bilinear", "nearest")
            self.spatial = {
                "rotate": RandRotated(keys, **{**rotate, "mode": modes}),
                "flip": RandFlipd(keys, prob=1.0, spatial_axis=spatial_dims - 1),
            }
        else:
            self.spatial = {
                "rotate": RandRotate(**rotate),
                "flip": RandFlip(prob=1.0, spatial_axis=spatial_dims - 1),
            }
        self.spatial_dims = spatial_dims
        self.affine: dict[tuple[int, ...], RandomizableTransform] = {}
        self.jitter = ColourJitter(channels)
        self.prob = prob
        self.fired: Counter[str] = Counter()
        self.seen = 0
        self.reseed(0)

    def _affine_for(self, shape: tuple[int, ...]) -> RandomizableTransform:
        """The affine transform for images of ``shape`` (translation is relative to the side)."""
        if shape not in self.affine:
            args = {**self._affine_args, "translate_range": [0.1 * s for s in shape]}
            if self.masks:
                transform = RandAffined(("image", "label"), mode=("bilinear", "nearest"), **args)
            else:
                transform = RandAffine(**args)
            transform.set_random_state(seed=int(self._rng.integers(2**31)))
            self.affine[shape] = transform
        return self.affine[shape]

    def reseed(self, seed: int, epoch: int = 0) -> None:
        """Restart every transform's random stream from ``(seed, epoch)``: each epoch's
        augmentation is fixed, so a resumed run repeats it exactly."""
        states = np.random.SeedSequence([seed, epoch]).generate_state(4)
        self._rng = np.random.default_rng(int(states[3]))
        for transform, state in zip((*self.spatial.values(), self.jitter), states[:3], strict=True):
            transform.set_random_state(seed=int(state))
        for shape in list(self.affine):
            self.affine[shape].set_random_state(seed=int(self._rng.integers(2**31)))

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented copies of a batch: ``images (B, C, *spatial)``; ``targets`` are returned
        unchanged, or (with ``masks``) as transformed ``(B, *spatial)`` masks."""
        out_images, out_targets = images.clone(), targets.clone()
        steps = self._steps(tuple(images.shape[2:]))
        tracking = get_track_meta()
        set_track_meta(False)  # plain tensors: MONAI's metadata is not needed here, and costs
        try:
            for i in range(len(images)):
                if self.foreground_only and not bool((targets[i] > 0).any()):
                    continue
                self.seen += 1
                fires = self._rng.random(len(steps)) < self.prob  # each independently
                if not fires.any():
                    continue
                sample = (
                    {"image": images[i], "label": targets[i][None].float()}
                    if self.masks
                    else images[i]
                )
                for (name, transform), fire in zip(steps, fires, strict=True):
                    if fire:
                        sample = transform(sample)
                        self.fired[name] += 1
                if self.masks:
                    out_targets[i] = torch.as_tensor(sample["label"])[0].round().to(targets.dtype)
                    sample = sample["image"]
                out_images[i] = torch.as_tensor(sample)
        finally:
            set_track_meta(tracking)
        return out_images, out_targets

    def _steps(self, shape: tuple[int, ...]) -> tuple[tuple[str, RandomizableTransform], ...]:
        """The transforms in the order they are applied (the jitter touches images only)."""
        return (
            ("rotate", self.spatial["rotate"]),
            ("affine", self._affine_for(shape)),
            ("flip", self.spatial["flip"]),
            ("jitter", self.jitter),
        )

    def rates(self) -> dict[str, float]:
        """How often each transform fired per augmented sample so far."""
        return {name: self.fired[name] / max(self.seen, 1) for name in self.NAMES}


def build_augmenter(
    augment: str,
    spatial_dims: int,
    channels: int,
    prob: float,
    task: str,
    randaugment: tuple[int, float] = (2, 9.0),
) -> Augmenter | RandAugment | None:
    """The augmenter a method asks for (``none``: no augmentation; ``randaugment``: RandAugment
    with ``randaugment = (n, m)`` on 2D images of classification or multi-label data)."""
    if augment not in AUGMENTS:
        raise ValueError(f"augment: unknown {augment!r}; valid choices: {', '.join(AUGMENTS)}")
    if augment == "none":
        return None
    if augment == "randaugment":
        if task not in ("multiclass", "binary", "multilabel") or spatial_dims != 2:
            raise ValueError(
                "augment: randaugment is for 2D images of classification or multi-label data"
            )
        return RandAugment(*randaugment)
    masks = task == "segmentation"
    return Augmenter(spatial_dims, channels, prob, masks, foreground_only=augment == "foreground")


class Mixup:
    """Mixup for segmentation (Zhang et al., ICLR 2018), a batch transform: the images and
    one-hot masks of a batch are blended with a shuffled copy of it, ``λ ~ Beta(α, α)``; the
    loss then receives soft labels ``(B, C, *spatial)``.

    ``asymmetric=True`` (Li, Kamnitsas and Glocker, IEEE TMI 2021) keeps foreground labels hard:
    a voxel that is foreground in either image keeps that foreground class (the first image's
    when both are), so mixing never softens the rare class's targets; only the images are
    blended there. The training loop applies it to every training batch (after augmentation);
    validation batches are not mixed.
    """

    def __init__(self, num_classes: int, alpha: float, asymmetric: bool) -> None:
        if alpha <= 0:
            raise ValueError(f"mixup_alpha must be > 0, got {alpha}")
        self.num_classes, self.alpha, self.asymmetric = num_classes, alpha, asymmetric

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed images ``(B, C, *spatial)`` and soft labels ``(B, K, *spatial)`` of a batch of
        images and integer masks ``(B, *spatial)``; draws from ``generator``."""
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        lam = float(np.random.default_rng(seed).beta(self.alpha, self.alpha))
        order = torch.randperm(len(images), generator=generator).to(images.device)
        first = one_hot(targets, self.num_classes, images.dtype)
        second = first[order]
        labels = lam * first + (1 - lam) * second
        if self.asymmetric:
            labels = torch.where(
                first[:, :1] < 1, first, torch.where(second[:, :1] < 1, second, labels)
            )
        return lam * images + (1 - lam) * images[order], labels


class MixedTargets:
    """The targets of a mixed batch: each sample's label is ``weight ⊙ first + (1 − weight) ⊙
    second`` (``first`` the batch's own targets, ``second`` those of the images mixed into it).
    :meth:`loss` is the mixed loss ``mean_i [w_i ℓ(z_i, a_i) + (1 − w_i) ℓ(z_i, b_i)]`` for any
    loss that averages over samples (Zhang et al.'s ``mixup_criterion``), computed over the
    groups of samples sharing a weight."""

    def __init__(self, first: torch.Tensor, second: torch.Tensor, weight: torch.Tensor) -> None:
        self.first, self.second, self.weight = first, second, weight

    def loss(self, loss_fn, outputs: torch.Tensor) -> torch.Tensor:
        total = outputs.new_zeros(())
        for w in torch.unique(self.weight).tolist():
            rows = torch.nonzero(self.weight == w).flatten()
            share = len(rows) / len(self.weight)
            if w > 0:
                total = total + share * w * loss_fn(outputs[rows], self.first[rows])
            if w < 1:
                total = total + share * (1 - w) * loss_fn(outputs[rows], self.second[rows])
        return total

    def soft(self, num_classes: int) -> torch.Tensor:
        """The mixed labels ``(B, C)`` (class targets one-hot first)."""
        first, second = self.first, self.second
        if not first.is_floating_point():
            first, second = (one_hot(t, num_classes, torch.float32) for t in (first, second))
        w = self.weight.to(first.dtype)[:, None]
        return w * first + (1 - w) * second


class BatchMix:
    """Mixing of image-level batches (a batch transform applied after augmentation), each
    sample ``x̃ = λ x + (1 − λ) x'`` with a partner ``x'``, ``λ`` drawn once per batch:

    - ``mixup`` (Zhang et al., ICLR 2018): partners from a shuffle of the batch, ``λ ~
      Beta(α, α)``, labels mixed with ``λ``;
    - ``cutmix`` (Yun et al., ICCV 2019): a box of each partner covering a share ``1 − λ`` of
      the image (side ``√(1 − λ)`` of each axis, centre uniform, clipped at the border) is
      pasted in; the labels are mixed with the share of the image kept;
    - ``remix`` (Chou et al., ECCV 2020 workshops): images as mixup, but the label goes wholly
      to the rarer class when the other is at least ``κ`` times more frequent and holds less
      than ``τ`` of the image (``κ`` = 3, ``τ`` = 0.5 by default; ``counts`` the training
      class counts);
    - ``balanced_mixup`` (Galdran et al., MICCAI 2021): partners drawn from the training set
      ``data`` with class-balanced sampling (``weights`` per training sample), ``λ ~ Beta(α,
      1)`` weighting the partner: ``x̃ = (1 − λ) x + λ x_balanced``.

    Returns the mixed images and :class:`MixedTargets`; draws from the training loop's seeded
    generator, so a resumed run repeats it."""

    def __init__(
        self,
        kind: str,
        alpha: float,
        counts=None,
        data=None,
        weights: torch.Tensor | None = None,
        kappa: float = 3.0,
        tau: float = 0.5,
    ) -> None:
        if kind not in BATCH_MIXES:
            raise ValueError(f"unknown batch mix {kind!r}; valid choices: {', '.join(BATCH_MIXES)}")
        if alpha <= 0:
            raise ValueError(f"mixup_alpha must be > 0, got {alpha}")
        if kind == "remix" and counts is None:
            raise ValueError("remix needs the training class counts")
        if kind == "balanced_mixup" and (data is None or weights is None):
            raise ValueError("balanced_mixup needs the training set and its sampling weights")
        self.kind, self.alpha, self.kappa, self.tau = kind, alpha, kappa, tau
        self.counts = None if counts is None else torch.as_tensor(counts, dtype=torch.float64)
        self.data, self.weights = data, weights

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, MixedTargets]:
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        n = len(images)
        if self.kind == "balanced_mixup":
            lam = float(rng.beta(self.alpha, 1.0))
            drawn = torch.multinomial(self.weights, n, replacement=True, generator=generator)
            drawn = drawn.to(self.data.labels.device)
            partner, second = self.data.batch(drawn), self.data.targets(drawn)
            weight = torch.full((n,), 1 - lam, device=images.device)
            return (1 - lam) * images + lam * partner.to(images.dtype), MixedTargets(
                targets, second.to(targets.device), weight
            )
        lam = float(rng.beta(self.alpha, self.alpha))
        order = torch.randperm(n, generator=generator).to(images.device)
        partner, second = images[order], targets[order]
        if self.kind == "cutmix":
            mixed, kept = cutmix_box(images, partner, lam, rng)
            return mixed, MixedTargets(
                targets, second, torch.full((n,), kept, device=images.device)
            )
        weight = torch.full((n,), lam, device=images.device)
        if self.kind == "remix":
            counts = self.counts.to(images.device)
            ratio = counts[targets] / counts[second]
            weight = torch.where((ratio >= self.kappa) & (lam < self.tau), 0.0, weight)
            weight = torch.where((ratio <= 1 / self.kappa) & (1 - lam < self.tau), 1.0, weight)
        return lam * images + (1 - lam) * partner, MixedTargets(targets, second, weight)


def cutmix_box(
    images: torch.Tensor, partner: torch.Tensor, lam: float, rng: np.random.Generator
) -> tuple[torch.Tensor, float]:
    """``images`` with one box of ``partner`` pasted in (the same box for the whole batch, as
    Yun et al. do): each spatial side ``⌊s·√(1 − λ)⌋``, centred uniformly, clipped; returns the
    images and the share of each image kept, ``1 − box volume / image volume``."""
    shape = images.shape[2:]
    ratio = math.sqrt(1.0 - lam) if len(shape) == 2 else (1.0 - lam) ** (1 / len(shape))
    box = []
    for side in shape:
        cut = int(side * ratio)
        centre = int(rng.integers(side))
        box.append(slice(max(centre - cut // 2, 0), min(centre + cut // 2, side)))
    mixed = images.clone()
    region = (slice(None), slice(None), *box)
    mixed[region] = partner[region]
    volume = math.prod(s.stop - s.start for s in box)
    return mixed, 1.0 - volume / math.prod(shape)


def build_mixup(
    mixup: str,
    alpha: float,
    num_classes: int,
    task: str = "segmentation",
    train=None,
    counts=None,
    weights: torch.Tensor | None = None,
) -> Mixup | BatchMix | None:
    """The mixing a method asks for: ``none``; for segmentation ``mixup`` or ``asymmetric``
    (:class:`Mixup`); for image-level tasks a :class:`BatchMix` (``train``, the training
    class ``counts`` and class-balanced per-sample ``weights`` feed ReMix and Balanced-MixUp)."""
    if mixup not in MIXUPS:
        raise ValueError(f"mixup: unknown {mixup!r}; valid choices: {', '.join(MIXUPS)}")
    if mixup == "none":
        return None
    if task == "segmentation":
        if mixup not in ("mixup", "asymmetric"):
            raise ValueError(
                f"mixup {mixup!r} is for image-level tasks; segmentation takes mixup, asymmetric"
            )
        return Mixup(num_classes, alpha, asymmetric=mixup == "asymmetric")
    if task not in MIXUP_TASKS[mixup]:
        raise ValueError(f"mixup {mixup!r} does not apply to {task} data")
    return BatchMix(mixup, alpha, counts, train, weights)
