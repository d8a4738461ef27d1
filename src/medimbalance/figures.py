"""The workflow's figures, drawn to be read at the size the HTML report shows them: panels in
grids of at most :data:`PER_ROW` per row, a title that never overlaps them (constrained
layout), labels on every axis, counts printed where bars differ by orders of magnitude.

Every function writes one PNG atomically (:func:`save_figure`); :func:`plot_sweep` also a PDF.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from .data.io import atomic_write
from .reporting import SWEEP_AXES

PER_ROW = 4  # panels per row of a grid figure

# The x axis of a class-distribution figure per task, and what its bars count.
DISTRIBUTION_AXES = {
    "multiclass": ("class", "training images"),
    "binary": ("class", "training images"),
    "multilabel": ("finding", "training images with the finding"),
    "segmentation": ("label", "share of training voxels (%)"),
    "regression": ("target value (bin)", "training images"),
}


def save_figure(fig, path: str, dpi: int) -> None:
    """Write a figure as PNG atomically (a failed job leaves no half-drawn file) and close it."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=dpi)
    plt.close(fig)


def panel_grid(n: int, width: float, height: float, per_row: int = PER_ROW):
    """A figure of ``n`` panels of ``width`` × ``height`` inches, at most ``per_row`` per row
    (the unused places of the last row removed), and its axes in reading order."""
    cols = min(n, per_row)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(width * cols, height * rows + 0.4), squeeze=False, layout="constrained"
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def plot_class_distribution(
    counts: pd.DataFrame, title: str, path: str, task: str = "multiclass"
) -> None:
    """Bars per class of each set of ``counts`` (columns ``class`` and one per set, e.g.
    ``available`` and ``kept``) on a log axis with the count printed on each bar, so that a
    class of 2 images shows beside one of 2,000. Segmentation (``task``) shows instead the
    share of voxels per label when ``counts`` has ``<set>_voxels`` columns."""
    xlabel, ylabel = DISTRIBUTION_AXES[task]
    voxels = [c for c in counts.columns if c.endswith("_voxels")]
    if task == "segmentation" and voxels:
        values = counts[voxels].astype(float)
        values = 100 * values / values.sum(axis=0).replace(0, np.nan)
        values.columns = [c[: -len("_voxels")] for c in voxels]
        label = lambda v: f"{v:.2g}"  # noqa: E731
    else:
        if task == "segmentation":
            ylabel = "training images containing the label"
        values = counts[[c for c in counts.columns if c != "class" and c not in voxels]]
        label = lambda v: f"{v:,.0f}"  # noqa: E731
    x = np.arange(len(counts))
    width = 0.8 / values.shape[1]
    fig, ax = plt.subplots(figsize=(min(0.6 * len(counts) + 3.0, 10.0), 3.6), layout="constrained")
    positive = values.to_numpy(dtype=float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    bottom = 0.5 * positive.min() if positive.size else 0.5
    for i, name in enumerate(values.columns):
        heights = values[name].to_numpy(dtype=float)
        where = x + (i - (values.shape[1] - 1) / 2) * width
        bars = ax.bar(where, np.nan_to_num(heights), width, label=name)
        ax.bar_label(bars, [label(v) if v > 0 else "" for v in heights], fontsize=6, padding=1)
        for at in where[~(heights > 0)]:  # an empty class: its 0 printed on the axis
            ax.text(at, bottom * 1.1, "0", ha="center", va="bottom", fontsize=6)
    ax.set_yscale("log")
    ax.set_ylim(bottom=bottom, top=(positive.max() if positive.size else 1) * 2.5)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    names = [str(c) for c in counts["class"]]
    slanted = len(names) > 4 or max(map(len, names)) > 6  # long names would overlap
    ax.set_xticks(x, names, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel}, log scale")
    ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_figure(fig, path, dpi=120)


def plot_confusion_matrices(
    matrices: dict[str, np.ndarray], class_names: Sequence[str], title: str, path: str
) -> None:
    """One row-normalised confusion matrix (true × predicted) per method, in a grid, with one
    colour bar for all."""
    size = max(2.6, 0.45 * len(class_names) + 1.2)
    fig, axes = panel_grid(len(matrices), size, size)
    ticks = np.arange(len(class_names))
    for ax, (method, cm) in zip(axes, matrices.items(), strict=True):
        cm = np.asarray(cm, dtype=float)
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
        for (i, j), value in np.ndenumerate(rates):
            color = "white" if value > 0.5 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color=color)
        ax.set_xticks(ticks, class_names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(ticks, class_names, fontsize=7)
        ax.set_xlabel("predicted class", fontsize=8)
        ax.set_ylabel("true class", fontsize=8)
        ax.set_title(method, fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label="share of the true class")
    fig.suptitle(title, fontsize=10)
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
    """Per class ``c``, the histogram (as a density) of the logit ``z_c`` of the samples
    (images or voxels) whose true class is ``c``, for each named set (e.g. training vs test):
    under imbalance, the minority classes' test logits move towards the decision boundary
    (Li et al.)."""
    fig, axes = panel_grid(len(class_names), 2.8, 2.4)
    for c, (ax, name) in enumerate(zip(axes, class_names, strict=True)):
        for label, (logits, targets) in sets.items():
            values = logits[targets == c, c]
            if len(values):
                ax.hist(
                    values, bins=30, density=True, alpha=0.5, label=f"{label} (n = {len(values)})"
                )
        ax.set_title(name, fontsize=8)
        ax.set_xlabel(f"logit of {name}", fontsize=7)
        ax.set_ylabel("density", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6, frameon=False)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=110)


