"""Imbalance profiles: how many training images each class keeps, and which ones."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..targets import class_counts
from ..tasks import CLASS_TASKS
from .sources import PROFILE_TASKS


def exponential_counts(n_max: int, num_classes: int, mu: float) -> list[int]:
    """Long-tail class counts ``n_c = floor(n_max · mu^(c/(C−1)))`` for ``c = 0..C−1``.

    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019 (the
    CIFAR-LT construction; imbalance factor ``n_max / n_min = 1/mu``). ``mu = 1`` is balanced.
    """
    if not 0 < mu <= 1:
        raise ValueError(f"mu must lie in (0, 1], got {mu}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be ≥ 2, got {num_classes}")
    if n_max < 1:
        raise ValueError(f"n_max must be ≥ 1, got {n_max}")
    return [math.floor(n_max * mu ** (c / (num_classes - 1))) for c in range(num_classes)]


def subsample_to_counts(
    labels: np.ndarray, counts: Sequence[int], seed: int, class_names: Sequence[str] | None = None
) -> np.ndarray:
    """Keep ``counts[c]`` random samples of each class ``c``; sorted indices into ``labels``.

    Raises ``ValueError`` naming the class when a count is 0 (the class would vanish) or exceeds
    what the class has.
    """
    labels = np.asarray(labels)
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(counts))]
    rng = np.random.default_rng(seed)
    kept = []
    for c, n_c in enumerate(counts):
        members = np.flatnonzero(labels == c)
        if n_c < 1:
            raise ValueError(f"the profile leaves class {names[c]!r} with no training images")
        if n_c > members.size:
            raise ValueError(
                f"the profile asks for {n_c} images of class {names[c]!r}, "
                f"but the training split has only {members.size}"
            )
        kept.append(rng.permutation(members)[:n_c])
    return np.sort(np.concatenate(kept)).astype(np.int64)


def step_counts(n_max: int, num_classes: int, mu: float, rho: float) -> list[int]:
    """Step imbalance: the last ``round(mu · C)`` classes keep ``floor(n_max / rho)`` images,
    the others ``n_max``.

    Buda et al., "A systematic study of the class imbalance problem in convolutional neural
    networks", Neural Networks 2018 (μ = fraction of minority classes, ρ = max/min class size).
    """
    minority = round(mu * num_classes)
    if not 1 <= minority <= num_classes - 1:
        raise ValueError(
            f"mu = {mu} gives {minority} minority classes of {num_classes}; need 1 to "
            f"{num_classes - 1}"
        )
    if rho < 1:
        raise ValueError(f"rho must be ≥ 1, got {rho}")
    return [n_max] * (num_classes - minority) + [math.floor(n_max / rho)] * minority


def minority_counts(available: Sequence[int], minority: int, fraction: float) -> list[int]:
    """Keep every image of the other classes and enough of class ``minority`` for it to make up
    ``fraction`` of the training set."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    others = sum(a for c, a in enumerate(available) if c != minority)
    counts = list(available)
    counts[minority] = math.floor(fraction / (1 - fraction) * others)
    return counts


def class_profile_counts(
    kind: str, available: Sequence[int], params: dict, classes: Sequence[str]
) -> list[int]:
    """Per-class target counts for the class-count profiles, given the counts available."""
    n_max = int(params.get("n_max") or min(available))
    if kind == "exponential":
        return exponential_counts(n_max, len(available), float(params["mu"]))
    if kind == "step":
        return step_counts(n_max, len(available), float(params["mu"]), float(params["rho"]))
    if kind == "minority_fraction":
        name = params.get("minority", classes[-1])
        if name not in classes:
            raise ValueError(f"minority class {name!r} is not one of {list(classes)}")
        return minority_counts(available, list(classes).index(name), float(params["fraction"]))
    raise ValueError(f"{kind!r} is not a class-count profile")


