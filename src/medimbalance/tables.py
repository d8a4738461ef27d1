"""Declared paper-shaped tables: our numbers (mean ± std over seeds) beside the published ones.

A study's ``tables.<name>`` declares rows and columns whose selectors (dataset, profile, method,
test set, metric) combine into cells (:meth:`medimbalance.study.Study.table_cells`); each cell
holds one metric of one method's runs over the seeds. This module turns the per-seed values of
every cell into a long table (:func:`assemble`) — mean, sample std, a 95 % confidence interval,
the published value and our difference from it, whether the two disagree by more than their
combined spread, and a paired test against a reference row over seeds — and renders it as
Markdown, CSV and LaTeX.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

TESTS = {
    "wilcoxon": "paired Wilcoxon signed-rank test",
    "ttest": "paired t-test",
}
COLUMNS = (
    "row",
    "column",
    "n_seeds",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "published_mean",
    "published_std",
    "difference",
    "disagrees",
    "p_value",
    "scale",
    "digits",
)


def metric_value(metrics: dict, name: str) -> float | None:
    """Metric ``name`` of a run's ``metrics.json``: a scalar key (``balanced_accuracy``), one
    class's entry of a per-class metric (``recall[grade_4]``, ``dice[edema]``) or one region's
    of a segmentation metric (``hd95[tumour_core]``); ``None`` when the run has no such
    value."""
    match = re.fullmatch(r"(\w+)\[(.+)\]", name)
    if match is None:
        value = metrics.get(name)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    base, label = match.groups()
    per_class, classes = metrics.get("per_class", {}).get(base), metrics.get("classes", [])
    if per_class is not None and label in classes:
        return per_class[classes.index(label)]
    per_region, regions = metrics.get("per_region", {}).get(base), list(metrics.get("regions", {}))
    if per_region is not None and label in regions:  # a segmentation region (tumour_core)
        return per_region[regions.index(label)]
    return None


def metric_names(metrics: dict) -> list[str]:
    """Every name :func:`metric_value` answers for ``metrics``, for error messages."""
    scalars = [k for k, v in metrics.items() if metric_value(metrics, k) is not None]
    classes = metrics.get("classes", [])
    per_class = [f"{base}[{c}]" for base in metrics.get("per_class", {}) for c in classes]
    regions = metrics.get("regions", {})
    per_region = [f"{base}[{r}]" for base in metrics.get("per_region", {}) for r in regions]
    return sorted(scalars) + per_class + per_region


def run_metric(metrics: dict, name: str, path: str, what: str) -> float:
    """:func:`metric_value`, or a ``ValueError`` naming the file, what asked for it (e.g. a
    table cell) and the metrics the run has."""
    value = metric_value(metrics, name)
    if value is None:
        raise ValueError(
            f"{path} has no value for metric {name!r} ({what}); its metrics are "
            f"{metric_names(metrics)}"
        )
    return float(value)


def summary(values: Sequence[float]) -> dict:
    """Mean, sample std (ddof 1; NaN for one value) and the 95 % t confidence interval."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return {
            "n_seeds": len(x),
            "mean": mean,
            "std": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
        }
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(x) - 1)) * std / math.sqrt(len(x))
    return {
        "n_seeds": len(x),
        "mean": mean,
        "std": std,
        "ci_low": mean - half,
        "ci_high": mean + half,
    }


def paired_p_value(values: Sequence[float], reference: Sequence[float], test: str) -> float:
    """Two-sided p-value of a paired test (``wilcoxon`` or ``ttest``) of one row's per-seed
    values against the reference row's, seed by seed. Identical values give 1."""
    x, y = np.asarray(values, np.float64), np.asarray(reference, np.float64)
    if x.shape != y.shape:
        raise ValueError(
            f"paired test needs one value per seed in both rows, got {x.size}, {y.size}"
        )
    if len(x) < 2:
        return math.nan
    if np.allclose(x, y, rtol=0, atol=1e-15):
        return 1.0
    if test == "wilcoxon":
        return float(stats.wilcoxon(x, y).pvalue)
    if test == "ttest":
        if np.allclose(x - y, (x - y)[0]):  # a constant difference: no spread to test against
            return 0.0
        return float(stats.ttest_rel(x, y).pvalue)
    raise ValueError(f"unknown test {test!r}; valid choices: {', '.join(TESTS)}")


