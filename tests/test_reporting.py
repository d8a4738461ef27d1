import numpy as np
import pandas as pd
import pytest

from medimbalance.reporting import (
    markdown_table,
    metrics_frame,
    plot_class_distribution,
    plot_confusion_matrices,
    summarise,
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