def plot_logit_histogram_counts(
    runs: dict[str, dict[str, np.ndarray]],
    class_names: Sequence[str],
    title: str,
    path: str,
) -> None:
    """Per foreground class ``c``, the density of the logit ``z_c`` over the voxels of true
    class ``c`` for each method (a colour), on its training images (dashed) and on the test
    split (solid), from binned counts (``runs``: method → ``edges`` ``(B + 1,)``,
    ``training`` and ``test`` ``(C, B)``, summed over seeds). Li et al.'s (2021) overfitting
    under imbalance shows as the test curve of a rare class sitting left of the training one."""
    fig, axes = panel_grid(len(class_names) - 1, 3.0, 2.5)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, ax in enumerate(axes, start=1):
        for k, (method, run) in enumerate(runs.items()):
            edges = np.asarray(run["edges"], np.float64)
            centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
            for kind, style in (("training", "--"), ("test", "-")):
                counts = np.asarray(run[kind], np.float64)[c]
                if counts.sum() == 0:
                    continue
                ax.plot(
                    centres,
                    counts / (counts.sum() * width),
                    style,
                    color=colours[k % len(colours)],
                    lw=1,
                    label=f"{method}, {kind}",
                )
        filled = [
            np.flatnonzero(np.asarray(run[kind])[c])
            for run in runs.values()
            for kind in ("training", "test")
        ]
        filled = np.concatenate(filled) if filled else np.zeros(0, int)
        if len(filled):  # the range the logits reach, one bin either side
            edges = np.asarray(next(iter(runs.values()))["edges"], np.float64)
            ax.set_xlim(
                edges[max(filled.min() - 1, 0)], edges[min(filled.max() + 2, len(edges) - 1)]
            )
        ax.set_title(class_names[c], fontsize=8)
        ax.set_xlabel(f"logit of {class_names[c]}", fontsize=7)
        ax.set_ylabel("density", fontsize=7)
        ax.tick_params(labelsize=6)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=6, frameon=False, loc="outside lower center", ncol=2)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=120)


def plot_reliability(bins: dict[str, dict[str, dict]], title: str, path: str) -> None:
    """Reliability diagrams in a grid, one panel per method: the accuracy against the mean
    confidence of each equal-width confidence bin, before and after each scaler (pooled over
    seeds by count; ``bins``: method → scaler → ``count``, ``confidence``, ``accuracy``), over
    grey bars of the number of test images in each bin before scaling (right axis, log)."""
    fig, axes = panel_grid(len(bins), 2.9, 2.7)
    for ax, (method, scalers) in zip(axes, bins.items(), strict=True):
        first = next(iter(scalers.values()))
        n_bins = len(first["count"])
        counts = ax.twinx()
        counts.bar((np.arange(n_bins) + 0.5) / n_bins, first["count"], 1 / n_bins, color="0.85")
        counts.set_yscale("log")
        counts.set_ylabel("test images per bin (unscaled)", fontsize=7, color="0.4")
        counts.tick_params(labelsize=6, colors="0.4")
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for scaler, pooled in scalers.items():
            filled = np.asarray(pooled["count"]) > 0
            ax.plot(
                np.asarray(pooled["confidence"])[filled],
                np.asarray(pooled["accuracy"])[filled],
                marker="o",
                ms=2.5,
                lw=1,
                label=scaler,
            )
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_title(method, fontsize=8)
        ax.set_xlabel("confidence", fontsize=7)
        ax.set_ylabel("accuracy", fontsize=7)
        ax.tick_params(labelsize=6)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=110)


