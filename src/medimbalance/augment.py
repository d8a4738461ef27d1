"""On-the-fly augmentation, and mixing of batches: mixup for segmentation (soft labels) and,
for image-level tasks, mixup, CutMix, ReMix and Balanced-MixUp (pairs of targets and the
weight of each); the class-balanced sampler the augmentation goes with is
:func:`medimbalance.balancing.sample_weights`.

The augmentation preset applies rotation, affine, horizontal flip and intensity/colour
jitter, each independently with probability ``p`` (0.3 by default, as in re-weighted random
sampling with augmentation) per sample, to a whole batch at once on its device (one
``grid_sample`` per spatial transform, with MONAI's conventions; MONAI's own transforms, one
sample at a time, are the tested reference); segmentation masks move with their images.
``foreground`` augments only samples whose mask holds foreground (the class-specific
augmentation of Li, Kamnitsas and Glocker 2021).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from monai.data import get_track_meta, set_track_meta
from torch import nn

from .config import AUGMENTS, MIXUPS
from .randaugment import RandAugment
from .targets import one_hot
from .tasks import MIXUP_TASKS

BATCH_MIXES = ("mixup", "cutmix", "remix", "balanced_mixup")  # of image-level batches


# The preset's ranges: rotation ±15° (about each axis in 3D), translation ±10 % of the side,
# scale ±10 %, shear ±0.1, brightness shift ±0.1, contrast gamma in [0.8, 1.2], per-channel
# intensity scale ±0.2 (colour; several channels only).
ROTATE = math.radians(15)
TRANSLATE, SCALE, SHEAR = 0.1, 0.1, 0.1
SHIFT, GAMMA, COLOUR = 0.1, (0.8, 1.2), 0.2


@dataclass
class AugmentDraw:
    """The random parameters of one batch of the preset, one row per sample: which transforms
    fire (``fires``, columns in :attr:`Augmenter.NAMES` order) and the parameters of each, as
    MONAI's transforms take them (``angles`` in radians, one per axis of rotation;
    ``translate`` in voxels; ``scale`` as factors; ``colour`` the per-channel scale offsets, or
    ``None`` for one channel). Parameters are drawn for every sample; only those of the
    transforms that fire are used."""

    fires: np.ndarray  # (B, 4) bool
    angles: np.ndarray  # (B, 1) in 2D, (B, 3) in 3D
    shear: np.ndarray  # (B, 2) in 2D, (B, 6) in 3D
    translate: np.ndarray  # (B, d)
    scale: np.ndarray  # (B, d)
    offset: np.ndarray  # (B,)
    gamma: np.ndarray  # (B,)
    colour: np.ndarray | None  # (B, C)

    @classmethod
    def draw(
        cls, rng: np.random.Generator, n: int, shape: tuple[int, ...], channels: int, prob: float
    ) -> AugmentDraw:
        d = len(shape)
        uniform = lambda bound, *size: rng.uniform(-bound, bound, size=(n, *size))  # noqa: E731
        return cls(
            fires=rng.random((n, len(Augmenter.NAMES))) < prob,
            angles=uniform(ROTATE, 1 if d == 2 else 3),
            shear=uniform(SHEAR, 2 if d == 2 else 6),
            translate=uniform(1.0, d) * TRANSLATE * np.asarray(shape, np.float64),
            scale=1.0 + uniform(SCALE, d),
            offset=uniform(SHIFT),
            gamma=rng.uniform(*GAMMA, size=n),
            colour=uniform(COLOUR, channels) if channels > 1 else None,
        )


def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """MONAI's ``create_rotate`` for a batch: ``(B, 3, 3)`` from one angle per sample (2D) or
    ``(B, 4, 4)`` from three (3D; about the first, second, then third axis, MONAI's order)."""
    from monai.transforms.utils import create_rotate

    if angles.shape[1] == 1:
        c, s = np.cos(angles[:, 0]), np.sin(angles[:, 0])
        out = np.tile(np.eye(3), (len(angles), 1, 1))
        out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = c, -s, s, c
        return out
    return np.stack([create_rotate(3, tuple(a)) for a in angles])


def affine_matrices(shear: np.ndarray, translate: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """MONAI's ``AffineGrid`` matrix (shear @ translate @ scale, no rotation) for a batch:
    ``(B, d + 1, d + 1)``."""
    from monai.transforms.utils import create_scale, create_shear, create_translate

    n, d = translate.shape
    if d == 2:  # MONAI's 2D shear is [[1, s0], [s1, 1 + s0·s1]]
        eye = np.tile(np.eye(3), (n, 1, 1))
        shears, moves, scales = eye.copy(), eye.copy(), eye.copy()
        shears[:, 0, 1], shears[:, 1, 0] = shear[:, 0], shear[:, 1]
        shears[:, 1, 1] = 1 + shear[:, 0] * shear[:, 1]
        moves[:, :2, 2] = translate
        scales[:, 0, 0], scales[:, 1, 1] = scale[:, 0], scale[:, 1]
        return shears @ moves @ scales
    return np.stack(
        [
            create_shear(d, tuple(s)) @ create_translate(d, tuple(t)) @ create_scale(d, tuple(c))
            for s, t, c in zip(shear, translate, scale, strict=True)
        ]
    )


def resample(images: torch.Tensor, matrices: torch.Tensor, mode: str) -> torch.Tensor:
    """``images (B, C, *spatial)`` resampled through per-sample affine ``matrices (B, d + 1,
    d + 1)`` that map each output voxel's coordinates, centred on the image (voxel index minus
    ``(n − 1) / 2`` per axis, axes in array order), to the input's: MONAI's ``Rotate`` and
    ``Affine`` convention (``align_corners=False``, zeros outside), in one ``grid_sample``."""
    shape = images.shape[2:]
    d = len(shape)
    device, dtype = images.device, matrices.dtype
    axes = [torch.arange(n, device=device, dtype=dtype) - (n - 1) / 2 for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij")).reshape(d, -1)  # (d, P)
    source = matrices[:, :d, :d] @ grid + matrices[:, :d, d:]  # (B, d, P)
    sizes = torch.tensor(shape, device=images.device, dtype=matrices.dtype)
    normalised = (source * (2.0 / sizes)[:, None]).flip(1)  # grid_sample wants (x, y[, z])
    grid = normalised.transpose(1, 2).reshape(len(images), *shape, d).to(images.dtype)
    return nn.functional.grid_sample(
        images, grid, mode=mode, padding_mode="zeros", align_corners=False
    )


class Augmenter:
    """The augmentation preset: rotation (±15°), affine (±10 % translation, ±10 % scale, ±0.1
    shear), horizontal flip, intensity/colour jitter (brightness shift, contrast gamma and, for
    several channels, a per-channel scale), each independently with probability ``prob``, in
    that order.

    The parameters of a batch are one :class:`AugmentDraw` from a generator seeded by (seed,
    epoch, batch): :meth:`reseed` starts an epoch, and the ``k``-th call after it draws from
    ``(seed, epoch, k)``, so a resumed run repeats its augmentation exactly. The batch is then
    transformed at once on its own device (``batched``, the default): per transform, the
    samples it fires for are resampled together through their affine matrices (one
    ``grid_sample``; masks with nearest-neighbour sampling, so labels stay labels), flipped, or
    jittered as tensor operations. ``batched=False`` applies MONAI's transforms (``Rotate``,
    ``Affine``, ``Flip``, ``ShiftIntensity``, ``AdjustContrast``, ``ScaleIntensity``) to one
    sample at a time with the same parameters: the reference the batched path is tested
    against.

    With ``masks``, the spatial transforms move each mask with its image and the jitter touches
    the image only. With ``foreground_only``, samples whose mask is all background are left as
    they are. Counts of how often each transform fired are kept in ``fired`` (and samples seen
    in ``seen``).
    """

    NAMES = ("rotate", "affine", "flip", "jitter")

    def __init__(
        self,
        spatial_dims: int,
        channels: int,
        prob: float = 0.3,
        masks: bool = False,
        foreground_only: bool = False,
        batched: bool = True,
    ) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f"augment_prob must lie in [0, 1], got {prob}")
        if foreground_only and not masks:
            raise ValueError("foreground-only augmentation needs segmentation masks")
        if spatial_dims not in (2, 3):
            raise ValueError(f"the augmentation preset takes 2D or 3D images, got {spatial_dims}D")
        self.spatial_dims, self.channels, self.prob = spatial_dims, channels, prob
        self.masks, self.foreground_only, self.batched = masks, foreground_only, batched
        self.fired: Counter[str] = Counter()
        self.seen = 0
        self.reseed(0)

    def reseed(self, seed: int, epoch: int = 0) -> None:
        """Start epoch ``epoch`` of a run seeded ``seed``: its batches' draws are fixed."""
        self._seed, self._epoch, self._batch = int(seed), int(epoch), 0

    def draw(self, n: int, shape: tuple[int, ...]) -> AugmentDraw:
        """The next batch's parameters (``n`` samples of spatial ``shape``)."""
        sequence = np.random.SeedSequence([self._seed, self._epoch, self._batch])
        self._batch += 1
        return AugmentDraw.draw(np.random.default_rng(sequence), n, shape, self.channels, self.prob)

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented copies of a batch: ``images (B, C, *spatial)``; ``targets`` are returned
        unchanged, or (with ``masks``) as transformed ``(B, *spatial)`` masks."""
        if images.shape[1] != self.channels or images.ndim != self.spatial_dims + 2:
            raise ValueError(
                f"the augmenter was built for {self.channels}-channel {self.spatial_dims}D "
                f"images, got a batch of shape {tuple(images.shape)}"
            )
        params = self.draw(len(images), tuple(images.shape[2:]))
        if self.foreground_only:
            keep = (targets.flatten(1) > 0).any(1).cpu().numpy()
            params.fires &= keep[:, None]
            self.seen += int(keep.sum())
        else:
            self.seen += len(images)
        for name, count in zip(self.NAMES, params.fires.sum(0), strict=True):
            self.fired[name] += int(count)
        apply = self._batch_apply if self.batched else self._reference
        return apply(images, targets, params)

    def _batch_apply(
        self, images: torch.Tensor, targets: torch.Tensor, p: AugmentDraw
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, labels = images.clone(), targets.clone()
        device, fires = images.device, p.fires
        spatial = (
            lambda rows: rotation_matrices(p.angles[rows]),
            lambda rows: affine_matrices(p.shear[rows], p.translate[rows], p.scale[rows]),
        )
        for column, matrices in enumerate(spatial):
            rows = np.flatnonzero(fires[:, column])
            if not len(rows):
                continue
            index = torch.from_numpy(rows).to(device)
            m = torch.from_numpy(matrices(rows)).to(device=device, dtype=torch.float32)
            out[index] = resample(out[index].float(), m, "bilinear").to(out.dtype)
            if self.masks:
                moved = resample(labels[index][:, None].float(), m, "nearest")[:, 0]
                labels[index] = moved.round().to(labels.dtype)
        rows = torch.from_numpy(np.flatnonzero(fires[:, 2])).to(device)
        if len(rows):
            out[rows] = out[rows].flip(-1)
            if self.masks:
                labels[rows] = labels[rows].flip(-1)
        rows = np.flatnonzero(fires[:, 3])
        if len(rows):
            out[torch.from_numpy(rows).to(device)] = self._jitter(
                out[torch.from_numpy(rows).to(device)], p, rows
            )
        return out, labels

    def _jitter(self, x: torch.Tensor, p: AugmentDraw, rows: np.ndarray) -> torch.Tensor:
        """Brightness shift, contrast gamma over each sample's own range (MONAI's
        ``AdjustContrast``), then the per-channel scale, for the samples ``rows`` of a batch."""
        view = (-1,) + (1,) * (x.ndim - 1)
        as_tensor = lambda v: torch.as_tensor(v, dtype=x.dtype, device=x.device)  # noqa: E731
        x = x + as_tensor(p.offset[rows]).view(view)
        lo = x.flatten(1).amin(1).view(view)
        span = x.flatten(1).amax(1).view(view) - lo
        x = ((x - lo) / (span + 1e-7)) ** as_tensor(p.gamma[rows]).view(view) * span + lo
        if p.colour is not None:
            x = x * (1 + as_tensor(p.colour[rows]).view(len(rows), -1, *(1,) * (x.ndim - 2)))
        return x

    def _reference(
        self, images: torch.Tensor, targets: torch.Tensor, p: AugmentDraw
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The same transforms by MONAI, one sample at a time."""
        from monai.transforms import (
            AdjustContrast,
            Affine,
            Flip,
            Rotate,
            ScaleIntensity,
            ShiftIntensity,
        )

        out, labels = images.clone(), targets.clone()
        tracking = get_track_meta()
        set_track_meta(False)  # plain tensors: MONAI's metadata is not needed here
        try:
            for i in np.flatnonzero(p.fires.any(1)):
                image = images[i].float()
                label = targets[i][None].float() if self.masks else None
                angle = tuple(map(float, p.angles[i]))
                affine = {
                    "shear_params": tuple(map(float, p.shear[i])),
                    "translate_params": tuple(map(float, p.translate[i])),
                    "scale_params": tuple(map(float, p.scale[i])),
                    "padding_mode": "zeros",
                }
                spatial = (
                    lambda mode, a=angle: Rotate(a, True, mode=mode, padding_mode="zeros"),
                    lambda mode, a=affine: Affine(**a, mode=mode, image_only=True),
                    lambda mode: Flip(spatial_axis=self.spatial_dims - 1),
                )
                for fire, make in zip(p.fires[i, :3], spatial, strict=True):
                    if fire:
                        image = torch.as_tensor(make("bilinear")(image))
                        if label is not None:
                            label = torch.as_tensor(make("nearest")(label))
                if p.fires[i, 3]:
                    image = ShiftIntensity(float(p.offset[i]))(image)
                    image = torch.as_tensor(AdjustContrast(float(p.gamma[i]))(image))
                    if p.colour is not None:
                        image = torch.stack(
                            [
                                ScaleIntensity(minv=None, maxv=None, factor=float(f))(channel)
                                for channel, f in zip(image, p.colour[i], strict=True)
                            ]
                        )
                out[i] = torch.as_tensor(image).to(out.dtype)
                if label is not None:
                    labels[i] = torch.as_tensor(label)[0].round().to(labels.dtype)
        finally:
            set_track_meta(tracking)
        return out, labels

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