def assemble(spec: dict, cells: Sequence[dict], values: Sequence[Sequence[float]]) -> pd.DataFrame:
    """The long table of one declared table: one row per cell (``cells[i]`` with its per-seed
    ``values[i]``), in row-then-column order, with the columns of ``COLUMNS``."""
    published = spec.get("published", {}).get("values", {})
    reference, test = spec.get("reference"), spec.get("test", "none")
    by_cell = {  # a cell with ``percent`` shows its values x 100, in the paper's unit
        (c["row"], c["column"]): np.asarray(v, np.float64) * (100 if c.get("percent") else 1)
        for c, v in zip(cells, values, strict=True)
    }
    rows = []
    for cell in cells:
        key = (cell["row"], cell["column"])
        row = {"row": cell["row"], "column": cell["column"], **summary(by_cell[key])}
        paper = published.get(cell["row"], {}).get(cell["column"])
        row["published_mean"] = paper[0] if paper else math.nan
        row["published_std"] = paper[1] if paper and len(paper) > 1 else math.nan
        row["difference"] = row["mean"] - row["published_mean"]
        spread = math.hypot(_zero(row["std"]), _zero(row["published_std"]))
        row["disagrees"] = bool(paper) and abs(row["difference"]) > spread
        row["p_value"] = math.nan
        if reference and test != "none" and cell["row"] != reference:
            row["p_value"] = paired_p_value(
                by_cell[key], by_cell[(reference, cell["column"])], test
            )
        row["scale"] = 100 if cell.get("percent") else 1
        row["digits"] = cell.get("digits", spec.get("digits", 3))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def _number(value: float, digits: int) -> str:
    return "–" if math.isnan(value) else f"{value:.{digits}f}"


def _ours(row: pd.Series, digits: int, ci: bool) -> str:
    text = _number(row["mean"], digits)
    if not math.isnan(row["std"]):
        text += f" ± {row['std']:.{digits}f}"
    if ci and not math.isnan(row["ci_low"]):
        text += f" [{row['ci_low']:.{digits}f}, {row['ci_high']:.{digits}f}]"
    return text + (" †" if row["disagrees"] else "")


def _published(row: pd.Series, digits: int) -> str:
    if math.isnan(row["published_mean"]):
        return "–"
    text = _number(row["published_mean"], digits)
    return (
        text if math.isnan(row["published_std"]) else f"{text} ± {row['published_std']:.{digits}f}"
    )


def _p(value: float) -> str:
    if math.isnan(value):
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def wide(frame: pd.DataFrame, spec: dict) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the rendered table: per column ours, and where values are
    published the published value and the difference, and with a test the p-value."""
    ci = spec.get("ci", False)
    testing = spec.get("reference") and spec.get("test", "none") != "none"
    columns = list(dict.fromkeys(frame["column"]))
    with_paper = {
        c for c in columns if frame.loc[frame["column"] == c, "published_mean"].notna().any()
    }
    header = [spec.get("row_header", "")]
    for column in columns:
        header.append(f"{column} (ours)" if column in with_paper else column)
        if column in with_paper:
            header += [f"{column} (published)", f"{column} Δ"]
        if testing:
            header.append(f"{column} p")
    body = []
    for label in dict.fromkeys(frame["row"]):
        line = [str(label)]
        for column in columns:
            row = frame[(frame["row"] == label) & (frame["column"] == column)].iloc[0]
            digits = int(row["digits"])
            line.append(_ours(row, digits, ci))
            if column in with_paper:
                diff = "–" if math.isnan(row["difference"]) else f"{row['difference']:+.{digits}f}"
                line += [_published(row, digits), diff]
            if testing:
                line.append("ref." if label == spec["reference"] else _p(row["p_value"]))
        body.append(line)
    return header, body


def caption(spec: dict, seeds: Sequence[int]) -> str:
    """What the table shows, where its published values come from, and how rows are tested."""
    parts = [spec["caption"].rstrip(".") + "."]
    listed = ", ".join(map(str, seeds))
    if len(seeds) == 1:  # one seed has no spread: say what the number is
        parts.append(f"Ours: one run (seed {listed}), no spread over seeds")
    else:
        parts.append(f"Ours: mean ± sample standard deviation over {len(seeds)} seeds ({listed})")
    if spec.get("ci"):
        parts[-1] += ", with a 95 % t confidence interval in brackets"
    parts[-1] += "."
    source = spec.get("published", {}).get("source")
    if source:
        parts.append(
            f"Published: {source}; Δ = ours − published; † marks a difference larger than the "
            "combined spread (the two standard deviations in quadrature)."
        )
    note = spec.get("published", {}).get("note")
    if note:
        parts.append(note.rstrip(".") + ".")
    if spec.get("reference") and spec.get("test", "none") != "none":
        parts.append(
            f"p: two-sided {TESTS[spec['test']]} of each row against {spec['reference']!r} over "
            "the seeds, column by column."
        )
    return " ".join(parts)


def render_markdown(frame: pd.DataFrame, spec: dict, seeds: Sequence[int]) -> str:
    header, body = wide(frame, spec)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    lines += ["| " + " | ".join(line) + " |" for line in body]
    return "\n".join(lines) + "\n\n" + caption(spec, seeds) + "\n"


def _tex(text: str) -> str:
    for plain, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
    ):
        text = text.replace(plain, escaped)
    return (
        text.replace("±", r"$\pm$")
        .replace("Δ", r"$\Delta$")
        .replace("†", r"$^\dagger$")
        .replace("–", "--")
        .replace("< ", "$<$ ")
    )


def render_latex(frame: pd.DataFrame, spec: dict, seeds: Sequence[int]) -> str:
    """A ``table`` environment with a booktabs ``tabular`` and the caption."""
    header, body = wide(frame, spec)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_tex(caption(spec, seeds))}}}",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(_tex(h) for h in header) + r" \\",
        r"\midrule",
        *(" & ".join(_tex(c) for c in line) + r" \\" for line in body),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
