"""Classification metrics from saved predictions (scikit-learn underneath)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

# Scalar metrics reported in tables, in display order.
SCALAR_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "auroc")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis; ``(N, C)`` → ``(N, C)``."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def classification_metrics(
    targets: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> dict:
    """Accuracy, balanced accuracy, macro-F1, macro one-vs-rest AUROC, per-class P/R/F1/AUROC
    and the confusion matrix (rows = true class, columns = predicted).

    ``targets`` ``(N,)`` ints in ``0..C-1``; ``probabilities`` ``(N, C)`` rows summing to 1.
    A class absent from ``targets`` has undefined AUROC (``None``); the macro AUROC averages the
    defined ones, which equals scikit-learn's ``roc_auc_score(multi_class="ovr")`` when all
    classes are present.
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
    precision, recall, f1, support = precision_recall_fscore_support(
        targets, predicted, labels=labels, zero_division=0
    )
    auroc = [_binary_auroc(targets == c, probabilities[:, c]) for c in labels]
    defined = [a for a in auroc if a is not None]
    return {
        "n": int(targets.size),
        "classes": list(class_names),
        "accuracy": float(accuracy_score(targets, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(targets, predicted)),
        "macro_f1": float(
            f1_score(targets, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "auroc": float(np.mean(defined)) if defined else None,
        "per_class": {
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "f1": f1.tolist(),
            "auroc": auroc,
            "support": support.tolist(),
        },
        "confusion_matrix": confusion_matrix(targets, predicted, labels=labels).tolist(),
    }


def _binary_auroc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    if is_positive.all() or not is_positive.any():
        return None
    return float(roc_auc_score(is_positive, scores))
