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


# ---- Multi-label findings (chest-X-ray-like prevalence and co-occurrence) --------------------

# Approximate NIH ChestX-ray14 prevalences: a few common findings, several under 2 %.
CHEST_PREVALENCE = {
    "infiltration": 0.177,
    "effusion": 0.119,
    "atelectasis": 0.103,
    "nodule": 0.056,
    "mass": 0.052,
    "pneumothorax": 0.047,
    "consolidation": 0.042,
    "pleural_thickening": 0.030,
    "cardiomegaly": 0.025,
    "emphysema": 0.022,
    "edema": 0.021,
    "fibrosis": 0.015,
    "pneumonia": 0.013,
    "hernia": 0.002,
}


@dataclass(frozen=True)
class FindingsSpec:
    """Synthetic multi-label detection: each finding draws its own pattern at its own place."""

    n: int = 2000  # images
    image_size: int = 32  # pixels per side
    correlation: float = 0.3  # latent correlation between findings (co-occurrence), in [0, 1)
    noise: float = 0.08  # pixel noise std, intensities in [0, 1]
    seed: int = 0
    prevalence: tuple[float, ...] = tuple(CHEST_PREVALENCE.values())  # per finding, in (0, 1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prevalence", tuple(self.prevalence))  # lists from the config
        if self.n < 1 or self.image_size < 16:
            raise ValueError(f"need n ≥ 1 and image_size ≥ 16, got {self.n}, {self.image_size}")
        if not 0 <= self.correlation < 1:
            raise ValueError(f"correlation must lie in [0, 1), got {self.correlation}")
        if not all(0 < p < 1 for p in self.prevalence):
            raise ValueError(f"every prevalence must lie in (0, 1), got {self.prevalence}")

    @property
    def class_names(self) -> list[str]:
        names = list(CHEST_PREVALENCE)
        if len(self.prevalence) == len(names):
            return names
        return [f"finding_{i}" for i in range(len(self.prevalence))]


def findings_labels(spec: FindingsSpec, rng: np.random.Generator) -> np.ndarray:
    """Multi-hot labels ``(n, L)`` uint8 from a one-factor Gaussian copula.

    Finding ``l`` is present when ``sqrt(ρ)·z + sqrt(1−ρ)·ε_l`` exceeds the standard-normal
    quantile ``1 − p_l``: its prevalence is ``p_l`` and findings co-occur more than chance.
    """
    from scipy.stats import norm

    shared = rng.standard_normal((spec.n, 1))
    own = rng.standard_normal((spec.n, len(spec.prevalence)))
    latent = np.sqrt(spec.correlation) * shared + np.sqrt(1 - spec.correlation) * own
    thresholds = norm.ppf(1 - np.asarray(spec.prevalence))
    return (latent > thresholds).astype(np.uint8)


