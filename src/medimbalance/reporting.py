"""Paper-style tables (mean ± std over seeds) and figures from per-run outputs."""

from __future__ import annotations

import html
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data.io import atomic_write
from .metrics import TASK_SCALARS
from .tables import summary

# The per-class column of each task's table: recall per class, AUROC per label, Dice per
# foreground region (regression has none).
PER_CLASS_COLUMN = {
    "multiclass": "recall",
    "binary": "recall",
    "multilabel": "auroc",
    "segmentation": "dice",
}


def save_figure(fig, path: str, dpi: int) -> None:
    """Write a figure as PNG atomically (a failed job leaves no half-drawn file) and close it."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    plt.close(fig)


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


def cross_summary(
    frames: dict[str, pd.DataFrame], methods: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """:func:`summarise` of ``metrics`` on each test set (``frames``: test set → the
    :func:`metrics_frame` of its runs), side by side: columns ``<metric> @ <test set>_mean``
    and ``_std`` in the order of ``frames`` then ``metrics``, one row per method."""
    parts = []
    for test_set, frame in frames.items():
        summary = summarise(frame[["method", "seed", *metrics]], methods)
        n_seeds = summary.pop("n_seeds")
        parts.append(summary.rename(columns=lambda c, t=test_set: _at(c, t)))
    return pd.concat([n_seeds, *parts], axis=1)


def _at(column: str, test_set: str) -> str:
    metric, _, statistic = column.rpartition("_")
    return f"{metric} @ {test_set}_{statistic}"


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
    save_figure(fig, path, dpi=120)


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
    save_figure(fig, path, dpi=120)


def class_logits(logits: np.ndarray, targets: np.ndarray, limit: int = 200_000, seed: int = 0):
    """``(M, C)`` logits and ``(M,)`` classes, one row per image (classification) or voxel
    (segmentation logits ``(N, C, *spatial)``, at most ``limit`` voxels drawn at random)."""
    logits, targets = np.asarray(logits, dtype=np.float32), np.asarray(targets)
    if logits.ndim > 2:
        logits = np.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])
        targets = targets.reshape(-1)
        if len(targets) > limit:
            keep = np.random.default_rng(seed).choice(len(targets), limit, replace=False)
            logits, targets = logits[keep], targets[keep]
    return logits, targets.astype(np.int64)


def plot_logit_histograms(
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    title: str,
    path: str,
) -> None:
    """Per class ``c``, the histogram of the logit ``z_c`` of the samples (images or voxels)
    whose true class is ``c``, for each named set (e.g. training vs test): under imbalance,
    the minority classes' test logits move towards the decision boundary (Li et al.)."""
    fig, axes = plt.subplots(
        1, len(class_names), figsize=(2.6 * len(class_names) + 0.4, 2.6), squeeze=False
    )
    for c, (ax, name) in enumerate(zip(axes[0], class_names, strict=True)):
        for label, (logits, targets) in sets.items():
            values = logits[targets == c, c]
            if len(values):
                ax.hist(values, bins=30, density=True, alpha=0.5, label=f"{label} ({len(values)})")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel(f"logit of {name}", fontsize=7)
        ax.legend(fontsize=6, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


CALIBRATION_COLUMNS = ("ece", "classwise_ece", "mce", "brier", "nll", "accuracy")


def calibration_frame(records: Sequence[dict]) -> pd.DataFrame:
    """One row per run and scaler (``none`` = before scaling): ``method``, ``seed``,
    ``scaler`` and the calibration errors; ``records`` as for :func:`metrics_frame`."""
    rows = []
    for record in records:
        for scaler, values in record["metrics"]["calibration"].items():
            errors = {k: values[k] for k in CALIBRATION_COLUMNS}
            rows.append(
                {
                    "method": record["method"],
                    "seed": int(record["seed"]),
                    "scaler": scaler,
                    **errors,
                }
            )
    return pd.DataFrame(rows)


def calibration_summary(frame: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Mean and sample std over seeds of every calibration error, per method and scaler, in
    the order of ``methods`` and of the scalers in the records."""
    scalers = list(dict.fromkeys(frame["scaler"]))
    grouped = frame.groupby(["method", "scaler"])[list(CALIBRATION_COLUMNS)]
    summary = grouped.agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    order = [(m, s) for m in methods for s in scalers if (m, s) in summary.index]
    return summary.loc[order]


def calibration_markdown(summary: pd.DataFrame, digits: int = 3) -> str:
    """The calibration summary as a Markdown table, one row per method and scaler."""
    head = "| method | scaler | " + " | ".join(CALIBRATION_COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(CALIBRATION_COLUMNS) + 2)]
    for (method, scaler), row in summary.iterrows():
        cells = [_cell(row[f"{c}_mean"], row[f"{c}_std"], digits) for c in CALIBRATION_COLUMNS]
        lines.append(f"| {method} | {scaler} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_reliability(bins: dict[str, dict[str, dict]], title: str, path: str) -> None:
    """Reliability diagrams, one panel per method: the accuracy against the mean confidence of
    each confidence bin, before and after each scaler (pooled over seeds by count)."""
    fig, axes = plt.subplots(1, len(bins), figsize=(2.5 * len(bins) + 0.4, 2.8), squeeze=False)
    for ax, (method, scalers) in zip(axes[0], bins.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for scaler, pooled in scalers.items():
            filled = pooled["count"] > 0
            ax.plot(
                pooled["confidence"][filled],
                pooled["accuracy"][filled],
                marker="o",
                ms=2.5,
                lw=1,
                label=scaler,
            )
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_title(method, fontsize=8)
        ax.set_xlabel("confidence", fontsize=7)
    axes[0][0].set_ylabel("accuracy", fontsize=7)
    axes[0][-1].legend(fontsize=6, frameon=False, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def pool_reliability(reliabilities: Sequence[dict]) -> dict[str, np.ndarray]:
    """Reliability bins of several runs pooled: count-weighted mean confidence and accuracy."""
    counts = np.sum([r["count"] for r in reliabilities], axis=0).astype(float)
    pooled = {"count": counts}
    for key in ("confidence", "accuracy"):
        weighted = [
            np.nan_to_num(np.array(r[key], dtype=float)) * np.array(r["count"])
            for r in reliabilities
        ]
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled[key] = np.sum(weighted, axis=0) / counts
    return pooled


def shift_frame(records: Sequence[dict]) -> pd.DataFrame:
    """One row per run, shift (kind and severity) and estimator: the true and estimated
    performance and the absolute error; ``records`` hold ``method``, ``seed`` and the run's
    ``shift`` (``shift.json``)."""
    rows = []
    for record in records:
        for result in record["shift"]["results"]:
            for estimator, estimate in result["estimates"].items():
                rows.append(
                    {
                        "method": record["method"],
                        "seed": int(record["seed"]),
                        "kind": result["kind"],
                        "severity": result["severity"],
                        "estimator": estimator,
                        "true": result["true"],
                        "estimate": estimate,
                        "abs_error": None
                        if estimate is None or result["true"] is None
                        else abs(estimate - result["true"]),
                    }
                )
    return pd.DataFrame(rows)


def shift_markdown(frame: pd.DataFrame, metric: str, methods: Sequence[str]) -> str:
    """Tables shaped like Li et al.'s Table 1: per method, the mean absolute error (in
    percentage points) ± its std over seeds and severities of each estimator (rows) under each
    shift kind (columns) and all shifts together, plus the true performance."""
    shifted = frame[frame["kind"] != "none"]
    kinds = list(dict.fromkeys(shifted["kind"]))
    lines = []
    for method in methods:
        part = shifted[shifted["method"] == method]
        if part.empty:
            continue
        lines += [
            f"**{method}**: mean absolute error of the estimated test {metric} (points)",
            "",
            "| estimator | " + " | ".join([*kinds, "all"]) + " |",
            "|---|" + "---|" * (len(kinds) + 1),
        ]
        for estimator in dict.fromkeys(part["estimator"]):
            rows = part[part["estimator"] == estimator]
            cells = [
                _cell(
                    100 * rows[rows["kind"] == k]["abs_error"].mean(),
                    100 * rows[rows["kind"] == k]["abs_error"].std(),
                    1,
                )
                for k in kinds
            ]
            cells.append(_cell(100 * rows["abs_error"].mean(), 100 * rows["abs_error"].std(), 1))
            lines.append(f"| {estimator} | " + " | ".join(cells) + " |")
        truth = part.drop_duplicates(["seed", "kind", "severity"])
        cells = [
            _cell(100 * truth[truth["kind"] == k]["true"].mean(), float("nan"), 1) for k in kinds
        ]
        cells.append(_cell(100 * truth["true"].mean(), float("nan"), 1))
        clean = frame[(frame["method"] == method) & (frame["kind"] == "none")]
        clean_true = 100 * clean.drop_duplicates(["seed"])["true"].mean()
        lines += [
            f"| true {metric} (unshifted: {clean_true:.1f}) | " + " | ".join(cells) + " |",
            "",
        ]
    return "\n".join(lines)


# ---- Synthesis (conditional GAN) -------------------------------------------------------------


def plot_sample_grid(
    images: np.ndarray,
    classes: Sequence[str],
    value_range: tuple[float, float],
    title: str,
    path: str,
) -> None:
    """A figure with one row of generated images ``(C · k, channels, H, W)`` per class, ``k``
    per row, in class order (first channel for one or two channels, RGB for three);
    ``value_range`` maps the stored intensities to black and white."""
    lo, hi = value_range
    per_class = len(images) // len(classes)
    images = (np.asarray(images, dtype=np.float32) - lo) / (hi - lo)
    fig, axes = plt.subplots(
        len(classes), per_class, figsize=(per_class * 0.9, len(classes) * 0.95), squeeze=False
    )
    for ax, image in zip(axes.ravel(), images, strict=True):
        rgb = image.shape[0] == 3
        shown = np.moveaxis(image, 0, -1) if rgb else image[0]
        ax.imshow(np.clip(shown, 0, 1), cmap=None if rgb else "gray", vmin=0, vmax=1)
        ax.set_xticks([]), ax.set_yticks([])
    for row, name in enumerate(classes):
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def synthesis_markdown(
    quality: dict,
    train_labels: np.ndarray,
    classes: list[str],
    title: str,
    epochs: int,
    tstr_per_class: int,
) -> str:
    """The quality report of :func:`medimbalance.gan.synthesis_quality` as two Markdown tables."""
    counts = np.bincount(np.asarray(train_labels, np.int64), minlength=len(classes))
    cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        f"# {title}",
        "",
        f"Conditional DCGAN trained for {epochs} epochs on {int(counts.sum())} real images. "
        "FID on the penultimate-layer features of the feature extractor, generated images vs "
        "the real test split (lower is better; n/a: too few test images of the class).",
        "",
        "| class | real training images | FID |",
        "|---|---|---|",
        *(
            f"| {name} | {n} | {cell(quality['fid_per_class'][name])} |"
            for name, n in zip(classes, counts, strict=True)
        ),
        f"| all | {int(counts.sum())} | {cell(quality['fid'])} |",
        "",
        "| classifier | trained on | test accuracy | test balanced accuracy |",
        "|---|---|---|---|",
        f"| train on synthetic (TSTR) | {tstr_per_class} generated images per class | "
        f"{cell(quality['tstr_accuracy'])} | {cell(quality['tstr_balanced_accuracy'])} |",
        "| feature extractor (reference) | the real training images | "
        f"{cell(quality['real_accuracy'])} | {cell(quality['real_balanced_accuracy'])} |",
        "",
    ]
    return "\n".join(lines)


# Axis titles of declared sweep figures (figures.<name>.x).
SWEEP_AXES = {
    "imbalance_factor": "imbalance factor (largest / smallest training class)",
    "training_fraction": "fraction of the training split",
}


def sweep_position(x: str, counts: pd.DataFrame, kept: int, available: int) -> float:
    """Where a profile sits on a sweep figure's x axis: the ``imbalance_factor`` of its kept
    training set (largest over smallest ``kept`` count of ``class_counts.tsv``; positives per
    label for multi-label data) or its ``training_fraction`` (``kept`` of ``available``
    training images)."""
    if x == "imbalance_factor":
        per_class = counts["kept"].to_numpy(dtype=np.float64)
        if per_class.min() <= 0:
            raise ValueError("a class has no training image: the imbalance factor is infinite")
        return float(per_class.max() / per_class.min())
    if x == "training_fraction":
        return kept / available
    raise ValueError(f"unknown sweep axis {x!r}; valid choices: {', '.join(SWEEP_AXES)}")


def sweep_frame(points: Sequence[dict], methods: Sequence[str], profiles: Sequence[str]):
    """One row per method × profile (methods, then profiles, in the given order): ``x``,
    ``n_seeds``, ``mean``, ``std``, ``ci_low``, ``ci_high`` (:func:`medimbalance.tables.summary`)
    of the per-seed ``value`` of ``points`` (dicts with ``method``, ``profile``, ``x``,
    ``value``)."""
    frame = pd.DataFrame(points)
    rows = []
    for method in methods:
        for profile in profiles:
            part = frame[(frame["method"] == method) & (frame["profile"] == profile)]
            if part.empty:
                raise ValueError(f"no values for method {method!r} under profile {profile!r}")
            x = float(part["x"].iloc[0])
            rows.append({"method": method, "profile": profile, "x": x, **summary(part["value"])})
    return pd.DataFrame(rows)


def plot_sweep(frame: pd.DataFrame, spec: dict, png: str, pdf: str, errors: str = "std") -> None:
    """A declared sweep figure: the metric's mean against ``x``, one line per method, error
    bars of one standard deviation (``errors: std``) or the 95 % confidence interval (``ci``),
    methods drawn side by side around each x; written as PNG and as vector PDF."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    groups = list(frame.groupby("method", sort=False))
    span = np.ptp(frame["x"]) or 1.0
    for i, (method, part) in enumerate(groups):
        part = part.sort_values("x")
        if errors == "ci":
            bars = [part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]]
        else:
            bars = part["std"]
        # Methods side by side around each x (1.5 % of the axis apart), so that equal values
        # and their error bars stay visible; the ticks mark the true x.
        offset = i - (len(groups) - 1) / 2
        x = (
            part["x"] * 10 ** (0.006 * offset)
            if spec.get("log_x")
            else part["x"] + 0.015 * span * offset
        )
        ax.errorbar(x, part["mean"], yerr=bars, marker="o", ms=4, capsize=3, label=method)
    if spec.get("log_x"):
        ax.set_xscale("log")
    ticks = np.unique(frame["x"].round(6))
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(SWEEP_AXES[spec["x"]])
    ax.set_ylabel(spec.get("y_label", spec["metric"]))
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    with atomic_write(pdf) as f:
        fig.savefig(f, format="pdf")
    save_figure(fig, png, dpi=150)


