"""RandAugment (Cubuk et al., "RandAugment: Practical automated data augmentation with a reduced
search space", CVPR workshops 2020) on batches of 2D image tensors, on the fly.

Each training image gets ``n`` operations drawn uniformly (with replacement) from
:data:`OPERATIONS`, every one at the same magnitude ``m`` on the paper's 0–10 scale. Intensity
operations work on the image rescaled to ``[0, 1]`` by its own minimum and maximum (MONAI-style
float images have no fixed range) and the result is mapped back; geometric ones resample with
bilinear interpolation, filling with the image's minimum. Operations of the paper left out:
``equalize`` and ``color`` (colour-photograph operations without a meaning for grayscale or
multi-modal medical images). Signs of the symmetric operations are drawn per image.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F

# name → what magnitude 10 means
OPERATIONS = {
    "identity": None,
    "autocontrast": None,  # each channel stretched to the image's range
    "rotate": 30.0,  # degrees
    "shear_x": 0.3,
    "shear_y": 0.3,
    "translate_x": 0.45,  # share of the side
    "translate_y": 0.45,
    "brightness": 0.9,  # factor 1 ± 0.9
    "contrast": 0.9,
    "sharpness": 0.9,
    "solarize": 1.0,  # threshold 1 − m/10: pixels above it inverted
    "posterize": 4.0,  # bits 8 − 4·m/10
}


def _affine(image: torch.Tensor, matrix: list[list[float]]) -> torch.Tensor:
    """``image (C, H, W)`` resampled through the 2×3 ``matrix`` (normalised coordinates),
    zeros outside."""
    theta = torch.tensor([matrix], dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
    return F.grid_sample(
        image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )[0]


def apply(name: str, u: torch.Tensor, level: float, sign: float) -> torch.Tensor:
    """Operation ``name`` at ``level`` in ``[0, 1]`` (magnitude / 10) on ``u (C, H, W)`` in
    ``[0, 1]``; ``sign`` ±1 for the symmetric operations."""
    peak = OPERATIONS[name]
    if name == "identity":
        return u
    if name == "autocontrast":
        low = u.amin(dim=(1, 2), keepdim=True)
        high = u.amax(dim=(1, 2), keepdim=True)
        return torch.where(high > low, (u - low) / (high - low).clamp_min(1e-12), u)
    if name == "rotate":
        a = math.radians(sign * peak * level)
        return _affine(u, [[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]])
    if name in ("shear_x", "shear_y"):
        s = sign * peak * level
        return _affine(
            u,
            [[1.0, s, 0.0], [0.0, 1.0, 0.0]]
            if name == "shear_x"
            else [[1.0, 0.0, 0.0], [s, 1.0, 0.0]],
        )
    if name in ("translate_x", "translate_y"):
        t = 2 * sign * peak * level  # normalised coordinates span 2 per side
        return _affine(
            u,
            [[1.0, 0.0, t], [0.0, 1.0, 0.0]]
            if name == "translate_x"
            else [[1.0, 0.0, 0.0], [0.0, 1.0, t]],
        )
    factor = 1.0 + sign * peak * level if peak is not None else 1.0
    if name == "brightness":
        return (u * factor).clamp(0, 1)
    if name == "contrast":
        return (u.mean() + factor * (u - u.mean())).clamp(0, 1)
    if name == "sharpness":
        kernel = (
            torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], dtype=u.dtype) / 13
        )
        kernel = kernel.to(u.device).expand(u.shape[0], 1, 3, 3)
        blurred = F.conv2d(
            F.pad(u[None], (1, 1, 1, 1), mode="replicate"), kernel, groups=u.shape[0]
        )[0]
        return (blurred + factor * (u - blurred)).clamp(0, 1)
    if name == "solarize":
        threshold = 1.0 - peak * level
        return torch.where(u >= threshold, 1.0 - u, u)
    bits = 8 - round(peak * level)  # posterize
    steps = 2**bits
    return torch.floor(u * (steps - 1) + 0.5) / (steps - 1)


class RandAugment:
    """RandAugment with ``n`` operations of magnitude ``m`` (0–10) per image; the interface of
    :class:`medimbalance.augment.Augmenter` (``reseed``, ``rates``, ``seen``), so the training
    loop reseeds it from ``(seed, epoch)`` and a resumed run repeats it."""

    def __init__(self, n: int = 2, m: float = 9.0) -> None:
        if n < 1 or not 0 <= m <= 10:
            raise ValueError(f"randaugment needs n ≥ 1 and 0 ≤ m ≤ 10, got n {n}, m {m}")
        self.n, self.level = n, m / 10
        self.names = tuple(OPERATIONS)
        self.fired: Counter[str] = Counter()
        self.seen = 0
        self.reseed(0)

    def reseed(self, seed: int, epoch: int = 0) -> None:
        self._rng = np.random.default_rng([seed, epoch, 0x5A])

    def rates(self) -> dict[str, float]:
        """How often each operation was applied, per image seen."""
        return {name: self.fired[name] / max(self.seen, 1) for name in self.names}

    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4:
            raise ValueError(
                f"randaugment works on 2D images (B, C, H, W), got {tuple(images.shape)}"
            )
        out = images.clone()
        for i in range(len(images)):
            x = images[i]
            low, high = x.min(), x.max()
            scale = (high - low).clamp_min(1e-12)
            u = (x - low) / scale
            choices = self._rng.integers(len(self.names), size=self.n)
            signs = np.where(self._rng.random(self.n) < 0.5, -1.0, 1.0)
            for choice, sign in zip(choices, signs, strict=True):
                name = self.names[choice]
                u = apply(name, u, self.level, float(sign))
                self.fired[name] += 1
            out[i] = u * scale + low
            self.seen += 1
        return out, targets
