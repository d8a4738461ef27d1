"""Cross-evaluation through real Snakemake (tests/configs/cross.yaml): runs scored on other
datasets' test splits, prepared with the training dataset's statistics, without retraining."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, run_snakemake

pytestmark = pytest.mark.workflow
CROSS = REPO / "tests" / "configs" / "cross.yaml"


@pytest.fixture(scope="module")
def cross_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cross")
    done = run_snakemake("--cores", "2", "--configfile", str(CROSS), "--directory", str(workdir))
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir / "results" / "cross"


def npz(path):
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files}


def test_both_ways_every_run_is_scored_on_the_other_test_split(cross_run):
    for own, other in (("u5", "u10"), ("u10", "u5")):
        table = pd.read_csv(cross_run / f"tables/{own}_natural_test_on.csv")
        assert set(table["method"]) == {"mse"} and (table["n"] == 2).all()
        assert list(dict.fromkeys(table["test_set"])) == [own, other]
        own_table = pd.read_csv(cross_run / f"tables/{own}_natural.csv")
        # the own-test-set cells are the dataset's own table
        on_own = table[(table["test_set"] == own) & (table["metric"] == "mse")]["mean"]
        assert on_own.item() == pytest.approx(
            own_table.set_index(["method", "metric"]).loc[("mse", "mse"), "mean"]
        )
        for seed in (0, 1):
            run = cross_run / f"runs/{own}/natural/mse/seed{seed}"
            external = npz(run / f"test_on/{other}/predictions.npz")
            # the other dataset's test images, in order, with the run's own validation outputs
            expected = np.load(cross_run / f"data/{other}/test_targets.npy")
            assert np.array_equal(external["test_targets"], expected)
            assert np.array_equal(
                external["val_logits"], npz(run / "predictions.npz")["val_logits"]
            )
            metrics = json.loads((run / f"test_on/{other}/metrics.json").read_text())
            error = external["test_logits"][:, 0] - expected
            assert metrics["mse"] == pytest.approx(float(np.mean(error**2)), rel=1e-5)
    # the model trained on U(1, 5) is scored on U(1, 10) targets it never saw
    assert np.load(cross_run / "data/u10/test_targets.npy").max() > 5


def test_external_images_get_the_training_datasets_statistics(cross_run):
    own_meta = json.loads((cross_run / "data/lesions/meta.json").read_text())
    mean = np.array(own_meta["preprocess"]["channel_mean"])
    std = np.array(own_meta["preprocess"]["channel_std"])
    generator = json.loads((cross_run / "data/other_lesions/meta.json").read_text())["generator"]
    raw = next(  # the other dataset's raw folder
        p.parent
        for p in (cross_run.parents[1] / "resources").rglob("meta.json")
        if json.loads(p.read_text()).get("generator") == generator
    )
    test = json.loads((cross_run / "data/other_lesions/splits.json").read_text())["test"]
    images = np.load(raw / "images.npy")[test].astype(np.float64)
    expected = (images - mean[None, :, None, None]) / std[None, :, None, None]
    got = np.load(cross_run / "data/lesions/test_on/other_lesions/test_images.npy")
    assert np.allclose(got, expected, atol=1e-5)
    # not the other dataset's own statistics
    own_prepared = np.load(cross_run / "data/other_lesions/test_images.npy")
    assert not np.allclose(got, own_prepared)


def test_post_hoc_adjustment_applies_to_external_outputs(cross_run):
    runs = cross_run / "runs/lesions/natural"
    for seed in (0, 1):
        plain = npz(runs / f"baseline/seed{seed}/test_on/other_lesions/predictions.npz")
        adjusted = npz(runs / f"adjusted/seed{seed}/test_on/other_lesions/predictions.npz")
        blob = torch.load(runs / f"adjusted/seed{seed}/model.pt", weights_only=True)
        counts = np.asarray(blob["meta"]["training_counts"], np.float64)
        prior = counts / counts.sum()
        # the same training (one seed, one recipe): only z − τ log π differs, τ = 1
        shift = adjusted["test_logits"] - plain["test_logits"]
        assert np.allclose(shift, -np.log(prior)[None, :], atol=1e-4)


def test_a_declared_table_holds_the_runs_metrics_beside_the_published_value(cross_run):
    cells = pd.read_csv(cross_run / "tables/paper/transfer.csv").set_index(["row", "column"])

    def seeds(dataset, name, key="mse"):
        folder = cross_run / f"runs/{dataset}/natural/mse"
        return [json.loads((folder / f"seed{s}/{name}").read_text())[key] for s in (0, 1)]

    own = seeds("u10", "metrics.json")
    assert cells.loc[("U(1, 10)", "MSE on U(1, 10)"), "mean"] == pytest.approx(np.mean(own))
    assert cells.loc[("U(1, 10)", "MSE on U(1, 10)"), "std"] == pytest.approx(np.std(own, ddof=1))
    assert cells.loc[("U(1, 10)", "MSE on U(1, 10)"), "published_mean"] == 0.375
    other = seeds("u5", "test_on/u10/metrics.json")
    assert cells.loc[("U(1, 5)", "MSE on U(1, 10)"), "mean"] == pytest.approx(np.mean(other))
    pooled = seeds("u5", "test_on/u10/metrics.json") + seeds("u5", "metrics.json")
    assert cells.loc[("U(1, 5)", "MSE pooled"), "n_seeds"] == 4
    assert cells.loc[("U(1, 5)", "MSE pooled"), "mean"] == pytest.approx(np.mean(pooled))
    # the random guess in [1, 10) on U(1, 10)'s test targets: E(U − y)² in closed form
    targets = np.load(cross_run / "data/u10/test_targets.npy").astype(np.float64)
    guess = np.mean(81 / 12 + (5.5 - targets) ** 2)
    assert cells.loc[("U(1, 5)", "guess on U(1, 10)"), "mean"] == pytest.approx(guess, rel=1e-6)
    assert not np.isnan(cells.loc[("U(1, 5)", "MSE on U(1, 10)"), "p_value"])
    markdown = (cross_run / "tables/paper/transfer.md").read_text()
    assert "| trained on | MSE on U(1, 10) (ours) | MSE on U(1, 10) (published) |" in markdown
    assert "Published: a value made up for this test" in markdown and "paired t-test" in markdown
    assert (cross_run / "tables/paper/transfer.tex").read_text().startswith(r"\begin{table}")


def test_the_quick_regression_study_runs_end_to_end_at_a_small_size(tmp_path):
    config = yaml.safe_load((REPO / "config/studies/regression_std_quick.yaml").read_text())
    for dataset in config["datasets"].values():
        dataset["generator"].update(n_train=150, n_val=40, n_test=40, image_size=24)
    config.update(seeds=[0, 1], training={**config["training"], "epochs": 1})
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    done = run_snakemake(
        "--cores", "2", "--configfile", str(tmp_path / "study.yaml"), "--directory", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr[-4000:]
    tables = tmp_path / "results/regression_std_quick/tables/paper"
    for name in ("table1", "table2", "table3", "table4", "table5", "tuned"):
        frame = pd.read_csv(tables / f"{name}.csv")
        assert frame["mean"].notna().all(), name
        assert (frame["n_seeds"] == (6 if name == "table5" else 2)).all(), name  # 5: 3 test sets
    table4 = pd.read_csv(tables / "table4.csv").set_index(["row", "column"])
    assert table4.loc[("U(1, 5)", "percentage"), "published_mean"] == 10.189
    baseline = table4.loc[("Baseline", "MSE")]
    assert baseline["std"] == 0 and 10 < baseline["mean"] < 17  # the guess in [1, 10]: ≈ 13.5
    assert "Thakoersingh 2021, Table 2" in (tables / "table2.md").read_text()


def test_performance_is_estimated_under_the_natural_shift_to_the_other_test_set(cross_run):
    from medimbalance.metrics import task_metrics

    for seed in (0, 1):
        run = cross_run / f"runs/lesions/natural/baseline/seed{seed}"
        estimate = json.loads((run / "test_on/other_lesions/estimate.json").read_text())
        external = npz(run / "test_on/other_lesions/predictions.npz")
        classes = [f"grade_{g}" for g in range(5)]
        true = task_metrics(
            "multiclass", external["test_targets"], external["test_logits"], classes
        )["accuracy"]
        assert estimate["kind"] == "natural: other_lesions"
        assert estimate["true"] == pytest.approx(true)
        assert {"AC", "DoC", "ATC", "TS"} <= set(estimate["estimates"])
    frame = pd.read_csv(cross_run / "tables/lesions_natural_shift.csv")
    assert set(frame["kind"]) == {"none", "noise", "natural: other_lesions"}
    assert "natural: other_lesions" in (cross_run / "tables/lesions_natural_shift.md").read_text()
