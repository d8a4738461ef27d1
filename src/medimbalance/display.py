"""How results are shown in tables: a display name, unit, scale and number of decimals per
metric, which direction is better, and paper-style Markdown and HTML tables built from tidy
summaries (one row per method × metric with ``mean``, ``std`` and ``n``).

Conventions of every table (results, cross-evaluation, calibration):

- the header names the metric and its unit (``Balanced accuracy (%)``, ``HD95 (mm)``);
  rates that papers report in percent (accuracy, balanced accuracy, macro-F1, recall, G-mean,
  calibration errors) are shown × 100 to one decimal, scores on other scales (AUROC, MCC,
  Dice, MSE) to three;
- a cell is ``mean ± std`` over seeds, or the mean alone when one seed gives no spread (the
  caption says which), ``–`` where the runs have no value;
- the best value of each column among the methods is in bold (highest, or lowest for errors
  and distances, or closest to zero for a bias), ties at the shown precision all bold;
- a reference that does not depend on the method (the uniform random guess of regression)
  is its own row, not a constant column.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class MetricFormat:
    """How one metric is shown: ``label (unit)``, values × ``scale`` to ``digits`` decimals;
    ``better`` is ``higher``, ``lower``, ``zero`` (closest to zero) or ``none`` (a reference
    value, never marked best)."""

    label: str
    unit: str = ""
    scale: float = 1.0
    digits: int = 3
    better: str = "higher"

    @property
    def header(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def cell(self, mean: float, std: float) -> str:
        if _missing(mean):
            return "–"
        text = f"{mean * self.scale:.{self.digits}f}"
        return text if _missing(std) else f"{text} ± {std * self.scale:.{self.digits}f}"

    def key(self, mean: float) -> float:
        """The mean as shown, oriented so that larger is better (NaN when missing)."""
        if _missing(mean) or self.better == "none":
            return math.nan
        shown = round(mean * self.scale, self.digits)
        return {"higher": shown, "lower": -shown, "zero": -abs(shown)}[self.better]


PERCENT = {"unit": "%", "scale": 100.0, "digits": 1}
FORMATS = {
    # classification
    "accuracy": MetricFormat("Accuracy", **PERCENT),
    "balanced_accuracy": MetricFormat("Balanced accuracy", **PERCENT),
    "macro_f1": MetricFormat("Macro-F1", **PERCENT),
    "auroc": MetricFormat("AUROC"),
    "mcc": MetricFormat("MCC"),
    "g_mean": MetricFormat("G-mean", **PERCENT),
    "recall": MetricFormat("Recall", **PERCENT),
    "many_shot_accuracy": MetricFormat("Many-shot accuracy", **PERCENT),
    "medium_shot_accuracy": MetricFormat("Medium-shot accuracy", **PERCENT),
    "few_shot_accuracy": MetricFormat("Few-shot accuracy", **PERCENT),
    "top5_accuracy": MetricFormat("Top-5 accuracy", **PERCENT),
    # multi-label
    "average_precision": MetricFormat("AP"),
    "micro_auroc": MetricFormat("Micro-AUROC"),
    "micro_average_precision": MetricFormat("Micro-AP"),
    # segmentation (distances in mm from each case's voxel spacing; 1 mm per pixel for files
    # whose header has no spacing, such as PNG)
    "dice": MetricFormat("Dice"),
    "sensitivity": MetricFormat("Sensitivity"),
    "precision": MetricFormat("Precision"),
    "hd95": MetricFormat("HD95", unit="mm", digits=1, better="lower"),
    "surface_dice": MetricFormat("Surface Dice"),
    # regression (errors in the target's unit)
    "mse": MetricFormat("MSE", better="lower"),
    "mae": MetricFormat("MAE", better="lower"),
    "percentage_error": MetricFormat("Percentage loss", unit="%", digits=1, better="lower"),
    "bias": MetricFormat("Bias", unit="%", digits=1, better="zero"),
    "r2": MetricFormat("R²"),
    "mae_many": MetricFormat("MAE many-shot", better="lower"),
    "mae_medium": MetricFormat("MAE medium-shot", better="lower"),
    "mae_few": MetricFormat("MAE few-shot", better="lower"),
    "uniform_guess_percentage_error": MetricFormat(
        "Percentage loss of a uniform guess", unit="%", digits=1, better="none"
    ),
    # calibration
    "ece": MetricFormat("ECE", better="lower", **PERCENT),
    "classwise_ece": MetricFormat("Classwise ECE", better="lower", **PERCENT),
    "mce": MetricFormat("MCE", better="lower", **PERCENT),
    "brier": MetricFormat("Brier", better="lower"),
    "nll": MetricFormat("NLL", better="lower"),
}
# Metrics that describe a reference, not the method: shown as a row of their own (label) in
# the column of the metric they are a value of, when they are the same for every method.
BASELINES = {"uniform_guess_percentage_error": ("uniform random guess", "percentage_error")}


def metric_format(name: str) -> MetricFormat:
    """The format of ``name``: a scalar metric or a per-class one (``recall[grade_4]`` →
    ``Recall grade_4 (%)``); ``ValueError`` for a metric no table knows how to show."""
    match = re.fullmatch(r"(\w+)\[(.+)\]", name)
    base, label = match.groups() if match else (name, None)
    if base not in FORMATS:
        raise ValueError(f"no display format for metric {name!r}; known: {', '.join(FORMATS)}")
    fmt = FORMATS[base]
    if label is None:
        return fmt
    return MetricFormat(f"{fmt.label} {label}", fmt.unit, fmt.scale, fmt.digits, fmt.better)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def ordered_metrics(metrics: Sequence[str], primary: str) -> list[str]:
    """``metrics`` with ``primary`` first, the others in their order."""
    return [primary, *(m for m in metrics if m != primary)] if primary in metrics else list(metrics)


def spread_note(seeds: Sequence[int]) -> str:
    """What a cell is, for a caption: the same wording with one seed as with several."""
    listed = ", ".join(map(str, seeds))
    if len(seeds) == 1:
        return f"One run (seed {listed}): no spread over seeds."
    return f"Mean ± sample standard deviation over {len(seeds)} seeds ({listed})."


BEST_NOTE = (
    "Bold: the best value of each column (highest; lowest for errors and distances; closest "
    "to zero for the bias)."
)


FLAG = "†"  # a cell in which a metric's convention for an absent class applied


def render(
    tidy: pd.DataFrame,
    row_keys: Sequence[str],
    columns: Sequence[tuple[str, str, str]],
    flagged: frozenset | set = frozenset(),
) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a table from a tidy frame (``row_keys`` columns, ``column``,
    ``mean``, ``std`` and optionally ``reference``: rows kept out of the best-value marking).

    ``columns`` lists ``(column, metric, suffix)``: the tidy ``column`` value, the metric
    whose format it takes, and text after the header (e.g. `` on lesions``). Cells whose
    ``(*row, column)`` is in ``flagged`` end with :data:`FLAG`."""
    rows = list(dict.fromkeys(tuple(r) for r in tidy[list(row_keys)].itertuples(index=False)))
    indexed = tidy.set_index([*row_keys, "column"])
    reference = set()
    if "reference" in tidy:
        reference = {
            tuple(r[:-1]) for r in tidy[[*row_keys, "reference"]].itertuples(index=False) if r[-1]
        }
    header = list(row_keys) + [metric_format(m).header + suffix for _, m, suffix in columns]
    body = [list(map(str, row)) for row in rows]
    for column, metric, _ in columns:
        fmt = metric_format(metric)
        values = [
            indexed.loc[(*row, column)] if (*row, column) in indexed.index else None for row in rows
        ]
        keys = [
            math.nan if v is None or row in reference else fmt.key(v["mean"])
            for row, v in zip(rows, values, strict=True)
        ]
        scored = [k for k in keys if not math.isnan(k)]
        best = max(scored) if len(scored) > 1 else math.nan
        for row, line, value, key in zip(rows, body, values, keys, strict=True):
            text = "–" if value is None else fmt.cell(value["mean"], value["std"])
            text = f"**{text}**" if key == best else text
            line.append(text + FLAG if (*row, column) in flagged and value is not None else text)
    return header, body


