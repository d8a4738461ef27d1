"""Patch-based training and sliding-window inference: segmentation at native resolution.

A method with ``patch: {size: [96, 96, 96], foreground: 0.33}`` trains on random patches of
``size`` voxels read lazily from the memory-mapped cases (only the patch is read from disk, so
memory does not grow with the dataset or the case size), and is validated and tested on whole
cases by MONAI's ``sliding_window_inference`` with windows of the same size.

Patch centres are drawn by MONAI's own samplers, the centre generators behind
``RandCropByPosNegLabel`` (``foreground``: the share of patches centred on a foreground voxel)
and ``RandCropByLabelClasses`` (``class_ratios``: one weight per class, background first),
from voxel locations kept per case and class as nnU-Net does (at most ``locations`` of each,
drawn once with the run's seed), so the masks are not scanned at every draw. Each epoch
draws ``per_epoch`` patches (default one per training case), the cases in a seeded random
order, reseeded from ``(seed, epoch)`` so that a resumed run draws the same patches.

Cases of different sizes are stored padded (:mod:`medimbalance.data.folder`); a patch never
starts in the padding, and a patch larger than its case along an axis is padded with zeros
(background in the mask), as nnU-Net pads.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .data.io import release
from .tasks import patch_errors


@dataclass(frozen=True)
class PatchSpec:
    """A method's ``patch`` settings."""

    size: tuple[int, ...]
    foreground: float = 0.33  # share of patches centred on a foreground voxel
    class_ratios: tuple[float, ...] | None = None  # per class (background first), instead
    per_epoch: int = 0  # patches per epoch; 0: one per training case
    overlap: float = 0.5  # of neighbouring windows at inference (nnU-Net's 0.5)
    blend: str = "gaussian"  # how overlapping windows are averaged
    locations: int = 10000  # voxel locations kept per case and class (nnU-Net's 10,000)

    @classmethod
    def from_dict(cls, patch: dict, spatial_dims: int, num_classes: int) -> PatchSpec:
        """The spec of a ``patch`` mapping; ``ValueError`` lists every bad key."""
        errors = patch_errors(patch, spatial_dims, num_classes)
        if errors:
            raise ValueError("; ".join(errors))
        values = dict(patch)
        values["size"] = tuple(int(n) for n in patch["size"])
        if patch.get("class_ratios") is not None:
            values["class_ratios"] = tuple(float(r) for r in patch["class_ratios"])
        return cls(**values)


