"""Declared paper-shaped tables: cells, published values, differences, confidence intervals and
paired tests on hand-made per-seed values whose answers are computed by hand."""

import math

import pytest
import yaml
from conftest import REPO

from medimbalance.study import Study
from medimbalance.tables import (
    assemble,
    metric_names,
    metric_value,
    paired_p_value,
    render_latex,
    render_markdown,
    run_metric,
    summary,
)

SPEC = {
    "caption": "Hand-made table",
    "row_header": "trained on",
    "digits": 2,
    "reference": "A",
    "test": "ttest",
    "published": {
        "source": "Someone 2021, Table 9",
        "values": {"A": {"MSE": [1.0, 0.1]}, "B": {"MSE": [1.0]}},
    },
}
CELLS = [
    {"row": "A", "column": "MSE"},
    {"row": "A", "column": "%"},
    {"row": "B", "column": "MSE"},
    {"row": "B", "column": "%"},
]
VALUES = [[1.0, 2.0, 3.0], [10.0, 10.0, 10.0], [2.0, 3.0, 5.0], [10.0, 11.0, 12.0]]


def test_summary_by_hand():
    s = summary([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0)  # sample std, ddof 1
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) · s / √n
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((2 - half, 2 + half))
    one = summary([4.0])
    assert one["mean"] == 4.0 and math.isnan(one["std"]) and math.isnan(one["ci_low"])


def test_cells_published_values_differences_and_disagreement_by_hand():
    frame = assemble(SPEC, CELLS, VALUES).set_index(["row", "column"])
    a = frame.loc[("A", "MSE")]
    assert a["mean"] == 2.0 and a["published_mean"] == 1.0 and a["published_std"] == 0.1
    assert a["difference"] == pytest.approx(1.0)
    # |1.0| against the spread √(1² + 0.1²) = 1.005: within it
    assert not a["disagrees"]
    b = frame.loc[("B", "MSE")]
    assert b["mean"] == pytest.approx(10 / 3) and math.isnan(b["published_std"])
    # |10/3 − 1| = 2.33 against √(std² + 0) = std([2, 3, 5]) = 1.528: disagrees
    assert b["std"] == pytest.approx(math.sqrt(7 / 3)) and b["disagrees"]
    assert math.isnan(frame.loc[("A", "%"), "published_mean"])
    assert not frame.loc[("A", "%"), "disagrees"]  # nothing published: nothing to disagree with


def test_paired_tests_by_hand():
    # differences B − A per seed: 1, 1, 2 → mean 4/3, sd √(1/3), t = (4/3)/(√(1/3)/√3) = 4
    # two-sided p with 2 degrees of freedom, whose cdf is 1/2 + t/(2√(2 + t²)): 1 − 4/√18
    p_t = 1 - 4 / math.sqrt(18)
    assert paired_p_value([2, 3, 5], [1, 2, 3], "ttest") == pytest.approx(p_t, rel=1e-9)
    # Wilcoxon on 1, 1, 2 (all positive, n = 3): exact two-sided p = 2 · 1/8 = 0.25
    assert paired_p_value([2, 3, 5], [1, 2, 3], "wilcoxon") == pytest.approx(0.25)
    assert paired_p_value([1, 2], [1, 2], "wilcoxon") == 1.0  # identical rows
    assert math.isnan(paired_p_value([1], [2], "ttest"))  # one seed: no test
    frame = assemble(SPEC, CELLS, VALUES).set_index(["row", "column"])
    assert math.isnan(frame.loc[("A", "MSE"), "p_value"])  # the reference itself
    assert frame.loc[("B", "MSE"), "p_value"] == pytest.approx(1 - 4 / math.sqrt(18), rel=1e-9)
    with pytest.raises(ValueError, match="one value per seed in both rows"):
        paired_p_value([1, 2], [1, 2, 3], "ttest")