def markdown(
    header: Sequence[str], body: Sequence[Sequence[str]], caption: str = "", labels: int = 1
) -> str:
    """A Markdown pipe table (the first ``labels`` columns left-aligned, numbers
    right-aligned) and its caption paragraph."""
    align = [":---"] * labels + ["---:"] * (len(header) - labels)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(line) + " |" for line in body]
    return "\n".join(lines) + ("\n\n" + caption if caption else "") + "\n"


def results_table(
    tidy: pd.DataFrame,
    metrics: Sequence[str],
    primary: str,
    caption: str,
    flagged: frozenset | set = frozenset(),
) -> str:
    """The Markdown results table of one dataset × profile from :func:`reporting.tidy_summary`
    (``method``, ``metric``, ``mean``, ``std``, ``n``): one row per method, metrics with the
    ``primary`` first, a reference metric (:data:`BASELINES`) as its own row when it is the
    same for every method, and ``caption`` below; ``flagged`` ``(method, metric)`` cells end
    with :data:`FLAG`. A metric no method has a value of (e.g. the
    MAE over many-shot bins where no bin is many-shot) is left out, and the caption says so."""
    tidy = tidy.rename(columns={"metric": "column"}).assign(reference=False)
    empty = [m for m in metrics if tidy.loc[tidy["column"] == m, "mean"].isna().all()]
    shown = [m for m in ordered_metrics(metrics, primary) if m not in BASELINES and m not in empty]
    if empty:
        names = ", ".join(metric_format(m).label for m in empty)
        caption += f" Left out, as no run has a value: {names}."
    extra = []
    for name, (label, column) in BASELINES.items():
        part = tidy[tidy["column"] == name]
        if part.empty:
            continue
        tidy = tidy[tidy["column"] != name]
        if part["mean"].nunique(dropna=False) == 1 and part["std"].nunique(dropna=False) <= 1:
            extra.append(part.iloc[[0]].assign(method=label, column=column, reference=True))
        else:  # it differs between methods: a column of its own
            tidy = pd.concat([tidy, part])
            shown.append(name)
    tidy = pd.concat([tidy, *extra], ignore_index=True)
    header, body = render(tidy, ["method"], [(m, m, "") for m in shown], flagged)
    return markdown(header, body, caption)


