"""Summaries of per-run outputs over seeds — tidy, one row per method × metric with ``mean``,
``std`` and ``n`` — and the paper-style tables built from them (formats in
:mod:`medimbalance.display`; figures in :mod:`medimbalance.figures`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from . import display
from .metrics import ABSENT_CLASS_POLICY, HEADLINE_METRICS, TASK_SCALARS
from .tables import summary

# The per-class column of each task's table: recall per class, AUROC per label, Dice per
# foreground label (regression has none). A segmentation dataset with named regions shows
# REGION_COLUMNS per region instead (metrics.json keeps the rest).
PER_CLASS_COLUMN = {
    "multiclass": "recall",
    "binary": "recall",
    "multilabel": "auroc",
    "segmentation": "dice",
}
REGION_COLUMNS = ("dice", "sensitivity", "precision", "hd95", "surface_dice")  # those a run has
TTA_SUFFIX = " + flips"  # a method's runs scored with test-time flips (evaluation.tta)
TIDY_COLUMNS = ("metric", "mean", "std", "n")
POINTS = display.MetricFormat("points", digits=1)  # percentage points, one decimal


def metrics_frame(records: Sequence[dict]) -> pd.DataFrame:
    """One row per run: ``method``, ``seed``, the task's scalar metrics and its per-class
    columns (``recall[<class>]``, ``auroc[<label>]`` or ``dice[<label>]``; for segmentation
    with named regions each of :data:`REGION_COLUMNS` per region instead).

    Each record is ``{"method": str, "seed": int, "metrics": <metrics.json contents>}``.
    """
    rows = []
    for record in records:
        m = record["metrics"]
        task = m.get("task", "multiclass")
        row = {"method": record["method"], "seed": int(record["seed"])}
        row.update({name: m[name] for name in TASK_SCALARS[task] if name in m})
        column = PER_CLASS_COLUMN.get(task)
        if m.get("per_region"):
            regions = list(m["regions"])
            for base in (b for b in REGION_COLUMNS if b in m["per_region"]):
                row.update(
                    {f"{base}[{r}]": v for r, v in zip(regions, m["per_region"][base], strict=True)}
                )
        elif column:
            pairs = zip(m["classes"], m["per_class"][column], strict=True)
            skip = 1 if task == "segmentation" else 0  # the background
            row.update({f"{column}[{c}]": v for c, v in list(pairs)[skip:]})
        rows.append(row)
    return pd.DataFrame(rows).astype({"seed": int})


def flagged_metrics(records: Sequence[dict]) -> dict[tuple[str, str], list[str]]:
    """``(method, metric)`` → the classes (sorted) for which the metric's absent-class
    convention (:data:`ABSENT_CLASS_POLICY`) applied in at least one of the method's runs;
    ``records`` as for :func:`metrics_frame`."""
    flagged: dict[tuple[str, str], set[str]] = {}
    for record in records:
        for metric, classes in record["metrics"].get("flagged", {}).items():
            flagged.setdefault((record["method"], metric), set()).update(classes)
    return {key: sorted(classes) for key, classes in flagged.items()}


def absent_classes(records: Sequence[dict]) -> dict[str, dict[str, list[str]]]:
    """Method → the classes absent from the test targets (``targets``) and the classes never
    predicted (``predictions``) in at least one of its runs (only methods with any)."""
    found: dict[str, dict[str, set[str]]] = {}
    for record in records:
        absent = record["metrics"].get("absent_classes", {})
        for kind in ("targets", "predictions"):
            if absent.get(kind):
                entry = found.setdefault(record["method"], {"targets": set(), "predictions": set()})
                entry[kind].update(absent[kind])
    return {m: {k: sorted(v) for k, v in kinds.items()} for m, kinds in found.items()}


def flag_note(
    flagged: dict[tuple[str, str], list[str]],
    metrics: Sequence[str],
    absent: dict[str, dict[str, list[str]]] | None = None,
) -> str:
    """The caption sentence that explains the flagged cells of ``metrics`` ('' if none): with
    ``absent`` (:func:`absent_classes`), which method lacked which classes in its test targets
    or its predictions."""
    shown = {metric for _, metric in flagged if metric in metrics}
    if not shown:
        return ""
    methods = sorted({method for method, m in flagged if m in shown})
    rules = "; ".join(
        f"{display.metric_format(m).label} is {ABSENT_CLASS_POLICY[m]}"
        for m in metrics
        if m in shown
    )
    if absent:
        where = []
        for method in methods:
            kinds = absent.get(method, {})
            parts = [
                f"{label} {', '.join(kinds[kind])}"
                for kind, label in (
                    ("targets", "absent from the test targets:"),
                    ("predictions", "never predicted:"),
                )
                if kinds.get(kind)
            ]
            where.append(f"{method} ({'; '.join(parts)})" if parts else method)
        return f"{display.FLAG} In at least one seed of {', '.join(where)}: {rules}."
    classes = sorted({c for (_, m), cs in flagged.items() if m in shown for c in cs})
    return (
        f"{display.FLAG} In at least one seed, class(es) {', '.join(classes)} were absent from "
        f"the test targets or never predicted: {rules}."
    )


def tidy_summary(
    frame: pd.DataFrame, methods: Sequence[str], by: Sequence[str] = ()
) -> pd.DataFrame:
    """Mean, sample standard deviation (ddof = 1; NaN for one seed) and the number of seeds
    with a value, of every metric column of ``frame`` (one row per run: ``method``, ``seed``,
    the ``by`` columns and the metrics): one row per method (in the order of ``methods``) ×
    ``by`` value (in order of appearance) × metric (in column order), with the columns
    ``method``, ``by``, ``metric``, ``mean``, ``std``, ``n``."""
    missing = [m for m in methods if m not in set(frame["method"])]
    if missing:
        raise ValueError(f"no results for method(s) {missing}")
    keys = ["method", *by]
    metrics = [c for c in frame.columns if c not in (*keys, "seed")]
    values = frame[frame["method"].isin(methods)][keys + metrics]
    values = values.astype({m: np.float64 for m in metrics})
    long = values.melt(id_vars=keys, var_name="metric", value_name="value")
    long["metric"] = pd.Categorical(long["metric"], categories=metrics)
    long["method"] = pd.Categorical(long["method"], categories=list(methods))
    for b in by:
        long[b] = pd.Categorical(long[b], categories=list(dict.fromkeys(frame[b])))
    grouped = long.groupby([*keys, "metric"], observed=True, sort=True)["value"]
    tidy = pd.concat(
        [
            grouped.mean().rename("mean"),
            grouped.std(ddof=1).rename("std"),
            grouped.count().rename("n"),
        ],
        axis=1,
    ).reset_index()
    return tidy.astype({k: str for k in [*keys, "metric"]})[[*keys, *TIDY_COLUMNS]]


def _size(n_test: Sequence[int], unit: str) -> str:
    return f"n = {' or '.join(map(str, sorted({int(n) for n in n_test})))} {unit}"


def results_markdown(
    tidy: pd.DataFrame,
    task: str,
    dataset: str,
    profile: str,
    seeds: Sequence[int],
    n_test: Sequence[int],
    guess_ranges: Sequence[Sequence[float]] = (),
    flagged: dict[tuple[str, str], list[str]] | None = None,
    absent: dict[str, dict[str, list[str]]] | None = None,
) -> str:
    """The results table of one dataset × profile (:func:`tidy_summary` of its runs) with
    its caption: the split and its size (``n_test``: the test images of each run), what a
    cell is, how the best value is marked, (regression, ``guess_ranges`` of the runs) the
    range the uniform random guess draws from, and the cells in which an absent class's
    convention applied (``flagged``, from :func:`flagged_metrics`; ``absent``, from
    :func:`absent_classes`, says which classes each method lacked)."""
    flagged = flagged or {}
    metrics = list(dict.fromkeys(tidy["metric"]))
    parts = [
        f"Test split of {dataset} ({_size(n_test, 'images')}); models trained on its "
        f"{profile} profile.",
        display.spread_note(seeds),
        display.BEST_NOTE,
    ]
    if any(m in display.BASELINES for m in metrics):
        ranges = " or ".join(
            f"[{lo:.3g}, {hi:.3g}]" for lo, hi in sorted(set(map(tuple, guess_ranges)))
        )
        parts.append(
            f"The uniform random guess draws each prediction uniformly over {ranges or 'a range'}"
            ": a reference, not a method."
        )
    if any(str(m).endswith(TTA_SUFFIX) for m in tidy["method"]):
        parts.append(
            f"Rows ending in '{TTA_SUFFIX.strip()}': the same runs scored with their softmax "
            "averaged over every flip of the spatial axes (test-time augmentation)."
        )
    parts.append(flag_note(flagged, metrics, absent))
    caption = " ".join(p for p in parts if p)
    return display.results_table(tidy, metrics, HEADLINE_METRICS[task][0], caption, set(flagged))


def cross_markdown(
    tidy: pd.DataFrame,
    test_sets: Sequence[str],
    dataset: str,
    profile: str,
    seeds,
    flagged: dict[str, dict[tuple[str, str], list[str]]] | None = None,
) -> str:
    """The cross-evaluation table (``tidy`` with a ``test_set`` column): one column per
    headline metric × test set, the dataset's own test split first, with its caption;
    ``flagged`` per test set as :func:`flagged_metrics` gives it."""
    tidy = tidy.assign(column=tidy["metric"] + " @ " + tidy["test_set"])
    metrics = list(dict.fromkeys(tidy["metric"]))
    columns = [(f"{m} @ {t}", m, f" on {t}") for t in test_sets for m in metrics]
    flagged = flagged or {}
    marks = {(method, f"{m} @ {t}") for t, cells in flagged.items() for method, m in cells}
    merged: dict[tuple[str, str], list[str]] = {}
    for cells in flagged.values():
        for key, classes in cells.items():
            merged[key] = sorted({*merged.get(key, []), *classes})
    header, body = display.render(tidy, ["method"], columns, marks)
    caption = " ".join(
        [
            f"Models trained on the {profile} profile of {dataset}, tested on its own test "
            f"split and on the test splits of {', '.join(test_sets[1:])}.",
            display.spread_note(seeds),
            display.BEST_NOTE,
            flag_note(merged, metrics),
        ]
    ).strip()
    return display.markdown(header, body, caption)


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


def calibration_markdown(
    tidy: pd.DataFrame, dataset: str, profile: str, seeds: Sequence[int], bins: int
) -> str:
    """The calibration table (:func:`tidy_summary` of :func:`calibration_frame` by
    ``scaler``), one row per method and scaler, with its caption."""
    columns = [(m, m, "") for m in CALIBRATION_COLUMNS]
    tidy = tidy.rename(columns={"metric": "column"})
    header, body = display.render(tidy, ["method", "scaler"], columns)
    caption = " ".join(
        [
            f"Calibration on the test split of {dataset} of the models trained on its "
            f"{profile} profile, before post-hoc scaling (scaler none) and after each scaler "
            f"fitted on the validation split; ECE, classwise ECE and MCE over {bins} "
            "equal-width confidence bins.",
            display.spread_note(seeds),
            display.BEST_NOTE,
        ]
    )
    return display.markdown(header, body, caption, labels=2)


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
                        "abs_error": np.nan  # an undefined estimator (NORCAL without counts)
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
                POINTS.cell(
                    100 * rows[rows["kind"] == k]["abs_error"].mean(),
                    100 * rows[rows["kind"] == k]["abs_error"].std(),
                )
                for k in kinds
            ]
            cells.append(POINTS.cell(100 * rows["abs_error"].mean(), 100 * rows["abs_error"].std()))
            lines.append(f"| {estimator} | " + " | ".join(cells) + " |")
        truth = part.drop_duplicates(["seed", "kind", "severity"])
        cells = [
            POINTS.cell(100 * truth[truth["kind"] == k]["true"].mean(), float("nan")) for k in kinds
        ]
        cells.append(POINTS.cell(100 * truth["true"].mean(), float("nan")))
        clean = frame[(frame["method"] == method) & (frame["kind"] == "none")]
        clean_true = 100 * clean.drop_duplicates(["seed"])["true"].mean()
        lines += [
            f"| true {metric} (unshifted: {clean_true:.1f}) | " + " | ".join(cells) + " |",
            "",
        ]
    return "\n".join(lines)


# ---- Synthesis (conditional GAN) -------------------------------------------------------------


def synthesis_markdown(
    quality: dict,
    train_labels: np.ndarray,
    classes: list[str],
    title: str,
    epochs: int,
    tstr_per_class: int,
    model: str = "Conditional DCGAN",
) -> str:
    """The quality report of :func:`medimbalance.gan.synthesis_quality` as two Markdown tables
    (``model`` names the generative model in its first sentence)."""
    counts = np.bincount(np.asarray(train_labels, np.int64), minlength=len(classes))
    cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [
        f"# {title}",
        "",
        f"{model} trained for {epochs} epochs on {int(counts.sum())} real images. "
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


def pair_synthesis_markdown(
    quality: dict, train_images: int, classes: list[str], title: str, epochs: int, model: str
) -> str:
    """The quality report of :func:`medimbalance.diffusion.pair_quality` (image–mask pairs of
    a segmentation dataset) as two Markdown tables."""
    cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    pair = lambda ms: f"{ms[0]:.3f} ± {ms[1]:.3f}"  # noqa: E731
    lines = [
        f"# {title}",
        "",
        f"{model} trained for {epochs} epochs on {train_images} real image–mask pairs. Pixel "
        "intensity of each label, mean ± standard deviation, in the real test images and in "
        "images generated for the same test masks (a generated image that follows its mask has "
        "the real contrasts).",
        "",
        "| label | channel | real | generated |",
        "|---|---|---|---|",
        *(
            f"| {name} | {ch + 1} | {pair(values['real'])} | {pair(values['generated'])} |"
            for name, per_channel in quality["intensity"].items()
            for ch, values in enumerate(per_channel)
        ),
        "",
        f"Test Dice of the same segmentation network trained on {quality['pairs']} generated "
        "pairs (train on synthetic, TSTR: new masks drawn from the training masks) and on the "
        "real training pairs (reference).",
        "",
        "| label | trained on generated pairs (TSTR) | trained on real pairs |",
        "|---|---|---|",
        *(
            f"| {name} | {cell(quality['tstr_dice'][name])} | {cell(quality['real_dice'][name])} |"
            for name in classes[1:]
        ),
        "",
    ]
    return "\n".join(lines)


def findings_synthesis_markdown(
    quality: dict,
    train_findings: np.ndarray,
    classes: list[str],
    title: str,
    epochs: int,
    tstr_per_class: int,
    model: str,
) -> str:
    """The quality report of :func:`medimbalance.diffusion.findings_quality` (a
    findings-conditioned model of multi-label data) as two Markdown tables."""
    counts = np.asarray(train_findings).astype(np.int64).sum(0)
    cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    tstr, real = quality["tstr_auroc_per_class"], quality["real_auroc_per_class"]
    lines = [
        f"# {title}",
        "",
        f"{model} trained for {epochs} epochs on {len(train_findings)} real images. FID on the "
        "penultimate-layer features of the feature extractor, the real test images with the "
        "finding vs images generated for their findings vectors (lower is better; n/a: too few "
        "test images with the finding). Test AUROC of a classifier trained on "
        f"{quality['tstr_images']} generated images ({tstr_per_class} per finding and for no "
        "finding, train on synthetic, TSTR) and of the feature extractor, trained on the real "
        "images (reference; n/a: no test image with the finding).",
        "",
        "| finding | real training images with it | FID | AUROC, TSTR | AUROC, real (reference) |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {n} | {cell(quality['fid_per_class'][name])} | {cell(tstr[name])} | "
            f"{cell(real[name])} |"
            for name, n in zip(classes, counts, strict=True)
        ),
        f"| all (macro AUROC) | {len(train_findings)} images | {cell(quality['fid'])} | "
        f"{cell(quality['tstr_auroc'])} | {cell(quality['real_auroc'])} |",
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
