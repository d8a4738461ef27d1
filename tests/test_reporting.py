import numpy as np
import pandas as pd
import pytest

from medimbalance.display import html_table_page
from medimbalance.figures import plot_sweep
from medimbalance.metrics import TASK_SCALARS
from medimbalance.reporting import (
    absent_classes,
    cross_markdown,
    flagged_metrics,
    metrics_frame,
    results_markdown,
    sweep_frame,
    sweep_position,
    tidy_summary,
)


def record(method, seed, acc, recalls=(0.5, 1.0)):
    return {
        "method": method,
        "seed": seed,
        "metrics": {
            "classes": ["neg", "pos"],
            "accuracy": acc,
            "balanced_accuracy": acc - 0.1,
            "macro_f1": acc - 0.2,
            "auroc": 0.9,
            "mcc": acc - 0.3,
            "g_mean": acc - 0.15,
            "per_class": {"recall": list(recalls)},
        },
    }


def test_tidy_summary_is_mean_std_and_n_per_method_and_metric_in_order():
    frame = metrics_frame(
        [
            record("ros", 0, 0.6),
            record("ros", 1, 0.8),
            record("baseline", 0, 0.7),
            record("baseline", 1, 0.7),
            record("ros", 2, 0.7),
        ]
    )
    tidy = tidy_summary(frame, ["baseline", "ros"])
    assert list(tidy.columns) == ["method", "metric", "mean", "std", "n"]
    assert list(dict.fromkeys(tidy["method"])) == ["baseline", "ros"]
    assert tidy["metric"].tolist()[:3] == ["accuracy", "balanced_accuracy", "macro_f1"]
    ros = tidy[tidy["method"] == "ros"].set_index("metric")
    assert ros.loc["accuracy", "n"] == 3
    assert ros.loc["accuracy", "mean"] == pytest.approx(0.7)
    assert ros.loc["accuracy", "std"] == pytest.approx(0.1)  # ddof = 1
    assert ros.loc["recall[pos]", "mean"] == pytest.approx(1.0)
    base = tidy[tidy["method"] == "baseline"].set_index("metric")
    assert base.loc["accuracy", "std"] == pytest.approx(0.0)


def test_tidy_summary_counts_only_the_seeds_with_a_value_and_groups_by_extra_keys():
    frame = pd.DataFrame(
        {
            "method": ["a", "a", "a", "a"],
            "seed": [0, 1, 0, 1],
            "scaler": ["none", "none", "temperature", "temperature"],
            "ece": [0.1, 0.3, 0.05, None],
        }
    )
    tidy = tidy_summary(frame, ["a"], by=["scaler"]).set_index("scaler")
    assert tidy.loc["none", "mean"] == pytest.approx(0.2) and tidy.loc["none", "n"] == 2
    assert tidy.loc["temperature", "n"] == 1 and np.isnan(tidy.loc["temperature", "std"])


def test_results_table_puts_the_primary_metric_first_and_names_split_size_and_seeds():
    frame = metrics_frame([record("a", 0, 0.6), record("a", 1, 0.8), record("b", 0, 0.5)])
    text = results_markdown(
        tidy_summary(frame, ["a", "b"]), "multiclass", "lesions", "longtail", [0, 1], [40, 40]
    )
    header, _, row_a, row_b, _, caption = text.strip().splitlines()
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[:3] == ["method", "Balanced accuracy (%)", "Accuracy (%)"]
    assert "Recall pos (%)" in cells and "AUROC" in cells and "MCC" in cells
    assert "seeds" not in cells  # the same for every row: said in the caption
    a = [c.strip() for c in row_a.strip("|").split("|")]
    assert a[1] == "**60.0 ± 14.1**" and a[2] == "**70.0 ± 14.1**"  # ×100, one decimal, best
    b = [c.strip() for c in row_b.strip("|").split("|")]
    assert b[1] == "40.0"  # one seed of b: the mean alone
    auroc = cells.index("AUROC")  # a tie at the shown precision: both bold
    assert (a[auroc], b[auroc]) == ("**0.900 ± 0.000**", "**0.900**")
    assert "Test split of lesions (n = 40 images)" in caption and "longtail" in caption
    assert "2 seeds (0, 1)" in caption and "Bold" in caption