def plot_sample_grid(
    images: np.ndarray,
    classes: Sequence[str],
    value_range: tuple[float, float],
    title: str,
    path: str,
    real: Sequence[np.ndarray] | None = None,
) -> None:
    """Per class a row of real training images (``real[c]``: ``(k_c, channels, H, W)``, up to
    the width of the widest) beside its generated ones (``images``: ``(C · k, channels, H, W)``
    in class order); first channel for one or two channels, RGB for three; ``value_range``
    maps the stored intensities to black and white."""
    lo, hi = value_range
    per_class = len(images) // len(classes)
    n_real = max((len(r) for r in real), default=0) if real is not None else 0
    cols = n_real + per_class + (1 if n_real else 0)  # a narrow spacer between the two
    ratios = [1.0] * n_real + ([0.25] if n_real else []) + [1.0] * per_class
    fig, axes = plt.subplots(
        len(classes),
        cols,
        figsize=(sum(ratios) * 0.8 + 1.2, len(classes) * 0.85 + 0.6),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": ratios},
    )

    def show(ax, image):
        image = (np.asarray(image, dtype=np.float32) - lo) / (hi - lo)
        rgb = image.shape[0] == 3
        shown = np.moveaxis(image, 0, -1) if rgb else image[0]
        ax.imshow(np.clip(shown, 0, 1), cmap=None if rgb else "gray", vmin=0, vmax=1)

    for row, name in enumerate(classes):
        line = axes[row]
        for ax in line:
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        for k in range(n_real):
            if k < len(real[row]):
                show(line[k], real[row][k])
        generated = images[row * per_class : (row + 1) * per_class]
        for k, image in enumerate(generated):
            show(line[cols - per_class + k], image)
        line[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if n_real:
        axes[0, 0].set_title("real", fontsize=8, loc="left")
        axes[0, n_real + 1].set_title("generated", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=100)


def plot_pair_grid(
    rows: Sequence[tuple[str, np.ndarray, np.ndarray]],
    classes: Sequence[str],
    value_range: tuple[float, float],
    title: str,
    path: str,
) -> None:
    """Image–mask pairs, one row per ``(name, images (k, C, H, W), masks (k, H, W))`` (e.g.
    real training pairs, then generated ones): each image's first channel in grey with the
    outline of every foreground label of its mask in that label's colour."""
    lo, hi = value_range
    cols = max(len(images) for _, images, _ in rows)
    fig, axes = plt.subplots(
        len(rows),
        cols,
        figsize=(cols * 1.1 + 1.2, len(rows) * 1.15 + 0.9),
        squeeze=False,
        layout="constrained",
    )
    colours = plt.get_cmap("tab10").colors
    for line, (name, images, masks) in zip(axes, rows, strict=True):
        for ax in line:
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
        for ax, image, mask in zip(line, images, masks, strict=False):
            shown = (np.asarray(image[0], dtype=np.float32) - lo) / (hi - lo)
            ax.imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1)
            for c in range(1, len(classes)):
                if (mask == c).any():
                    colour = colours[(c - 1) % len(colours)]
                    ax.contour(mask == c, levels=[0.5], colors=[colour], linewidths=0.6)
        line[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    handles = [
        matplotlib.lines.Line2D([], [], color=colours[(c - 1) % len(colours)], label=name)
        for c, name in enumerate(classes)
        if c
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=100)


def plot_sweep(frame: pd.DataFrame, spec: dict, png: str, pdf: str, errors: str = "std") -> None:
    """A declared sweep figure: the metric's mean against ``x``, one line per method, error
    bars of one standard deviation (``errors: std``) or the 95 % confidence interval (``ci``),
    methods drawn side by side around each x; written as PNG and as vector PDF."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
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
    with atomic_write(pdf) as f:
        fig.savefig(f, format="pdf")
    save_figure(fig, png, dpi=150)