def make_findings(spec: FindingsSpec) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 1, S, S)`` uint8 and multi-hot labels ``(n, L)`` uint8.

    Finding ``l`` adds an oriented bar at its own anchor on a 4×4 grid (jittered), so every
    finding is detectable on its own and the labels stay independent of one another's pixels.
    """
    rng = np.random.default_rng(spec.seed)
    labels = findings_labels(spec, rng)
    size, count = spec.image_size, len(spec.prevalence)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cell = size / 4
    anchors = [
        ((k // 4 + 0.5) * cell, (k % 4 + 0.5) * cell, np.pi * k / count) for k in range(count)
    ]
    images = np.empty((spec.n, 1, size, size), np.uint8)
    for i in range(spec.n):
        image = _background(rng, yy, xx, size)
        for k in np.flatnonzero(labels[i]):
            cy, cx, angle = anchors[k]
            cy, cx = cy + rng.normal(0, cell / 8), cx + rng.normal(0, cell / 8)
            along = (yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)
            across = -(yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
            image += 0.45 * np.exp(-(along**2) / (2 * (cell / 3) ** 2) - across**2 / 1.0)
        image += rng.normal(0.0, spec.noise, size=image.shape)
        images[i, 0] = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return images, labels


# ---- Segmentation: small multi-region tumours (BraTS-like labels) ----------------------------

TUMOUR_REGIONS = ("background", "edema", "non_enhancing", "enhancing")


@dataclass(frozen=True)
class TumoursSpec:
    """Synthetic tumour segmentation: a head-like ellipse and a small three-region tumour."""

    n: int = 40  # images (slices or volumes)
    shape: tuple[int, ...] = (64, 64)  # spatial shape: 2 entries for slices, 3 for volumes
    channels: int = 2  # MRI-like modalities, each with its own contrast per region
    tumour_fraction: float = 0.01  # mean share of voxels inside the tumour (edema included)
    noise: float = 0.05
    seed: int = 0
    # cases of different sizes: each padded at the high end by 0..size_jitter voxels per axis
    size_jitter: int = 0
    spacing: tuple[float, ...] | None = None  # voxel spacing (mm) in the files' headers; 1 mm

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(self.shape))  # lists from the config
        if self.spacing is not None:
            object.__setattr__(self, "spacing", tuple(float(x) for x in self.spacing))
            if len(self.spacing) != len(self.shape) or min(self.spacing) <= 0:
                raise ValueError(
                    f"spacing must give {len(self.shape)} positive sizes, got {self.spacing}"
                )
        if self.size_jitter < 0:
            raise ValueError(f"size_jitter must be ≥ 0, got {self.size_jitter}")
        if len(self.shape) not in (2, 3) or min(self.shape) < 16:
            raise ValueError(f"shape must be 2 or 3 sizes ≥ 16, got {self.shape}")
        if not 0 < self.tumour_fraction < 0.2:
            raise ValueError(f"tumour_fraction must lie in (0, 0.2), got {self.tumour_fraction}")
        if self.n < 1 or self.channels < 1:
            raise ValueError(f"need n ≥ 1 and channels ≥ 1, got {self.n}, {self.channels}")


def tumour_radius(shape: tuple[int, ...], fraction: float) -> float:
    """Radius (voxels) of a disc/ball covering ``fraction`` of an image of ``shape``."""
    voxels = fraction * float(np.prod(shape))
    if len(shape) == 2:
        return float(np.sqrt(voxels / np.pi))
    return float((3 * voxels / (4 * np.pi)) ** (1 / 3))


def make_tumours(spec: TumoursSpec) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, C, *shape)`` float32 and masks ``(n, *shape)`` uint8 with labels 0–3:
    1 edema (outer shell), 2 non-enhancing core, 3 enhancing rim inside the edema."""
    rng = np.random.default_rng(spec.seed)
    grid = np.stack(
        np.meshgrid(*[np.arange(s, dtype=np.float32) for s in spec.shape], indexing="ij")
    )
    centre = (np.asarray(spec.shape, np.float32) - 1)[:, None] / 2
    semi = np.asarray(spec.shape, np.float32)[:, None] * 0.42
    flat = grid.reshape(len(spec.shape), -1)
    head = (((flat - centre) / semi) ** 2).sum(0) <= 1
    radius = tumour_radius(spec.shape, spec.tumour_fraction)
    contrast = rng.uniform(0.3, 1.0, size=(spec.channels, 4))  # per modality and region
    images = np.empty((spec.n, spec.channels, *spec.shape), np.float32)
    masks = np.zeros((spec.n, *spec.shape), np.uint8)
    for i in range(spec.n):
        r = radius * rng.uniform(0.8, 1.2)
        inside = np.flatnonzero(head)
        c = flat[:, rng.choice(inside)][:, None]
        c = np.clip(c, r + 1, np.asarray(spec.shape)[:, None] - r - 2)
        d = np.sqrt(((flat - c) ** 2).sum(0))
        mask = np.zeros(flat.shape[1], np.uint8)
        mask[d <= r] = 1
        mask[d <= 0.7 * r] = 3
        mask[d <= 0.45 * r] = 2
        masks[i] = mask.reshape(spec.shape)
        for ch in range(spec.channels):
            level = np.where(head, 0.2, 0.0) + np.where(mask > 0, contrast[ch][mask], 0.0)
            image = level + rng.normal(0, spec.noise, size=level.shape)
            images[i, ch] = image.reshape(spec.shape).astype(np.float32)
    return images, masks


# ---- Regression: images whose target is their own standard deviation -------------------------


@dataclass(frozen=True)
class StdRegressionSpec:
    """Thakoersingh's (2021) data: 52×52 images with pixels ~ N(0, s²), target = the image's std.

    Each split draws ``s`` from the reference distribution (Thakoersingh's U(1, 10)); training sets
    with other target distributions are imposed by a ``target_distribution`` profile.
    """

    n_train: int = 50000
    n_val: int = 5000
    n_test: int = 5000
    image_size: int = 52
    distribution: tuple = ("uniform", 1.0, 10.0)  # ("uniform", low, high) | ("normal", mean, std)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "distribution", tuple(self.distribution))  # lists from the config
        if min(self.n_train, self.n_val, self.n_test) < 1:
            raise ValueError("every split needs at least one image")
        draw_targets(self.distribution, np.random.default_rng(0), 1)  # validates the distribution


def draw_targets(distribution: tuple, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` positive std values from ``("uniform", low, high)`` or ``("normal", mean, std)``
    (the normal is redrawn below 0.1, so every image has some spread)."""
    kind, a, b = distribution
    if kind == "uniform" and 0 < a < b:
        return rng.uniform(a, b, size=n)
    if kind == "normal" and b > 0:
        out = rng.normal(a, b, size=n)
        while (bad := out < 0.1).any():
            out[bad] = rng.normal(a, b, size=int(bad.sum()))
        return out
    raise ValueError(
        f"distribution must be ('uniform', low, high) with 0 < low < high or "
        f"('normal', mean, std) with std > 0, got {distribution}"
    )


def make_std_regression(spec: StdRegressionSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images ``(N, 1, 52, 52)`` float32, targets ``(N,)`` float32 = each image's population std
    (ddof 0, Thakoersingh's formula), and split codes ``(N,)`` (0 train, 1 val, 2 test)."""
    rng = np.random.default_rng(spec.seed)
    counts = (spec.n_train, spec.n_val, spec.n_test)
    n, size = sum(counts), spec.image_size
    scales = draw_targets(spec.distribution, rng, n)
    images = (rng.standard_normal((n, 1, size, size)) * scales[:, None, None, None]).astype(
        np.float32
    )
    targets = images.reshape(n, -1).std(axis=1).astype(np.float32)
    split = np.repeat(np.arange(3, dtype=np.int8), counts)
    return images, targets, split