def test_cells_where_an_absent_class_convention_applied_are_flagged_and_explained():
    absent = record("b", 1, 0.5)
    absent["metrics"]["flagged"] = {"macro_f1": ["pos"], "g_mean": ["pos"]}
    records = [record("a", 0, 0.6), record("b", 0, 0.5), absent]
    flagged = flagged_metrics(records)
    assert flagged == {("b", "macro_f1"): ["pos"], ("b", "g_mean"): ["pos"]}
    tidy = tidy_summary(metrics_frame(records), ["a", "b"])
    text = results_markdown(tidy, "multiclass", "x", "p", [0, 1], [4], flagged=flagged)
    header, _, row_a, row_b, _, caption = text.strip().splitlines()
    cells = [c.strip() for c in header.strip("|").split("|")]
    a = [c.strip() for c in row_a.strip("|").split("|")]
    b = [c.strip() for c in row_b.strip("|").split("|")]
    f1, gmean, bacc = (
        cells.index(h) for h in ("Macro-F1 (%)", "G-mean (%)", "Balanced accuracy (%)")
    )
    assert b[f1] == "30.0 ± 0.0†" and b[gmean] == "35.0 ± 0.0†" and not b[bacc].endswith("†")
    assert not any(c.endswith("†") for c in a)
    assert "† In at least one seed, class(es) pos were absent" in caption
    assert "Macro-F1 is the mean F1 over the classes present" in caption
    assert "G-mean is the geometric mean of the recalls" in caption
    assert "Balanced accuracy is" not in caption  # no flagged cell of it
    plain = results_markdown(tidy, "multiclass", "x", "p", [0, 1], [4])
    assert "†" not in plain
    # with the runs' absent classes the caption says which method lacked what
    absent["metrics"]["absent_classes"] = {"targets": ["pos"], "predictions": []}
    named = results_markdown(
        tidy, "multiclass", "x", "p", [0, 1], [4], flagged=flagged, absent=absent_classes(records)
    )
    assert absent_classes(records) == {"b": {"targets": ["pos"], "predictions": []}}
    assert "† In at least one seed of b (absent from the test targets: pos): Macro-F1 is" in named
    absent["metrics"]["absent_classes"] = {"targets": [], "predictions": ["neg", "pos"]}
    named = results_markdown(
        tidy, "multiclass", "x", "p", [0, 1], [4], flagged=flagged, absent=absent_classes(records)
    )
    assert "seed of b (never predicted: neg, pos): " in named
    # the cross-evaluation table flags the cell of the test set it happened on
    cross = tidy[tidy["metric"].isin(["balanced_accuracy", "macro_f1"])]
    both = pd.concat([cross.assign(test_set="own"), cross.assign(test_set="other")])
    text = cross_markdown(both, ["own", "other"], "x", "p", [0, 1], {"other": flagged})
    b = [c.strip() for c in text.splitlines()[3].strip("|").split("|")]
    assert [c.endswith("†") for c in b[1:]] == [False, False, False, True]


def regression_record(method, seed, mse, guess=31.25):
    metrics = {"task": "regression", "n": 20, "uniform_guess_percentage_error": guess}
    metrics |= {name: mse for name in TASK_SCALARS["regression"] if name not in metrics}
    metrics["bias"] = -mse
    return {"method": method, "seed": seed, "metrics": metrics}


def test_a_reference_the_same_for_every_method_is_a_row_not_a_column():
    records = [regression_record(m, s, v) for m, s, v in [("a", 0, 0.2), ("b", 0, 0.1)]]
    frame = metrics_frame(records)
    text = results_markdown(tidy_summary(frame, ["a", "b"]), "regression", "x", "p", [0], [20])
    lines = text.strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:4] == ["method", "MSE", "MAE", "Percentage loss (%)"]
    assert not any("uniform" in h for h in header)
    guess = [c.strip() for c in lines[4].strip("|").split("|")]
    assert guess[0] == "uniform random guess" and guess[3] == "31.2"  # not bold: a reference
    assert set(guess[1:3] + guess[4:]) == {"–"}
    b = [c.strip() for c in lines[3].strip("|").split("|")]
    assert b[1] == "**0.100**"  # MSE: lower is better
    assert b[header.index("Bias (%)")] == "**-0.1**"  # closest to zero, in percent
    a = [c.strip() for c in lines[2].strip("|").split("|")]
    assert a[header.index("R²")] == "**0.200**"  # higher is better
    assert "One run (seed 0): no spread over seeds." in lines[-1]
    # A metric no run has a value of is left out, and the caption says so.
    for record in records:
        record["metrics"]["mae_many"] = None
    text = results_markdown(
        tidy_summary(metrics_frame(records), ["a", "b"]), "regression", "x", "p", [0], [20]
    )
    assert "MAE many-shot" not in text.splitlines()[0]
    assert "Left out, as no run has a value: MAE many-shot." in text
    # A guess that differs between methods stays a column.
    records[1] = regression_record("b", 0, 0.1, guess=20.0)
    tidy = tidy_summary(metrics_frame(records), ["a", "b"])
    text = results_markdown(tidy, "regression", "x", "p", [0], [20])
    assert "Percentage loss of a uniform guess (%)" in text.splitlines()[0]


def test_the_tidy_csv_of_a_table_round_trips(tmp_path):
    frame = metrics_frame([record("a", 0, 0.6), record("a", 1, 0.8)])
    tidy = tidy_summary(frame, ["a"])
    tidy.to_csv(tmp_path / "t.csv", index=False)
    back = pd.read_csv(tmp_path / "t.csv")
    assert back.loc[back["metric"] == "accuracy", "mean"].item() == pytest.approx(0.7)
    assert len(back) == len(frame.columns) - 2  # one row per metric of the one method