# Sorts a table of html_table_page by the clicked column (numbers by their leading value).
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const key = (row) => row.cells[column].textContent.trim();
    const value = (text) => {
      const n = parseFloat(text.replace("< ", ""));
      return isNaN(n) ? text : n;
    };
    const up = th.dataset.order !== "up";
    th.dataset.order = up ? "up" : "down";
    [...body.rows].sort((a, b) => {
      const x = value(key(a)), y = value(key(b));
      return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1);
    }).forEach((row) => body.appendChild(row));
  });
});
"""


def html_table_page(markdown: str, title: str) -> str:
    """A self-contained HTML page of a Markdown pipe table (the first one in ``markdown``) and
    the paragraphs after it, for reading inside the HTML report: columns sort on a click."""
    lines = markdown.strip().splitlines()
    rows = [line for line in lines if line.startswith("|")]
    if len(rows) < 2:
        raise ValueError("no Markdown pipe table in the text")
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    header, body = cells[0], [r for r in cells[1:] if not all(set(c) <= set(":-") for c in r)]
    text = " ".join(line.strip() for line in lines if line.strip() and not line.startswith("|"))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    trs = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body
    )
    style = (
        "body{font-family:sans-serif;font-size:13px;margin:12px}"
        "table{border-collapse:collapse}th,td{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:right;white-space:nowrap}th:first-child,td:first-child{text-align:left}"
        "th{cursor:pointer;background:#f3f3f3}p{max-width:60em}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body><table class='sortable'><thead><tr>{head}</tr>"
        f"</thead><tbody>{trs}</tbody></table>"
        + (f"<p>{html.escape(text)}</p>" if text else "")
        + f"<script>{_SORT_SCRIPT}</script></body></html>\n"
    )
