import numpy as np
import pandas as pd
import pytest

from medimbalance.reporting import (
    html_table_page,
    markdown_table,
    metrics_frame,
    plot_class_distribution,
    plot_confusion_matrices,
    plot_sweep,
    summarise,
    sweep_frame,
    sweep_position,
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


def test_mean_and_sample_std_over_seeds_in_method_order():
    frame = metrics_frame(
        [
            record("ros", 0, 0.6),
            record("ros", 1, 0.8),
            record("baseline", 0, 0.7),
            record("baseline", 1, 0.7),
            record("ros", 2, 0.7),
        ]
    )
    summary = summarise(frame, ["baseline", "ros"])
    assert list(summary.index) == ["baseline", "ros"]
    assert summary.loc["ros", "n_seeds"] == 3
    assert summary.loc["ros", "accuracy_mean"] == pytest.approx(0.7)
    assert summary.loc["ros", "accuracy_std"] == pytest.approx(0.1)  # ddof = 1
    assert summary.loc["baseline", "accuracy_std"] == pytest.approx(0.0)
    assert "recall[pos]_mean" in summary.columns


def test_markdown_cells_and_single_seed():
    summary = summarise(
        metrics_frame([record("a", 0, 0.6), record("a", 1, 0.8), record("b", 0, 0.5)]), ["a", "b"]
    )
    text = markdown_table(summary)
    header, _, row_a, row_b = text.splitlines()
    assert [c.strip() for c in header.strip("|").split("|")][:3] == ["method", "seeds", "accuracy"]
    assert "0.700 ± 0.141" in row_a
    assert "| 0.500 " in row_b and "±" not in row_b.split("|")[3]


def test_missing_method_is_an_error():
    with pytest.raises(ValueError, match=r"no results for method\(s\) \['rus'\]"):
        summarise(metrics_frame([record("a", 0, 0.6)]), ["a", "rus"])


def test_figures_are_written(tmp_path):
    counts = pd.DataFrame({"class": ["a", "b"], "available": [10, 10], "kept": [10, 2]})
    plot_class_distribution(counts, "t", str(tmp_path / "dist.png"))
    plot_confusion_matrices(
        {"m1": np.array([[3, 1], [0, 4]]), "m2": np.eye(2)},
        ["a", "b"],
        "t",
        str(tmp_path / "cm.png"),
    )
    for name in ("dist.png", "cm.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_a_markdown_table_becomes_a_sortable_html_page_with_its_caption():
    markdown = (
        "| method | bal. acc. |\n|:---|---:|\n| a<b | 0.5 ± 0.1 |\n| c | 0.7 ± 0.0 |\n\n"
        "Test balanced accuracy. Ours: mean ± std over 2 seeds."
    )
    page = html_table_page(markdown, "lesions, longtail")
    assert page.count("<tr>") == 3  # the header and two rows; the separator row is gone
    assert "<th>bal. acc.</th>" in page and "<td>a&lt;b</td>" in page  # escaped
    assert "<p>Test balanced accuracy. Ours: mean ± std over 2 seeds.</p>" in page
    assert "class='sortable'" in page and "<title>lesions, longtail</title>" in page
    with pytest.raises(ValueError, match="no Markdown pipe table"):
        html_table_page("just text", "x")