def fraction_subset(n: int, fraction: float, seed: int) -> np.ndarray:
    """A random ``fraction`` of ``n`` training images (at least one), sorted."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    keep = max(1, round(fraction * n))
    return np.sort(np.random.default_rng(seed).permutation(n)[:keep]).astype(np.int64)


def target_density(distribution: Sequence, values: np.ndarray) -> np.ndarray:
    """Density of ``("uniform", low, high)`` or ``("normal", mean, std)`` at ``values``."""
    kind, a, b = distribution
    if kind == "uniform":
        return np.where((values >= a) & (values <= b), 1.0 / (b - a), 0.0)
    if kind == "normal":
        return np.exp(-0.5 * ((values - a) / b) ** 2) / (b * math.sqrt(2 * math.pi))
    raise ValueError(f"unknown distribution {kind!r}; valid choices: uniform, normal")


def target_distribution_subset(
    targets: np.ndarray, distribution: Sequence, n: int | None, seed: int, bins: int = 50
) -> np.ndarray:
    """Indices of training images whose targets follow ``distribution`` (rejection sampling).

    Each image is accepted with probability ∝ p(t) / q(t), where q is the pool's histogram
    density of targets; ``n`` accepted images are kept (all when ``None``). ``ValueError`` when
    the pool cannot supply ``n``.
    """
    # A stream of its own: a generator seeded like the data's would accept by the data's draws.
    rng = np.random.default_rng([seed, 0x5EED])
    targets = np.asarray(targets, np.float64)
    density, edges = np.histogram(targets, bins=bins, density=True)
    pool = density[np.clip(np.searchsorted(edges, targets, side="right") - 1, 0, bins - 1)]
    ratio = target_density(distribution, targets) / np.maximum(pool, 1e-12)
    accepted = np.flatnonzero(rng.uniform(size=len(targets)) < ratio / ratio.max())
    accepted = rng.permutation(accepted)
    if n is not None:
        if n > len(accepted):
            raise ValueError(
                f"the training pool supplies only {len(accepted)} images with targets "
                f"~ {tuple(distribution)}, the profile asks for {n}; generate a larger pool"
            )
        accepted = accepted[:n]
    return np.sort(accepted).astype(np.int64)


def impose_profile(
    profile: dict, targets: np.ndarray, task: str, classes: Sequence[str]
) -> np.ndarray:
    """Sorted indices of the training images a profile keeps (``profile`` is its config)."""
    kind, seed = profile["kind"], int(profile.get("seed", 0))
    allowed = PROFILE_TASKS.get(kind)
    if allowed is None:
        raise ValueError(
            f"unknown profile kind {kind!r}; valid choices: {', '.join(PROFILE_TASKS)}"
        )
    if task not in allowed:
        raise ValueError(f"profile kind {kind!r} applies to {', '.join(allowed)} data, not {task}")
    if kind == "natural":  # the training split as it is
        return np.arange(len(targets), dtype=np.int64)
    if kind == "fraction":
        return fraction_subset(len(targets), float(profile["fraction"]), seed)
    if kind == "target_distribution":
        return target_distribution_subset(targets, profile["distribution"], profile.get("n"), seed)
    available = class_counts(targets, len(classes))
    counts = class_profile_counts(kind, available.tolist(), profile, classes)
    return subsample_to_counts(targets, counts, seed, classes)


def proportional_counts(
    proportions: Sequence[float], available: Sequence[int], classes: Sequence[str]
) -> list[int]:
    """The largest per-class counts in the ratio ``proportions`` that ``available`` can supply.

    Every class keeps at least one image; ``ValueError`` names a class with none available.
    """
    p = np.asarray(proportions, np.float64)
    avail = np.asarray(available, np.int64)
    for name, n in zip(classes, avail, strict=True):
        if n < 1:
            raise ValueError(f"the validation split has no images of class {name!r}")
    scale = np.min(avail / p)
    # The tolerance keeps an exact product (e.g. 0.25 × 40) from flooring one below.
    return np.minimum(np.maximum(1, np.floor(scale * p + 1e-9)), avail).astype(np.int64).tolist()


def shape_validation(
    profile: dict,
    train_targets: np.ndarray,
    kept: np.ndarray,
    val_targets: np.ndarray,
    task: str,
    classes: Sequence[str],
) -> np.ndarray:
    """Sorted indices of the validation images that follow the profile's training distribution.

    For ``validation: train_distribution``: class-count profiles keep the largest validation
    subset whose class proportions are those of the kept training images; a
    ``target_distribution`` profile rejection-samples the validation targets to the same
    distribution (every accepted image kept); ``natural`` and ``fraction`` keep the training
    distribution the split made, so the validation split is kept whole.
    """
    kind, seed = profile["kind"], int(profile.get("seed", 0))
    if kind in ("natural", "fraction"):
        return np.arange(len(val_targets), dtype=np.int64)
    if kind == "target_distribution":
        return target_distribution_subset(val_targets, profile["distribution"], None, seed + 1)
    if task not in CLASS_TASKS:
        raise ValueError(f"profile kind {kind!r} applies to class labels, not {task}")
    trained = class_counts(np.asarray(train_targets)[kept], len(classes))
    available = class_counts(val_targets, len(classes))
    counts = proportional_counts(trained / trained.sum(), available, classes)
    return subsample_to_counts(val_targets, counts, seed + 1, classes)


def target_summary(
    targets: np.ndarray,
    kept: np.ndarray,
    task: str,
    classes: Sequence[str],
    voxels: bool = False,
) -> pd.DataFrame:
    """Training images per class before and after a profile (``class``, ``available``, ``kept``).

    Multi-label: images with each finding; segmentation: images containing each label (with
    ``voxels``, also the voxels of each label: ``available_voxels``, ``kept_voxels``, read in
    chunks from memory-mapped masks); regression: images per tenth of the target range.
    """
    if task in CLASS_TASKS:
        available = class_counts(targets, len(classes))
        after = class_counts(targets[kept], len(classes))
        names = list(classes)
    elif task == "multilabel":
        available, after, names = targets.sum(0), targets[kept].sum(0), list(classes)
    elif task == "segmentation":
        # One chunked pass over the (memory-mapped) masks: each image's voxels per label.
        per_image = np.zeros((len(targets), len(classes)), np.int64)
        for start in range(0, len(targets), 64):
            masks = np.asarray(targets[start : start + 64]).reshape(-1, targets[0].size)
            for i, mask in enumerate(masks):
                per_image[start + i] = np.bincount(mask, minlength=len(classes))[: len(classes)]
        present = per_image > 0
        available, after, names = present.sum(0), present[kept].sum(0), list(classes)
        if voxels:
            summary = pd.DataFrame({"class": names, "available": available, "kept": after})
            summary["available_voxels"] = per_image.sum(0)
            summary["kept_voxels"] = per_image[kept].sum(0)
            return summary
    else:
        edges = np.linspace(float(np.min(targets)), float(np.max(targets)), 11)
        available = np.histogram(targets, edges)[0]
        after = np.histogram(targets[kept], edges)[0]
        names = [f"[{a:.3g}, {b:.3g})" for a, b in itertools.pairwise(edges)]
    return pd.DataFrame({"class": names, "available": available, "kept": after})


def resampling_summary(
    targets: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    task: str,
    classes: Sequence[str],
    synthetic: np.ndarray | None = None,
) -> pd.DataFrame:
    """Training images per class before and after resampling (``class``, ``before``,
    ``after``): ``before``/``after`` are rows of ``targets``; the labels of ``synthetic``
    images (classification), their findings vectors (multi-label: images with each finding)
    or the masks of synthetic image–mask pairs (segmentation: images containing each label),
    when given, count in ``after`` and in a ``synthetic`` column."""
    summary = target_summary(targets, before, task, classes).drop(columns="available")
    summary = summary.rename(columns={"kept": "before"})
    summary["after"] = target_summary(targets, after, task, classes)["kept"]
    if synthetic is not None:
        if task in ("segmentation", "multilabel"):
            every = np.arange(len(synthetic))
            counts = target_summary(synthetic, every, task, classes)["kept"].to_numpy()
        else:
            counts = class_counts(synthetic, len(classes))
        summary["synthetic"] = counts
        summary["after"] += summary["synthetic"]
    return summary