def test_markdown_and_latex_show_ours_beside_the_published_values():
    frame = assemble(SPEC, CELLS, VALUES)
    markdown = render_markdown(frame, SPEC, [0, 1, 2])
    header, _, a, b = markdown.splitlines()[:4]
    assert header == "| trained on | MSE (ours) | MSE (published) | MSE Δ | MSE p | % | % p |"
    assert a == "| A | 2.00 ± 1.00 | 1.00 ± 0.10 | +1.00 | ref. | 10.00 ± 0.00 | ref. |"
    assert b.startswith("| B | 3.33 ± 1.53 † | 1.00 | +2.33 | 0.057 | 11.00 ± 1.00 |")
    caption = markdown.splitlines()[-1]
    assert "Hand-made table." in caption and "over 3 seeds (0, 1, 2)" in caption
    assert "Published: Someone 2021, Table 9" in caption and "paired t-test" in caption
    latex = render_latex(frame, SPEC, [0, 1, 2])
    assert r"\begin{tabular}{lrrrrrr}" in latex and r"\toprule" in latex
    assert r"3.33 $\pm$ 1.53 $^\dagger$" in latex and r"\%" in latex


def test_the_quick_regression_study_declares_the_full_studys_tables():
    full = yaml.safe_load((REPO / "config/studies/regression_std.yaml").read_text())
    quick = yaml.safe_load((REPO / "config/studies/regression_std_quick.yaml").read_text())
    assert full["tables"] == quick["tables"] and full["methods"] == quick["methods"]
    assert set(full["tables"]) == {"table1", "table2", "table3", "table4", "table5", "tuned"}


def test_a_cell_can_show_one_class_of_a_per_class_metric():
    metrics = {
        "task": "multiclass",
        "accuracy": 0.5,
        "flag": True,
        "classes": ["a", "b"],
        "per_class": {"recall": [0.25, 0.75]},
    }
    assert metric_value(metrics, "accuracy") == 0.5
    assert metric_value(metrics, "recall[b]") == 0.75
    assert metric_value(metrics, "recall[c]") is None
    assert metric_value(metrics, "flag") is None  # not a number
    assert metric_names(metrics) == ["accuracy", "recall[a]", "recall[b]"]
    with pytest.raises(ValueError, match=r"m\.json has no value for metric 'dice' \(cell x\)"):
        run_metric(metrics, "dice", "m.json", "cell x")


def test_a_cell_can_show_its_metric_in_percent_with_its_own_decimals():
    spec = {
        "caption": "Accuracy in percent",
        "published": {"source": "x", "values": {"A": {"acc": [79.3]}}},
    }
    cells = [
        {"row": "A", "column": "acc", "percent": True, "digits": 1},
        {"row": "A", "column": "loss"},
    ]
    frame = assemble(spec, cells, [[0.80, 0.78], [0.25, 0.35]]).set_index("column")
    # ours x 100 = 80, 78 -> 79.0 ± 1.414; the published 79.3 is in the same unit
    assert frame.loc["acc", "mean"] == pytest.approx(79.0)
    assert frame.loc["acc", "difference"] == pytest.approx(-0.3)
    assert frame.loc["acc", "scale"] == 100 and frame.loc["loss", "scale"] == 1
    row = render_markdown(frame.reset_index(), spec, [0, 1]).splitlines()[2]
    # the table's default 3 decimals where the cell sets none
    assert row == "| A | 79.0 ± 1.4 | 79.3 | -0.3 | 0.300 ± 0.071 |"


def test_a_row_naming_a_method_is_labelled_by_it():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["tables"] = {
        "t": {
            "caption": "c",
            "select": {"dataset": "graded_lesions", "profile": "longtail"},
            "rows": [{"method": "baseline"}, {"method": "ros", "label": "ROS"}],
            "columns": [{"label": "bacc", "metric": "balanced_accuracy"}],
        }
    }
    cells = Study(config).table_cells("t")
    assert [c["row"] for c in cells] == ["baseline", "ROS"]


def test_a_table_of_one_seed_says_so():
    frame = assemble(SPEC, CELLS, [[v[0]] for v in VALUES])
    caption = render_markdown(frame, SPEC, [4]).splitlines()[-1]
    assert "Ours: one run (seed 4), no spread over seeds." in caption
