"""Seeded synthetic stand-ins for medical-imaging datasets (no network needed).

Graded lesions: a retinopathy-like ordinal task. Grade g of an image is the size of its one
bright lesion: the radius grows in equal steps with the grade and is jittered (``jitter`` steps
of standard deviation), so neighbouring grades overlap a little. Small grade-independent spots
and a smoothly varying background with pixel noise make the task non-trivial. A CNN separates
the grades well when every grade is well represented; trained on a long-tailed set it moves the
overlapping boundaries towards the rare grades and sacrifices their recall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GradedLesionsSpec:
    """Parameters of the synthetic graded-lesion dataset (all images are 1-channel)."""

    n_per_class: int = 300  # images generated per grade, before splitting
    image_size: int = 28  # pixels per side
    num_grades: int = 5  # number of ordered grades (classes)
    noise: float = 0.08  # std of additive Gaussian pixel noise, in [0, 1] intensity units
    jitter: float = 0.15  # std of the lesion radius, in units of the radius step between grades
    seed: int = 0  # generator seed: same spec ⇒ identical bytes

    def __post_init__(self) -> None:
        if self.n_per_class < 1:
            raise ValueError(f"n_per_class must be ≥ 1, got {self.n_per_class}")
        if self.image_size < 12:
            raise ValueError(f"image_size must be ≥ 12 pixels, got {self.image_size}")
        if self.num_grades < 2:
            raise ValueError(f"num_grades must be ≥ 2, got {self.num_grades}")
        if not 0 <= self.noise <= 1:
            raise ValueError(f"noise must lie in [0, 1], got {self.noise}")
        if self.jitter < 0:
            raise ValueError(f"jitter must be ≥ 0, got {self.jitter}")

    @property
    def class_names(self) -> list[str]:
        return [f"grade_{g}" for g in range(self.num_grades)]


def lesion_radii(
    grades: np.ndarray, rng: np.random.Generator, spacing: float, jitter: float
) -> np.ndarray:
    """Lesion radius per image in pixels: ``1.5 + spacing·grade + N(0, jitter²)``, at least 0.8."""
    return np.maximum(0.8, 1.5 + spacing * grades + rng.normal(0.0, jitter, size=grades.shape))


def make_graded_lesions(spec: GradedLesionsSpec) -> tuple[np.ndarray, np.ndarray]:
    """Generate the dataset: images ``(N, 1, H, W)`` uint8 and grades ``(N,)`` int64.

    Images are ordered by grade (``N = num_grades · n_per_class``); splitting shuffles them.
    """
    rng = np.random.default_rng(spec.seed)
    size = spec.image_size
    grades = np.repeat(np.arange(spec.num_grades, dtype=np.int64), spec.n_per_class)
    # Radii are spread over the image; spacing keeps the largest lesion inside a third of it.
    spacing = (size / 3 - 1.5) / max(1, spec.num_grades - 1)
    radii = lesion_radii(grades, rng, spacing, jitter=spec.jitter * spacing)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    images = np.empty((grades.size, 1, size, size), dtype=np.uint8)
    for i, radius in enumerate(radii):
        image = _background(rng, yy, xx, size)
        margin = min(radius + 1, size / 2 - 1)
        cy, cx = rng.uniform(margin, size - margin, size=2)
        image += rng.uniform(0.3, 0.5) * _soft_disc(yy - cy, xx - cx, radius)
        for _ in range(rng.integers(0, 3)):  # grade-independent small distractor spots
            sy, sx = rng.uniform(2, size - 2, size=2)
            image += rng.uniform(0.15, 0.35) * _soft_disc(yy - sy, xx - sx, rng.uniform(0.6, 1.2))
        image += rng.normal(0.0, spec.noise, size=image.shape)
        images[i, 0] = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return images, grades


def _soft_disc(dy: np.ndarray, dx: np.ndarray, radius: float) -> np.ndarray:
    """A disc of the given radius with a one-pixel logistic edge, peak 1."""
    return 1.0 / (1.0 + np.exp((np.sqrt(dy**2 + dx**2) - radius) / 0.5))


def _background(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    """Smooth tissue-like background: a base level plus three broad blobs of either sign."""
    image = np.full((size, size), rng.uniform(0.25, 0.4), dtype=np.float32)
    for _ in range(3):
        cy, cx = rng.uniform(0, size, size=2)
        sigma = rng.uniform(size / 4, size / 2)
        image += rng.uniform(-0.1, 0.1) * np.exp(
            -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)
        )
    return image
