"""Every figure of the workflow, drawn from small inputs: legible at the report's size (a grid
of at most four panels per row, no title over the panels), every axis labelled."""

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from medimbalance import figures

MAX_PIXELS = 2000  # per side, at the dpi of each figure


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn during a test (by file name), still open for inspection."""
    captured = {}

    def capture(fig, path, dpi):
        captured[path.rsplit("/", 1)[-1]] = fig
        with open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)  # lays the figure out as the workflow's does

    monkeypatch.setattr(figures, "save_figure", capture)
    yield captured
    for fig in captured.values():
        figures.plt.close(fig)


def check_legible(fig, path, max_per_row=figures.PER_ROW):
    """The PNG fits the report, every plotting axis is labelled, panels come at most
    ``max_per_row`` to a row and the title sits above all of them."""
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width <= MAX_PIXELS and height <= MAX_PIXELS, (width, height)
    assert width / height <= 4.0, (width, height)
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):
            assert ax.get_ylabel() or ax.get_xlabel(), "unlabelled colour bar"
        elif any(ax is not other and ax.get_shared_x_axes().joined(ax, other) for other in panels):
            assert ax.get_ylabel(), "unlabelled twin axis"
        else:
            assert ax.get_xlabel() and ax.get_ylabel(), f"panel {ax.get_title()!r} unlabelled"
    columns = {round(ax.get_position().x0, 3) for ax in panels}
    assert len(columns) <= max_per_row, len(columns)
    if fig._suptitle is not None:
        title = fig._suptitle.get_window_extent(renderer)
        for ax in panels:
            assert title.y0 >= ax.get_tightbbox(renderer).y1 - 1, "title overlaps a panel"


def test_confusion_matrices_are_a_labelled_grid_with_one_colour_bar(tmp_path, drawn):
    matrices = {f"m{i}": np.array([[3, 1, 0], [0, 4, 1], [1, 0, 2]]) for i in range(7)}
    path = str(tmp_path / "cm.png")
    figures.plot_confusion_matrices(matrices, ["a", "b", "c"], "lesions / longtail", path)
    fig = drawn["cm.png"]
    check_legible(fig, path)
    panels = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    assert len(panels) == 7 and sum(hasattr(ax, "_colorbar") for ax in fig.axes) == 1
    assert {ax.get_title() for ax in panels} == set(matrices)
    texts = [t.get_text() for t in panels[0].texts]
    assert texts[:3] == ["0.75", "0.25", "0.00"]  # row-normalised


def test_reliability_diagrams_show_bin_counts_and_a_legend_for_every_panel(tmp_path, drawn):
    pooled = {
        "count": np.array([0, 2, 10, 40, 300.0]),
        "confidence": np.array([np.nan, 0.3, 0.5, 0.7, 0.9]),
        "accuracy": np.array([np.nan, 0.5, 0.4, 0.6, 0.95]),
    }
    bins = {f"m{i}": {"none": pooled, "temperature": pooled} for i in range(6)}
    path = str(tmp_path / "rel.png")
    figures.plot_reliability(bins, "lesions / longtail", path)
    fig = drawn["rel.png"]
    check_legible(fig, path)
    twins = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert len(twins) == 6
    assert [p.get_height() for p in twins[0].patches] == [0, 2, 10, 40, 300]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["none", "temperature"]


def test_class_distributions_use_a_log_axis_and_print_the_counts(tmp_path, drawn):
    counts = pd.DataFrame({"class": list("abcde"), "available": [2000, 500, 60, 20, 10]})
    counts["kept"] = [2000, 200, 20, 5, 0]
    path = str(tmp_path / "dist.png")
    figures.plot_class_distribution(counts, "lesions / longtail", path)
    fig = drawn["dist.png"]
    check_legible(fig, path)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "class"
    printed = [t.get_text() for t in ax.texts]
    assert "10" in printed and "2,000" in printed and "5" in printed
    assert "0" in printed and ax.get_ylim()[0] == pytest.approx(2.5)  # an empty class shows


def test_segmentation_distribution_is_the_share_of_voxels(tmp_path, drawn):
    counts = pd.DataFrame(
        {
            "class": ["background", "edema", "tumour"],
            "available": [66, 66, 66],
            "kept": [66, 66, 66],
            "available_voxels": [9000, 900, 100],
            "kept_voxels": [9500, 450, 50],
        }
    )
    path = str(tmp_path / "seg.png")
    figures.plot_class_distribution(counts, "tumours", path, task="segmentation")
    (ax,) = drawn["seg.png"].axes
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([90, 9, 1, 95, 4.5, 0.5])
    assert "voxels" in ax.get_ylabel() and ax.get_xlabel() == "label"
    check_legible(drawn["seg.png"], path)


def test_regression_distribution_names_the_target_axis(tmp_path, drawn):
    counts = pd.DataFrame({"class": ["[0, 1)", "[1, 2)"], "available": [40, 4], "kept": [40, 4]})
    path = str(tmp_path / "reg.png")
    figures.plot_class_distribution(counts, "ages", path, task="regression")
    (ax,) = drawn["reg.png"].axes
    assert ax.get_xlabel() == "target value (bin)"
    check_legible(drawn["reg.png"], path)


def test_logit_histograms_are_densities_in_a_grid(tmp_path, drawn):
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(200, 6)), rng.integers(0, 6, 200)
    path = str(tmp_path / "logits.png")
    classes = [f"c{i}" for i in range(6)]
    figures.plot_logit_histograms({"training": (logits, targets)}, classes, "logits", path)
    fig = drawn["logits.png"]
    check_legible(fig, path)
    assert all(ax.get_ylabel() == "density" for ax in fig.axes)


def test_the_sample_grid_puts_real_images_beside_the_generated(tmp_path, drawn):
    rng = np.random.default_rng(0)
    generated = rng.uniform(0, 1, size=(3 * 8, 1, 8, 8))
    real = [rng.uniform(0, 1, size=(k, 1, 8, 8)) for k in (4, 4, 2)]
    path = str(tmp_path / "grid.png")
    figures.plot_sample_grid(generated, ["g0", "g1", "g2"], (0, 1), "cdcgan", path, real=real)
    fig = drawn["grid.png"]
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width <= MAX_PIXELS and height <= MAX_PIXELS
    axes = np.array(fig.axes).reshape(3, 4 + 1 + 8)
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["g0", "g1", "g2"]
    assert axes[0, 0].get_title(loc="left") == "real"
    assert axes[0, 5].get_title(loc="left") == "generated"
    shown = [[len(ax.images) for ax in row] for row in axes]
    assert shown[2][:5] == [1, 1, 0, 0, 0] and all(sum(r[5:]) == 8 for r in shown)
