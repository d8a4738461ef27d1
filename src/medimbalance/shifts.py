"""Synthetic domain shifts of test images, at severities 1 (mild) to 5 (strong), with MONAI
transforms: Gaussian noise, Gaussian blur, a contrast (gamma) change and a smooth
multiplicative bias field (as MRI intensity inhomogeneity).

Each shift acts on every image rescaled to [0, 1] by its own minimum and maximum, and the
result is mapped back to the image's range, so one severity means the same on uint8 and on
z-scored data. Noise and bias fields are drawn from a seeded generator: the same seed gives
the same shifted images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.transforms import AdjustContrast, GaussianSmooth, RandBiasField, RandGaussianNoise

SHIFT_KINDS = ("noise", "blur", "contrast", "bias_field")
# The parameter of each kind at severities 1..5: noise std, blur sigma (pixels), contrast gamma,
# bias-field coefficients (drawn from [-c, c]).
SEVERITIES = {
    "noise": (0.03, 0.06, 0.1, 0.15, 0.2),
    "blur": (0.5, 0.8, 1.2, 1.6, 2.0),
    "contrast": (1.3, 1.6, 2.0, 2.5, 3.0),
    "bias_field": (0.05, 0.1, 0.15, 0.2, 0.3),
}


def shift_transform(kind: str, severity: int, seed: int):
    """The MONAI transform of one shift, applied to a single ``(C, *spatial)`` image in [0, 1]."""
    if kind not in SEVERITIES:
        raise ValueError(f"unknown shift {kind!r}; valid choices: {', '.join(SHIFT_KINDS)}")
    if not 1 <= severity <= len(SEVERITIES[kind]):
        raise ValueError(f"shift severity must lie in 1..5, got {severity}")
    value = SEVERITIES[kind][severity - 1]
    if kind == "noise":
        transform = RandGaussianNoise(prob=1.0, mean=0.0, std=value, sample_std=False)
    elif kind == "blur":
        return GaussianSmooth(sigma=value)
    elif kind == "contrast":
        return AdjustContrast(gamma=value)
    else:
        transform = RandBiasField(prob=1.0, coeff_range=(-value, value), degree=3)
    transform.set_random_state(seed=seed)
    return transform


@torch.no_grad()
def shift_images(images: torch.Tensor, kind: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Shifted copies of ``images (N, C, *spatial)`` (float), each rescaled to [0, 1] for the
    transform and mapped back to its own range."""
    transform = shift_transform(kind, severity, seed)
    out = torch.empty_like(images)
    for i, image in enumerate(images):
        low, high = image.min(), image.max()
        span = (high - low).clamp_min(1e-8)
        unit = (image - low) / span
        shifted = torch.as_tensor(transform(unit), dtype=images.dtype, device=images.device)
        out[i] = shifted * span + low
    return out


@torch.no_grad()
def evaluate_under_shift(
    model: torch.nn.Module,
    test_images: np.ndarray,
    test_targets: np.ndarray,
    val_logits: np.ndarray,
    val_targets: np.ndarray,
    *,
    task: str,
    classes: list[str],
    kinds: Sequence[str] = SHIFT_KINDS,
    severities: Sequence[int] = (1, 3, 5),
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch_size: int = 256,
    counts: Sequence[int] | None = None,
) -> dict:
    """True and estimated performance of ``model`` on the test split, unshifted (severity 0)
    and under every shift kind × severity: accuracy for classification, mean foreground Dice
    for segmentation. The estimators are fitted on the saved validation logits (NORCAL's
    with the training ``counts`` per class)."""
    from .estimation import estimate_performance, fit_estimator
    from .tasks import CLASS_TASKS
    from .training import forward, to_tensor

    if task not in (*CLASS_TASKS, "segmentation"):
        raise ValueError(
            f"performance estimation covers classification and segmentation, not {task}"
        )
    estimator = fit_estimator(val_logits, val_targets, task, counts)
    metric = "dice" if task == "segmentation" else "accuracy"
    model.eval()
    results = []
    for kind, severity in [(None, 0), *((k, s) for k in kinds for s in severities)]:
        logits = []
        for start in range(0, len(test_images), batch_size):
            x = to_tensor(np.asarray(test_images[start : start + batch_size]), torch.device(device))
            if kind is not None:
                x = shift_images(x, kind, severity, seed + start)
            logits.append(forward(model, x).cpu().numpy())
        found = estimate_performance(
            estimator, np.concatenate(logits), test_targets, task=task, classes=classes
        )
        results.append({"kind": kind or "none", "severity": severity, **found})
    return {"metric": metric, "results": results}
