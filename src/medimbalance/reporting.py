"""Paper-style tables (mean ± std over seeds) and figures from per-run outputs."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .metrics import TASK_SCALARS

# The per-class column of each task's table: recall per class, AUROC per label, Dice per
# foreground region (regression has none).
PER_CLASS_COLUMN = {
    "multiclass": "recall",
    "binary": "recall",
    "multilabel": "auroc",
    "segmentation": "dice",
}


def metrics_frame(records: Sequence[dict]) -> pd.DataFrame:
    """One row per run: ``method``, ``seed``, the task's scalar metrics and its per-class
    columns (``recall[<class>]``, ``auroc[<label>]`` or ``dice[<region>]``).

    Each record is ``{"method": str, "seed": int, "metrics": <metrics.json contents>}``.
    """
    rows = []
    for record in records:
        m = record["metrics"]
        task = m.get("task", "multiclass")
        row = {"method": record["method"], "seed": int(record["seed"])}
        row.update({name: m[name] for name in TASK_SCALARS[task]})
        column = PER_CLASS_COLUMN.get(task)
        if column:
            pairs = zip(m["classes"], m["per_class"][column], strict=True)
            skip = 1 if task == "segmentation" else 0  # the background
            row.update({f"{column}[{c}]": v for c, v in list(pairs)[skip:]})
        rows.append(row)
    return pd.DataFrame(rows).astype({"seed": int})


def summarise(frame: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Mean and sample standard deviation (ddof = 1) over seeds, one row per method in the order
    of ``methods``; columns ``n_seeds``, ``<metric>_mean``, ``<metric>_std``."""
    missing = [m for m in methods if m not in set(frame["method"])]
    if missing:
        raise ValueError(f"no results for method(s) {missing}")
    metrics = [c for c in frame.columns if c not in ("method", "seed")]
    grouped = frame.groupby("method", sort=False)[metrics]
    mean = grouped.mean().add_suffix("_mean")
    std = grouped.std(ddof=1).add_suffix("_std")
    table = pd.concat([grouped.size().rename("n_seeds"), mean, std], axis=1)
    ordered = ["n_seeds"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
    return table.loc[list(methods), ordered].rename_axis("method")


def markdown_table(summary: pd.DataFrame, digits: int = 3) -> str:
    """Render ``summarise`` output as Markdown with ``mean ± std`` cells (mean alone if 1 seed)."""
    metrics = [c[: -len("_mean")] for c in summary.columns if c.endswith("_mean")]
    cells = pd.DataFrame(index=summary.index)
    cells["seeds"] = summary["n_seeds"].astype(int)
    for metric in metrics:
        cells[metric] = [
            _cell(mean, std, digits)
            for mean, std in zip(summary[f"{metric}_mean"], summary[f"{metric}_std"], strict=True)
        ]
    return cells.reset_index().to_markdown(
        index=False, colalign=["left"] * (len(cells.columns) + 1)
    )


def _cell(mean: float, std: float, digits: int) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def plot_class_distribution(counts: pd.DataFrame, title: str, path: str) -> None:
    """Bar chart of images per class; ``counts`` has columns ``class`` and one per set shown
    (e.g. ``available`` and ``kept``)."""
    sets = [c for c in counts.columns if c != "class"]
    x = np.arange(len(counts))
    width = 0.8 / len(sets)
    fig, ax = plt.subplots(figsize=(1.2 * len(counts) + 2, 3.2))
    for i, name in enumerate(sets):
        ax.bar(x + (i - (len(sets) - 1) / 2) * width, counts[name], width, label=name)
    ax.set_xticks(x, counts["class"], rotation=30, ha="right")
    ax.set_ylabel("training images")
    ax.set_title(title)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confusion_matrices(
    matrices: dict[str, np.ndarray], class_names: Sequence[str], title: str, path: str
) -> None:
    """One row-normalised confusion matrix (true × predicted) per method, side by side."""
    fig, axes = plt.subplots(
        1, len(matrices), figsize=(3.2 * len(matrices) + 0.6, 3.4), squeeze=False
    )
    for ax, (method, cm) in zip(axes[0], matrices.items(), strict=True):
        cm = np.asarray(cm, dtype=float)
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
        for (i, j), value in np.ndenumerate(rates):
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.5 else "black",
            )
        ticks = np.arange(len(class_names))
        ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(ticks, class_names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_title(method)
    axes[0][0].set_ylabel("true")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