def test_missing_method_is_an_error():
    with pytest.raises(ValueError, match=r"no results for method\(s\) \['rus'\]"):
        tidy_summary(metrics_frame([record("a", 0, 0.6)]), ["a", "rus"])


def test_sweep_positions_come_from_the_kept_training_set():
    counts = pd.DataFrame({"class": list("abc"), "available": [50, 50, 50], "kept": [40, 8, 2]})
    assert sweep_position("imbalance_factor", counts, kept=50, available=150) == 20.0
    assert sweep_position("training_fraction", counts, kept=50, available=200) == 0.25
    counts.loc[2, "kept"] = 0
    with pytest.raises(ValueError, match="infinite"):
        sweep_position("imbalance_factor", counts, kept=48, available=150)


def test_a_sweep_is_each_methods_mean_and_std_over_seeds_per_profile(tmp_path):
    points = [
        {"method": m, "profile": p, "x": x, "seed": s, "value": v}
        for m, p, x, s, v in [
            ("a", "if1", 1.0, 0, 0.8),
            ("a", "if1", 1.0, 1, 0.6),
            ("a", "if10", 10.0, 0, 0.5),
            ("a", "if10", 10.0, 1, 0.3),
            ("b", "if1", 1.0, 0, 0.9),
            ("b", "if1", 1.0, 1, 0.9),
            ("b", "if10", 10.0, 0, 0.7),
            ("b", "if10", 10.0, 1, 0.4),
        ]
    ]
    frame = sweep_frame(points, ["b", "a"], ["if1", "if10"])
    assert frame["method"].tolist() == ["b", "b", "a", "a"]
    assert frame["mean"].tolist() == pytest.approx([0.9, 0.55, 0.7, 0.4])
    # sample std of (0.7, 0.4) and of (0.8, 0.6): |difference| / sqrt(2)
    assert frame["std"].tolist() == pytest.approx([0.0, 0.3 / 2**0.5, 0.2 / 2**0.5, 0.2 / 2**0.5])
    with pytest.raises(ValueError, match="method 'c' under profile 'if1'"):
        sweep_frame(points, ["c"], ["if1"])
    spec = {"x": "imbalance_factor", "metric": "balanced_accuracy", "log_x": True}
    plot_sweep(frame, spec, str(tmp_path / "f.png"), str(tmp_path / "f.pdf"), errors="ci")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"


def test_every_table_of_a_markdown_text_becomes_a_sortable_html_table():
    markdown = (
        "| method | bal. acc. |\n|:---|---:|\n| a<b | **0.5 ± 0.1** |\n| c | 0.7 ± 0.0 |\n\n"
        "Test balanced accuracy. Ours: mean ± std over 2 seeds.\n\n**ros**: second table\n\n"
        "| estimator | all |\n|---|---|\n| ATC | 1.0 |\n"
    )
    page = html_table_page(markdown, "lesions, longtail")
    assert page.count("<table") == 2 and page.count("<tr>") == 5  # no separator rows
    assert "<th>bal. acc.</th>" in page and "<td>a&lt;b</td>" in page  # escaped
    assert "<td><strong>0.5 ± 0.1</strong></td>" in page
    first, second = page.index("<table"), page.rindex("<table")
    assert first < page.index("<p>Test balanced accuracy.") < page.index("<p><strong>ros</strong>")
    assert page.index("second table") < second
    assert "class='sortable'" in page and "<title>lesions, longtail</title>" in page
    with pytest.raises(ValueError, match="no Markdown pipe table"):
        html_table_page("just text", "x")


def test_segmentation_with_regions_shows_each_region_instead_of_each_label():
    from medimbalance.reporting import metrics_frame

    metrics = {
        "task": "segmentation",
        "classes": ["background", "edema", "core"],
        "dice": 0.5,
        "sensitivity": 0.6,
        "precision": 0.7,
        "hd95": 3.0,
        "per_class": {"dice": [0.9, 0.4, 0.6]},
        "regions": {"whole_tumour": [1, 2], "tumour_core": [2]},
        "per_region": {
            "dice": [0.8, 0.6],
            "sensitivity": [0.9, 0.7],
            "precision": [0.7, 0.5],
            "hd95": [2.0, 4.0],
        },
    }
    frame = metrics_frame([{"method": "m", "seed": 0, "metrics": metrics}])
    assert (
        frame.loc[0, "sensitivity[tumour_core]"] == 0.7 and frame.loc[0, "hd95[whole_tumour]"] == 2
    )
    assert "dice[edema]" not in frame.columns  # labels: in metrics.json and declared tables
    assert "surface_dice[tumour_core]" not in frame.columns  # only what the run has
    metrics.pop("per_region"), metrics.pop("regions")
    assert (
        metrics_frame([{"method": "m", "seed": 0, "metrics": metrics}]).loc[0, "dice[edema]"] == 0.4
    )