# ---- HTML pages for the report ----------------------------------------------------------------

# Sorts a table of html_table_page by the clicked column (numbers by their leading value).
_SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th) => {
  th.addEventListener("click", () => {
    const column = th.cellIndex;
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
_STYLE = (
    "body{font-family:sans-serif;font-size:13px;margin:12px}"
    "table{border-collapse:collapse;margin:6px 0 12px}th,td{padding:3px 8px;"
    "border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}"
    "th:first-child,td:first-child{text-align:left}"
    "th{cursor:pointer;background:#f3f3f3}p{max-width:60em}"
)


def _inline(text: str) -> str:
    """Escaped text with Markdown ``**bold**`` as ``<strong>``."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def html_table_page(text: str, title: str) -> str:
    """A self-contained HTML page of Markdown text for reading inside the HTML report: every
    pipe table as a table whose columns sort on a click, every other paragraph as a
    paragraph, in their order; ``**bold**`` stays bold."""
    blocks: list[str] = []
    table: list[list[str]] = []
    paragraph: list[str] = []

    def flush():
        if table:
            header, body = (
                table[0],
                [r for r in table[1:] if not all(set(c) <= set(":-") for c in r)],
            )
            head = "".join(f"<th>{_inline(c)}</th>" for c in header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body
            )
            blocks.append(
                f"<table class='sortable'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>"
                "</table>"
            )
            table.clear()
        if paragraph:
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    for line in text.strip().splitlines():
        line = line.strip()
        if line.startswith("|"):
            if paragraph:
                flush()
            table.append(_cells(line))
        elif not line:
            flush()
        else:
            if table:
                flush()
            paragraph.append(line.lstrip("# "))
    flush()
    if not any(b.startswith("<table") for b in blocks):
        raise ValueError("no Markdown pipe table in the text")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(blocks)}"
        f"<script>{_SORT_SCRIPT}</script></body></html>\n"
    )
