"""Metrics of every task from saved network outputs (scikit-learn underneath, no torch).

:func:`task_metrics` turns raw outputs (logits, or predictions for regression) into the metrics
of the task; ``TASK_SCALARS`` lists the scalar metrics each task reports in tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    matthews_corrcoef,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

# Scalar metrics reported in tables, in display order, per task.
SCALAR_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "auroc",
    "average_precision",
    "mcc",
    "g_mean",
    "many_shot_accuracy",
    "medium_shot_accuracy",
    "few_shot_accuracy",
    "top5_accuracy",  # only where C > 5 (otherwise absent from metrics.json)
)
TASK_SCALARS = {
    "multiclass": SCALAR_METRICS,
    "binary": SCALAR_METRICS,
    "multilabel": ("auroc", "average_precision", "micro_auroc", "micro_average_precision"),
    "segmentation": ("dice", "sensitivity", "precision", "hd95", "surface_dice"),
    "regression": (
        "mse",
        "mae",
        "percentage_error",
        "bias",
        "r2",
        "mae_many",
        "mae_medium",
        "mae_few",
        "uniform_guess_percentage_error",
    ),
}

# The metrics a cross-evaluation table shows for each test set, per task.
HEADLINE_METRICS = {
    "multiclass": ("balanced_accuracy", "macro_f1"),
    "binary": ("balanced_accuracy", "macro_f1"),
    "multilabel": ("auroc", "average_precision"),
    "segmentation": ("dice", "hd95"),
    "regression": ("mse", "percentage_error"),
}

# Classes (regression: target bins) by their number of training images (Liu et al., "Large-
# Scale Long-Tailed Recognition in an Open World", CVPR 2019; Yang et al., ICML 2021 for bins):
# many-shot with more than MANY_SHOT, few-shot with fewer than FEW_SHOT, medium-shot otherwise.
MANY_SHOT, FEW_SHOT = 100, 20
SHOT_GROUPS = ("many", "medium", "few")
SHOT_RULES = ("thresholds", "thirds")
TOP_K = 5  # top-k accuracy is reported where there are more than TOP_K classes

# What each averaged classification metric does with a class absent from the test targets or
# never predicted (scikit-learn's and imbalanced-learn's defaults). A run's metrics.json lists
# under "flagged" the metrics to which one of these applied, with the classes; tables mark them.
ABSENT_CLASS_POLICY = {
    "balanced_accuracy": "the mean recall over the classes present in the test targets "
    "(scikit-learn's balanced_accuracy_score)",
    "macro_f1": "the mean F1 over the classes present in the test targets or the predictions; "
    "a class predicted but absent from the targets has F1 0 (scikit-learn's f1_score)",
    "auroc": "the mean one-vs-rest AUROC over the classes present in the test targets",
    "average_precision": "the mean one-vs-rest average precision over the classes present in "
    "the test targets",
    "g_mean": "the geometric mean of the recalls of the classes present in the test targets or "
    "the predictions; a class predicted but absent from the targets, or present but never "
    "predicted, has recall 0 and makes it 0 (imbalanced-learn's geometric_mean_score)",
}


def shot_groups(
    train_counts: Sequence[int],
    rule: str = "thresholds",
    many: int = MANY_SHOT,
    few: int = FEW_SHOT,
) -> list[str]:
    """``many``, ``medium`` or ``few`` per class from its training count.

    ``thresholds``: many-shot above ``many`` images, few-shot below ``few`` (Liu et al. 2019's
    100 and 20 by default). ``thirds``, for small medical datasets where those thresholds leave
    a group empty: the classes ranked by training count (ties by class index) are cut into
    three groups of ``C // 3`` classes, the first ``C mod 3`` groups one larger (5 classes:
    2 many, 2 medium, 1 few)."""
    counts = np.asarray(train_counts, dtype=np.int64)
    if rule == "thresholds":
        if few > many:
            raise ValueError(f"shot groups need few <= many, got few {few}, many {many}")
        return np.where(counts > many, "many", np.where(counts < few, "few", "medium")).tolist()
    if rule != "thirds":
        raise ValueError(
            f"unknown shot-group rule {rule!r}; valid choices: {', '.join(SHOT_RULES)}"
        )
    order = np.argsort(-counts, kind="stable")
    sizes = [len(counts) // 3 + (g < len(counts) % 3) for g in range(3)]
    groups = np.empty(len(counts), dtype=object)
    groups[order] = np.repeat(SHOT_GROUPS, sizes)
    return groups.tolist()


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis; ``(N, C)`` → ``(N, C)``."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def classification_metrics(
    targets: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    train_counts: Sequence[int] | None = None,
    groups: dict | None = None,
) -> dict:
    """Accuracy, balanced accuracy, macro-F1, macro one-vs-rest AUROC and average precision,
    MCC, G-mean, top-5 accuracy (more than five classes), per-class precision, recall, F1,
    AUROC and AP, and the confusion matrix (rows = true class, columns = predicted); with the
    training class counts ``train_counts``, also the many-, medium- and few-shot accuracy (the
    mean recall of the test-present classes of each :func:`shot_groups` group, ``groups`` its
    keyword arguments; ``None`` for an empty group).

    ``targets`` ``(N,)`` ints in ``0..C-1``; ``probabilities`` ``(N, C)`` rows summing to 1.
    A class absent from the test targets or never predicted is treated as
    :data:`ABSENT_CLASS_POLICY` says (scikit-learn's and imbalanced-learn's defaults); the
    metrics it changed are listed under ``flagged`` with the classes, and per-class values it
    makes undefined (recall and AUROC of an absent class, precision of a never-predicted one)
    are ``None``.
    """
    targets = np.asarray(targets, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_classes = len(class_names)
    if probabilities.ndim != 2 or probabilities.shape != (targets.size, num_classes):
        raise ValueError(
            f"probabilities must have shape (N, C) = ({targets.size}, {num_classes}) to match "
            f"the targets and classes, got {probabilities.shape}"
        )
    if targets.size and (targets.min() < 0 or targets.max() >= num_classes):
        raise ValueError(
            f"targets must lie in 0..{num_classes - 1}, got {targets.min()}..{targets.max()}"
        )
    labels = np.arange(num_classes)
    predicted = probabilities.argmax(axis=1)
    support = np.bincount(targets, minlength=num_classes)
    predicted_count = np.bincount(predicted, minlength=num_classes)
    precision, recall, f1, _ = precision_recall_fscore_support(
        targets, predicted, labels=labels, zero_division=0
    )
    present = support > 0
    seen = present | (predicted_count > 0)  # scikit-learn's and imbalanced-learn's labels
    auroc = [_binary_auroc(targets == c, probabilities[:, c]) for c in labels]
    ap = [_binary_ap(targets == c, probabilities[:, c]) for c in labels]
    metrics = {
        "n": int(targets.size),
        "classes": list(class_names),
        "accuracy": float(accuracy_score(targets, predicted)),
        "balanced_accuracy": float(np.mean(recall[present])),
        "macro_f1": float(np.mean(f1[seen])),
        "auroc": _mean_defined(auroc),
        "average_precision": _mean_defined(ap),
        "mcc": float(matthews_corrcoef(targets, predicted)),
        # imbalanced-learn's multi-class G-mean: recall 0 where a class has no test images
        "g_mean": float(np.prod(np.where(present, recall, 0)[seen]) ** (1 / seen.sum())),
    }
    if num_classes > TOP_K:
        metrics[f"top{TOP_K}_accuracy"] = float(
            top_k_accuracy_score(targets, probabilities, k=TOP_K, labels=labels)
        )
    shot = None
    if train_counts is not None:
        shot = shot_groups(train_counts, **(groups or {}))
        for group in SHOT_GROUPS:
            chosen = present & (np.asarray(shot) == group)
            metrics[f"{group}_shot_accuracy"] = (
                float(recall[chosen].mean()) if chosen.any() else None
            )
    absent = [class_names[c] for c in labels[~present]]
    never = [class_names[c] for c in labels[present & (predicted_count == 0)]]
    flagged = {m: absent for m in ABSENT_CLASS_POLICY if absent}
    if never:
        flagged["g_mean"] = [*absent, *never]
    undefined = lambda values, defined: [  # noqa: E731
        float(v) if ok else None for v, ok in zip(values, defined, strict=True)
    ]
    metrics.update(
        {
            "absent_classes": {"targets": absent, "predictions": never},
            "flagged": flagged,
            "per_class": {
                "precision": undefined(precision, predicted_count > 0),
                "recall": undefined(recall, present),
                "f1": undefined(f1, seen),
                "auroc": auroc,
                "average_precision": ap,
                "support": support.tolist(),
                **({"shot": shot, "train_count": list(map(int, train_counts))} if shot else {}),
            },
            "confusion_matrix": confusion_matrix(targets, predicted, labels=labels).tolist(),
        }
    )
    return metrics


def _binary_auroc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC, or ``None`` unless both outcomes occur.

    The Mann–Whitney statistic from average ranks (a tie between a positive and a negative
    counts one half): the area under scikit-learn's trapezoidal ROC curve (``roc_auc_score``,
    tests/test_metrics.py compares them), in one sort and without its input checks, which take
    most of its time at validation-set sizes (every epoch of every run computes this).
    """
    is_positive, scores = _binary_inputs(is_positive, scores)
    positives = int(is_positive.sum())
    negatives = is_positive.size - positives
    if not positives or not negatives:
        return None
    rank_sum = rankdata(scores)[is_positive].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def _binary_ap(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision, or ``None`` unless both outcomes occur.

    scikit-learn's definition (``average_precision_score``): the sum over the distinct scores,
    from the highest down, of the precision at that threshold times the recall it adds; in one
    sort, without its input checks (tests/test_metrics.py compares them).
    """
    is_positive, scores = _binary_inputs(is_positive, scores)
    positives = int(is_positive.sum())
    if not positives or positives == is_positive.size:
        return None
    order = np.argsort(scores, kind="mergesort")[::-1]
    ranked = scores[order]
    # the last sample (in descending order) of each distinct score: the thresholds
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    true_positives = np.cumsum(is_positive[order])[last]
    precision = true_positives / (last + 1)
    return float(np.sum(np.diff(true_positives, prepend=0) * precision) / positives)


def _binary_inputs(is_positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes as booleans and scores as float64 of the same length, finite (as scikit-learn
    requires)."""
    is_positive = np.asarray(is_positive, dtype=bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.shape != is_positive.shape:
        raise ValueError(f"{scores.size} scores for {is_positive.size} outcomes")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    return is_positive, scores


def _mean_defined(values) -> float | None:
    """Mean of the values that are not ``None``; ``None`` if there are none."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, stable for large ``|z|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))


def multilabel_metrics(
    targets: np.ndarray, probabilities: np.ndarray, label_names: Sequence[str]
) -> dict:
    """Per-label AUROC and average precision; their macro means over labels with both
    outcomes in ``targets`` (others are ``None``), and micro means over all image–label pairs.

    ``targets`` ``(N, L)`` multi-hot; ``probabilities`` ``(N, L)`` per-label probabilities.
    """
    targets = np.asarray(targets).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.shape != targets.shape or targets.ndim != 2:
        raise ValueError(
            f"probabilities must have the targets' shape (N, L) = {targets.shape}, "
            f"got {probabilities.shape}"
        )
    if targets.shape[1] != len(label_names):
        raise ValueError(f"targets have {targets.shape[1]} labels, names {len(label_names)}")
    positive = targets == 1
    labels = range(targets.shape[1])
    auroc = [_binary_auroc(positive[:, k], probabilities[:, k]) for k in labels]
    ap = [_binary_ap(positive[:, k], probabilities[:, k]) for k in labels]
    return {
        "n": len(targets),
        "classes": list(label_names),
        "auroc": _mean_defined(auroc),
        "average_precision": _mean_defined(ap),
        "micro_auroc": _binary_auroc(positive.ravel(), probabilities.ravel()),
        "micro_average_precision": _binary_ap(positive.ravel(), probabilities.ravel()),
        "per_class": {
            "auroc": auroc,
            "average_precision": ap,
            "prevalence": targets.mean(0).tolist(),
        },
    }


# What segmentation metrics do with an empty structure (a class or region absent from the
# reference mask, the prediction, or both), after the BraTS challenge's convention.
EMPTY_MASK_POLICY = {
    "both_empty": "Dice 1 and HD95 0 (nothing to find and nothing found); sensitivity and "
    "precision undefined (left out of the means)",
    "missed": "a structure in the reference but not in the prediction: Dice 0, sensitivity 0, "
    "precision undefined, HD95 the worst-case distance",
    "hallucinated": "a structure in the prediction but not in the reference: Dice 0, precision "
    "0, sensitivity undefined, HD95 the worst-case distance",
    "worst_case": "the image's diagonal in millimetres, sqrt(sum((size_i * spacing_i)^2)) "
    "(373.13 mm for BraTS's 240 x 240 x 155 volumes at 1 mm, the challenge's value)",
}


def overlap_counts(predicted: np.ndarray, targets: np.ndarray, structures: Sequence) -> dict:
    """Per image and structure ``(N, S)``: Dice ``2|P∩T| / (|P| + |T|)`` (1 where both are
    empty, :data:`EMPTY_MASK_POLICY`), sensitivity ``|P∩T|/|T|`` and precision ``|P∩T|/|P|``
    (``NaN`` where undefined). A structure is a list of labels whose union it is (one label
    for a class, several for a region such as BraTS's tumour core)."""
    n = len(targets)
    predicted = np.asarray(predicted).reshape(n, -1)
    targets = np.asarray(targets).reshape(n, -1)
    shape = (n, len(structures))
    inter, pred, true = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for s, labels in enumerate(structures):
        p, t = np.isin(predicted, labels), np.isin(targets, labels)
        inter[:, s], pred[:, s], true[:, s] = (p & t).sum(1), p.sum(1), t.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(pred + true == 0, 1.0, 2 * inter / (pred + true))
        return {"dice": dice, "sensitivity": inter / true, "precision": inter / pred}


def _edges(mask: np.ndarray) -> np.ndarray:
    """The mask's voxels that touch the outside (the mask minus its erosion)."""
    return mask & ~ndimage.binary_erosion(mask)


def worst_case_distance(shape: Sequence[int], spacing: Sequence[float] | None = None) -> float:
    """The HD95 given to a missed or hallucinated structure: the image's diagonal in mm."""
    spacing = np.ones(len(shape)) if spacing is None else np.asarray(spacing, np.float64)
    return float(np.sqrt(np.sum((np.asarray(shape, np.float64) * spacing) ** 2)))


def hausdorff95(
    predicted: np.ndarray, truth: np.ndarray, spacing: Sequence[float] | None = None
) -> float:
    """95th-percentile symmetric Hausdorff distance between the edges of two boolean masks, as
    MONAI's ``compute_hausdorff_distance(percentile=95, spacing=...)``: the larger of the two
    directed 95th percentiles, in the units of ``spacing`` (the voxel size per axis, mm;
    voxels when ``None``). Empty masks follow :data:`EMPTY_MASK_POLICY`: 0 when both are
    empty, :func:`worst_case_distance` when one is."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {predicted.shape} and {truth.shape}")
    if spacing is not None and len(spacing) != truth.ndim:
        raise ValueError(f"spacing {list(spacing)} needs one value per axis of {truth.shape}")
    if not predicted.any() and not truth.any():
        return 0.0
    if not predicted.any() or not truth.any():
        return worst_case_distance(truth.shape, spacing)
    edges_p, edges_t = _edges(predicted), _edges(truth)
    to_t = ndimage.distance_transform_edt(~edges_t, sampling=spacing)[edges_p]
    to_p = ndimage.distance_transform_edt(~edges_p, sampling=spacing)[edges_t]
    return float(max(np.percentile(to_t, 95), np.percentile(to_p, 95)))


def surface_dice(
    predicted: np.ndarray,
    truth: np.ndarray,
    tolerance: float,
    spacing: Sequence[float] | None = None,
) -> float:
    """Normalised surface Dice at ``tolerance`` (Nikolov et al. 2021; MONAI's
    ``compute_surface_dice`` with edge voxels as the boundary): the share of both masks' edge
    voxels that lie within ``tolerance`` (mm with ``spacing``) of the other mask's edge. Both
    masks empty: 1 (as Dice, :data:`EMPTY_MASK_POLICY`; MONAI gives NaN); one empty: 0."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if not predicted.any() and not truth.any():
        return 1.0
    if not predicted.any() or not truth.any():
        return 0.0
    edges_p, edges_t = _edges(predicted), _edges(truth)
    to_t = ndimage.distance_transform_edt(~edges_t, sampling=spacing)[edges_p]
    to_p = ndimage.distance_transform_edt(~edges_p, sampling=spacing)[edges_t]
    return float(((to_t <= tolerance).sum() + (to_p <= tolerance).sum()) / (len(to_t) + len(to_p)))


def image_spacings(spacing, n: int, ndim: int) -> list:
    """One spacing (or ``None``) per image from ``None``, one spacing ``(D,)`` for all, or one
    per image ``(N, D)``."""
    if spacing is None:
        return [None] * n
    spacing = np.asarray(spacing, np.float64)
    if spacing.ndim == 1:
        spacing = np.broadcast_to(spacing, (n, len(spacing)))
    if spacing.shape != (n, ndim):
        raise ValueError(
            f"spacing must give {ndim} values for each of the {n} images, got shape "
            f"{list(spacing.shape)}"
        )
    return list(spacing)


def segmentation_metrics(
    targets: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    hausdorff: bool = True,
    spacing=None,
    regions: dict[str, Sequence[int]] | None = None,
    sizes: Sequence[Sequence[int]] | None = None,
    surface_tolerance: float | None = None,
) -> dict:
    """Dice, sensitivity, precision and the 95 % Hausdorff distance per class (means over the
    images where defined) and their means over the foreground classes (class 0 is the
    background); with ``regions`` (name → the labels whose union it is: BraTS's whole tumour,
    tumour core, enhancing tumour), the same four per region under ``per_region``. Empty
    structures follow :data:`EMPTY_MASK_POLICY`. HD95 is in mm with ``spacing`` (one ``(D,)``
    for every image, or ``(N, D)``), else in voxels; ``hausdorff=False`` skips the distances
    (the training loop's per-epoch validation does).

    ``targets`` and ``predicted`` are label maps ``(N, *spatial)`` with values ``0..C-1``;
    with ``sizes`` (padded cases of different sizes) each image is scored on its own low
    corner of that size. ``surface_tolerance`` (mm) adds the normalised surface Dice
    (:func:`surface_dice`).
    """
    targets, predicted = np.asarray(targets), np.asarray(predicted)
    if predicted.shape != targets.shape:
        raise ValueError(
            f"predicted labels must have the masks' shape {targets.shape}, got {predicted.shape}"
        )
    spacings = image_spacings(spacing, len(targets), targets.ndim - 1)
    if sizes is None:
        sizes = [targets.shape[1:]] * len(targets)
    if len(sizes) != len(targets):
        raise ValueError(f"sizes must give one size per image ({len(targets)})")
    corners = [tuple(slice(0, int(n)) for n in size) for size in sizes]
    cases = (
        (p[c], t[c], sp) for p, t, c, sp in zip(predicted, targets, corners, spacings, strict=True)
    )
    out = segmentation_scores(cases, class_names, hausdorff, regions, surface_tolerance)
    out["hd95_unit"] = "voxel" if spacing is None else "mm"
    return out


def segmentation_scores(
    cases: Iterable[tuple[np.ndarray, np.ndarray, Sequence[float] | None]],
    class_names: Sequence[str],
    hausdorff: bool = True,
    regions: dict[str, Sequence[int]] | None = None,
    surface_tolerance: float | None = None,
) -> dict:
    """:func:`segmentation_metrics` from ``(predicted, target, spacing)`` label maps, one case
    at a time (each at its own size; ``spacing`` ``None`` for voxels): the working memory is
    one case's, however many the iterable yields (whole cases at native resolution)."""
    num_classes = len(class_names)
    regions = dict(regions or {})
    for name, labels in regions.items():
        bad = [label for label in labels if not 0 < int(label) < num_classes]
        if bad or not labels:
            raise ValueError(
                f"region {name!r} must list foreground labels in 1..{num_classes - 1}, got "
                f"{list(labels)}"
            )
    structures = [[c] for c in range(num_classes)] + [list(v) for v in regions.values()]
    kinds = ["dice", "sensitivity", "precision"]
    kinds += ["hd95"] * hausdorff + ["surface_dice"] * (surface_tolerance is not None)
    rows: dict[str, list] = {k: [] for k in kinds}
    for p, t, sp in cases:
        p, t = np.asarray(p), np.asarray(t)
        if p.shape != t.shape:
            raise ValueError(
                f"predicted labels must have the masks' shape {t.shape}, got {p.shape}"
            )
        if t.size and int(t.max()) >= num_classes:
            raise ValueError(f"mask labels must lie in 0..{num_classes - 1}, got {int(t.max())}")
        for k, v in overlap_counts(p[None], t[None], structures).items():
            rows[k].append(v[0])
        masks = [(np.isin(p, s), np.isin(t, s)) for s in structures]
        if hausdorff:
            rows["hd95"].append([hausdorff95(a, b, sp) for a, b in masks])
        if surface_tolerance is not None:
            rows["surface_dice"].append(
                [surface_dice(a, b, surface_tolerance, sp) for a, b in masks]
            )
    overlap = {k: np.asarray(v, np.float64).reshape(-1, len(structures)) for k, v in rows.items()}
    means = {k: [_nanmean(v[:, s]) for s in range(len(structures))] for k, v in overlap.items()}
    per_class = {k: v[:num_classes] for k, v in means.items()}
    out = {
        "n": len(overlap["dice"]),
        "classes": list(class_names),
        **({"surface_tolerance": surface_tolerance} if surface_tolerance is not None else {}),
        **{k: _mean_defined(v[1:]) for k, v in per_class.items()},  # over the foreground
        "per_class": per_class,
    }
    if regions:
        out["regions"] = {name: [int(x) for x in v] for name, v in regions.items()}
        out["per_region"] = {k: v[num_classes:] for k, v in means.items()}
    return out


def regression_metrics(targets: np.ndarray, predictions: np.ndarray) -> dict:
    """MSE, MAE, Thakoersingh's (2021) percentage loss ``mean |ŷ − y| / y × 100``, the bias
    ``mean (ŷ − y) / y × 100`` (its signed form) and the coefficient of determination ``r2 =
    1 − Σ(ŷ − y)² / Σ(y − ȳ)²`` (scikit-learn's ``r2_score``; 0 for a network that collapsed
    to predicting the mean, NaN for constant targets). ``targets`` and ``predictions``
    ``(N,)``."""
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if predictions.shape != targets.shape:
        raise ValueError(
            f"predictions must have one value per target ({targets.size}), got {predictions.size}"
        )
    error = predictions - targets
    spread = np.sum((targets - targets.mean()) ** 2)
    relative = error / targets if (targets != 0).all() else np.full_like(error, np.nan)
    return {
        "n": int(targets.size),
        "mse": float(np.mean(error**2)),
        "mae": float(np.mean(np.abs(error))),
        "percentage_error": _nanmean(100 * np.abs(relative)),
        "bias": _nanmean(100 * relative),
        "r2": float(1 - np.sum(error**2) / spread) if spread > 0 else float("nan"),
    }


def uniform_guess_percentage_error(targets: np.ndarray, low: float, high: float) -> float:
    """The percentage loss ``mean E|U − y| / y × 100`` of guessing ``U ~ U(low, high)``
    (Thakoersingh's 2021 baseline), in closed form: ``E|U − y| = ((y − low)² + (high − y)²) /
    (2 (high − low))`` for ``y`` in the range."""
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if not high > low or (y <= 0).any():
        raise ValueError("the guess needs high > low and positive targets")
    inside = np.clip(y, low, high)
    expected = ((inside - low) ** 2 + (high - inside) ** 2) / (2 * (high - low)) + np.abs(
        y - inside
    )
    return float(np.mean(expected / y) * 100)


def uniform_guess_mse(targets: np.ndarray, low: float, high: float) -> float:
    """The expected MSE of guessing ``U ~ U(low, high)``, in closed form:
    ``E(U − y)² = (high − low)²/12 + ((low + high)/2 − y)²``, averaged over the targets."""
    y = np.asarray(targets, dtype=np.float64).reshape(-1)
    if not high > low:
        raise ValueError("the guess needs high > low")
    return float(np.mean((high - low) ** 2 / 12 + ((low + high) / 2 - y) ** 2))


def regression_breakdown(
    targets: np.ndarray,
    predictions: np.ndarray,
    train_targets: np.ndarray,
    n_bins: int = 10,
    guess_range: Sequence[float] | None = None,
    groups: dict | None = None,
) -> dict:
    """Errors per target bin (``n_bins`` equal bins over the test targets' range), each bin
    labelled many-, medium- or few-shot by its number of training targets; the MAE and MSE
    over the many/medium/few-shot bins (``None`` where no bin is of that kind); and the
    percentage loss and MSE of a uniform random guess over ``guess_range`` (default the test
    targets' range). ``groups``: the keyword arguments of :func:`shot_groups` that label the
    bins."""
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)
    train = np.asarray(train_targets, dtype=np.float64).reshape(-1)
    low, high = float(targets.min()), float(targets.max())
    edges = np.linspace(low, high, n_bins + 1)
    test_bin = np.clip(np.searchsorted(edges, targets, side="right") - 1, 0, n_bins - 1)
    train_count = np.histogram(train, edges)[0]
    shot = np.asarray(shot_groups(train_count, **(groups or {})))
    error = predictions - targets
    out = {
        "per_bin": {
            "edges": edges.tolist(),
            "train_count": train_count.tolist(),
            "test_count": np.bincount(test_bin, minlength=n_bins).tolist(),
            "shot": shot.tolist(),
            "mae": [_nanmean(np.abs(error[test_bin == b])) for b in range(n_bins)],
        },
    }
    guess = (low, high) if guess_range is None else tuple(float(v) for v in guess_range)
    out["uniform_guess_range"] = list(guess)
    out["uniform_guess_percentage_error"] = uniform_guess_percentage_error(targets, *guess)
    out["uniform_guess_mse"] = uniform_guess_mse(targets, *guess)
    for kind in ("many", "medium", "few"):
        chosen = shot[test_bin] == kind
        out[f"mae_{kind}"] = float(np.abs(error[chosen]).mean()) if chosen.any() else None
        out[f"mse_{kind}"] = float((error[chosen] ** 2).mean()) if chosen.any() else None
    return out


def task_metrics(
    task: str,
    targets: np.ndarray,
    outputs: np.ndarray,
    class_names: Sequence[str],
    hausdorff: bool = True,
    train_targets: np.ndarray | None = None,
    guess_range: Sequence[float] | None = None,
    groups: dict | None = None,
    spacing=None,
    regions: dict[str, Sequence[int]] | None = None,
    sizes: Sequence[Sequence[int]] | None = None,
    surface_tolerance: float | None = None,
) -> dict:
    """The metrics of ``task`` from raw network outputs: class logits ``(N, C)``, label logits
    ``(N, L)``, segmentation logits ``(N, C, *spatial)`` (or predicted label maps), or
    regression predictions ``(N, 1)``. With ``train_targets`` (the training set's targets),
    classification adds the many/medium/few-shot accuracies and regression the errors per
    target bin and the uniform guess over ``guess_range``; ``groups`` holds the keyword
    arguments of :func:`shot_groups`. Segmentation takes the voxel ``spacing``, the named
    ``regions``, the case ``sizes`` and the ``surface_tolerance`` of
    :func:`segmentation_metrics`. The result records
    its ``task``."""
    if task == "multilabel":
        metrics = multilabel_metrics(targets, sigmoid(outputs), class_names)
    elif task == "segmentation":
        labels = outputs if outputs.ndim == np.ndim(targets) else np.argmax(outputs, axis=1)
        metrics = segmentation_metrics(
            targets, labels, class_names, hausdorff, spacing, regions, sizes, surface_tolerance
        )
    elif task == "regression":
        metrics = regression_metrics(targets, outputs)
        if train_targets is not None:
            metrics.update(
                regression_breakdown(targets, outputs, train_targets, 10, guess_range, groups)
            )
    else:
        counts = None
        if train_targets is not None:
            counts = np.bincount(np.asarray(train_targets, np.int64), minlength=len(class_names))
        metrics = classification_metrics(targets, softmax(outputs), class_names, counts, groups)
    return {"task": task, **metrics}


def _nanmean(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else None