def case_locations(
    mask: np.ndarray, num_classes: int, limit: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Flat voxel indices of each class in ``mask`` (one case, its own size), at most
    ``limit`` of each drawn without replacement (all when fewer), sorted."""
    flat = np.asarray(mask).reshape(-1)
    out = []
    for c in range(num_classes):
        where = np.flatnonzero(flat == c)
        if len(where) > limit:
            where = np.sort(rng.choice(where, limit, replace=False))
        out.append(where.astype(np.int64))
    return out


def window(centre: Sequence[int], size: Sequence[int], extent: Sequence[int]):
    """The slices of a patch of ``size`` around ``centre`` (MONAI's ``SpatialCrop``: start at
    ``centre − size // 2``) within a case of ``extent`` voxels, and the zero padding (before,
    after) per axis that makes it ``size`` where the case is smaller."""
    slices, pads = [], []
    for c, n, e in zip(centre, size, extent, strict=True):
        start = min(max(int(c) - n // 2, 0), max(e - n, 0))
        stop = min(start + n, e)
        slices.append(slice(start, stop))
        pads.append((0, n - (stop - start)))
    return tuple(slices), pads


def _padded(block: np.ndarray, pads: list[tuple[int, int]]) -> np.ndarray:
    if not any(after for _, after in pads):
        return block
    lead = [(0, 0)] * (block.ndim - len(pads))
    return np.pad(block, lead + pads)


class PatchSet:
    """Training patches drawn from memory-mapped cases: the ``batch``/``targets`` interface of
    :class:`medimbalance.training.TensorSet`, ``len`` being the patches of one epoch, and
    ``reseed(seed, epoch)`` drawing that epoch's patches (``fit`` calls it)."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        rows: np.ndarray,
        sizes: Sequence[Sequence[int]] | None,
        spec: PatchSpec,
        num_classes: int,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        self.images, self.masks, self.spec = images, masks, spec
        self.rows = np.asarray(rows)
        full = tuple(images.shape[2:])
        self.sizes = [tuple(sizes[r]) if sizes is not None else full for r in self.rows]
        rng = np.random.default_rng(seed)
        self.locations = []
        for row, size in zip(self.rows, self.sizes, strict=True):
            mask = self._case_mask(row, size)
            self.locations.append(case_locations(mask, num_classes, spec.locations, rng))
            release(masks)
        # The foreground locations of each case, joined once (the pos/neg sampler's input).
        self.foreground = [np.concatenate([w[0][:0], *w[1:]]) for w in self.locations]
        self.n = spec.per_epoch or len(self.rows)
        self.labels = torch.zeros(self.n, dtype=torch.uint8, device=device)  # length, device
        self.draws: list[tuple[int, tuple, list]] = []
        self.reseed(seed, 0)

    def _case_mask(self, row: int, size: Sequence[int]) -> np.ndarray:
        return np.asarray(self.masks[(row, *(slice(0, n) for n in size))])

    def __len__(self) -> int:
        return self.n

    def centres(self, case: int, count: int, rand_state: np.random.RandomState) -> list:
        """``count`` patch centres in case ``case`` by MONAI's samplers (foreground share or
        class ratios; a class a case lacks is skipped, as MONAI does)."""
        from monai.transforms.utils import (
            generate_label_classes_crop_centers,
            generate_pos_neg_label_crop_centers,
        )

        spec, extent, where = self.spec, self.sizes[case], self.locations[case]
        with warnings.catch_warnings():  # a case without foreground: MONAI warns, draws bg
            warnings.simplefilter("ignore")
            if spec.class_ratios is not None:
                return list(
                    generate_label_classes_crop_centers(
                        spec.size,
                        count,
                        extent,
                        where,
                        list(spec.class_ratios),
                        rand_state,
                        allow_smaller=True,
                        warn=False,
                    )
                )
            return list(
                generate_pos_neg_label_crop_centers(
                    spec.size,
                    count,
                    spec.foreground,
                    extent,
                    self.foreground[case],
                    where[0],
                    rand_state,
                    allow_smaller=True,
                )
            )

    def reseed(self, seed: int, epoch: int) -> None:
        """Draw the patches of ``epoch``: the cases in a random order (each as often, cycling
        when an epoch takes more patches than there are cases), one centre per patch."""
        state = np.random.SeedSequence([int(seed), int(epoch), 0x9A7C4]).generate_state(1)[0]
        rand_state = np.random.RandomState(state)
        cases = np.concatenate(
            [rand_state.permutation(len(self.rows)) for _ in range(-(-self.n // len(self.rows)))]
        )[: self.n]
        self.draws = []
        for case in cases:
            (centre,) = self.centres(int(case), 1, rand_state)
            slices, pads = window(centre, self.spec.size, self.sizes[case])
            self.draws.append((int(self.rows[case]), slices, pads))

    def _read(self, array: np.ndarray, idx: torch.Tensor, channels: bool) -> np.ndarray:
        out = []
        for i in idx.cpu().tolist():
            row, slices, pads = self.draws[i]
            lead = (row, slice(None)) if channels else (row,)
            out.append(_padded(np.array(array[(*lead, *slices)]), pads))
        release(array)
        return np.stack(out)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        from .training import to_tensor

        return to_tensor(self._read(self.images, idx, True), self.labels.device)

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        masks = torch.from_numpy(self._read(self.masks, idx, False))
        return masks.to(self.labels.device).long()


class CaseSet:
    """Whole cases for sliding-window inference: ``logits(model, i)`` are the network's
    outputs on case ``i`` (file row ``rows[i]``, all rows by default) at its own size (windows
    of ``spec.size``, MONAI's ``sliding_window_inference``); ``masks`` are the stored (padded)
    label maps and ``sizes`` each file row's own size."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        sizes: Sequence[Sequence[int]] | None,
        spec: PatchSpec,
        device: torch.device,
        batch: int = 4,
        rows: np.ndarray | None = None,
    ) -> None:
        self.images, self.spec, self.device, self.window_batch = images, spec, device, batch
        self.masks = masks
        self.rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        full = tuple(images.shape[2:])
        self.sizes = [tuple(sizes[r]) if sizes is not None else full for r in self.rows]
        self.labels = torch.zeros(len(self.rows), dtype=torch.uint8, device=device)

    def __len__(self) -> int:
        return len(self.rows)

    def case(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Case ``i`` (file row ``rows[i]``) without its padding: images ``(1, C, *size)``
        and mask ``(1, *size)``."""
        from .training import to_tensor

        row, crop = int(self.rows[i]), tuple(slice(0, n) for n in self.sizes[i])
        image = to_tensor(np.array(self.images[(row, slice(None), *crop)])[None], self.device)
        mask = torch.from_numpy(np.array(self.masks[(row, *crop)])[None]).to(self.device)
        release(self.images), release(self.masks)
        return image, mask.long()

    @torch.no_grad()
    def logits(self, model: nn.Module, i: int) -> torch.Tensor:
        """Logits ``(1, K, *size)`` of case ``i`` by sliding windows, in float32."""
        from monai.inferers import sliding_window_inference

        from .training import forward

        image, _ = self.case(i)
        return sliding_window_inference(
            image,
            self.spec.size,
            self.window_batch,
            lambda x: forward(model, x),
            overlap=self.spec.overlap,
            mode=self.spec.blend,
        ).float()

    @torch.no_grad()
    def predicted_labels(self, model: nn.Module) -> np.ndarray:
        """Every case's predicted label map ``(N, *stored shape)`` uint8, background in the
        padding. Label maps, not logits, are what whole cases at native resolution keep: one
        byte per voxel (a BraTS test split's logits as float16 would take 8 bytes per voxel)."""
        model.eval()
        out = np.zeros((len(self), *self.images.shape[2:]), np.uint8)  # one per case
        for i in range(len(self)):
            labels = self.logits(model, i)[0].argmax(0).to(torch.uint8).cpu().numpy()
            out[(i, *(slice(0, n) for n in self.sizes[i]))] = labels
        return out


class FlipTTA(nn.Module):
    """Test-time augmentation by flips (nnU-Net's mirroring): the network's softmax averaged
    over every combination of flips of the spatial axes (4 in 2D, 8 in 3D), each output
    flipped back; returned as log-probabilities, so that its argmax, softmax and any
    sliding-window blending read it as logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from itertools import combinations

        axes = list(range(2, x.ndim))
        flips = [list(c) for k in range(len(axes) + 1) for c in combinations(axes, k)]
        total = 0
        for dims in flips:
            out = self.model(torch.flip(x, dims) if dims else x)
            total = total + torch.softmax(torch.flip(out, dims) if dims else out, 1)
        return torch.log(total / len(flips)).clamp_min(-100.0)
