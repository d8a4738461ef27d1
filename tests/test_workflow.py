"""The whole DAG through real Snakemake on a tiny config, plus dry runs of every shipped config."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from browser import CHROMIUM, crawl_report
from conftest import REPO, run_snakemake, run_study

TINY = REPO / "tests" / "configs" / "tiny.yaml"
pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = run_study(tmp_path_factory.mktemp("tiny"), TINY)
    report = run_snakemake(
        "--configfile", str(TINY), "--directory", str(workdir), "--report", "report.html"
    )
    assert report.returncode == 0, report.stderr[-4000:]
    return workdir


def test_tables_have_methods_as_rows_and_metrics_as_columns(tiny_run):
    for profile in ("balanced", "longtail"):
        csv = pd.read_csv(tiny_run / f"results/tiny/tables/lesions_{profile}.csv")
        methods = ["baseline", "ros", "rus", "smote", "sampler_aug", "cdcgan", "disalign"]
        assert list(dict.fromkeys(csv["method"])) == methods  # tidy: method × metric
        assert list(csv.columns) == ["method", "metric", "mean", "std", "n", "flagged"]
        cells = csv.set_index(["method", "metric"])
        groups = {f"{g}_shot_accuracy" for g in ("many", "medium", "few")}  # thirds: 2, 2, 1
        assert groups | {"average_precision"} <= set(csv["metric"]) and (csv["n"] == 2).all()
        for metric in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "recall[grade_4]"):
            assert cells.xs(metric, level="metric")["mean"].between(0, 1).all()
        md = (tiny_run / f"results/tiny/tables/lesions_{profile}.md").read_text().splitlines()
        header = [c.strip() for c in md[0].strip("|").split("|")]
        assert header[:3] == ["method", "Balanced accuracy (%)", "Accuracy (%)"]
        assert "Recall grade_4 (%)" in header and len(md) == 11  # table, blank, caption
        assert all("±" in line for line in md[2:9]) and "**" in "".join(md[2:9])
        assert "Test split of lesions (n = " in md[-1] and "2 seeds (0, 1)" in md[-1]


@pytest.mark.parametrize(
    "table, columns",
    [
        ("findings_natural", ["auroc", "average_precision", "micro_auroc", "auroc[finding_1]"]),
        (
            "tumours_natural",
            ["dice", "sensitivity", "precision", "dice[enhancing_tumour]", "hd95[tumour_core]"],
        ),
        ("std_low", ["mse", "mae", "percentage_error", "bias"]),
    ],
)
def test_every_task_has_its_table(tiny_run, table, columns):
    csv = pd.read_csv(tiny_run / f"results/tiny/tables/{table}.csv")
    assert csv["method"].nunique() == 1
    assert set(columns) <= set(csv["metric"])
    assert (csv.set_index("metric").loc[columns, "n"] == 2).all()
    assert "dice[background]" not in set(csv["metric"])
    run = tiny_run / f"results/tiny/runs/{table.replace('_', '/', 1)}/{csv['method'][0]}/seed0"
    with np.load(run / "predictions.npz") as p:
        assert p["test_logits"].shape[0] == p["test_targets"].shape[0]
    config = json.loads((run / "run_config.json").read_text())
    monitors = {"findings_natural": "auroc", "tumours_natural": "dice", "std_low": "mse"}
    assert config["training"]["monitor"] == monitors[table]
    assert (tiny_run / f"results/tiny/figures/{table}_confusion.png").exists() is False


def test_every_run_has_its_outputs_and_recorded_indices(tiny_run):
    data = tiny_run / "results/tiny/data/lesions"
    splits = json.loads((data / "splits.json").read_text())
    assert sorted(splits) == ["seed", "test", "train", "val"]
    train_labels = np.load(data / "train_targets.npy")
    kept = np.load(data / "longtail/train_indices.npy")
    # 24 per class, half for training -> n_max = 12; mu = 0.2 -> 12, 8, 5, 3, 2
    assert np.bincount(train_labels[kept]).tolist() == [12, 8, 5, 3, 2]
    for method, expected in (("baseline", [12, 8, 5, 3, 2]), ("ros", [12] * 5), ("rus", [2] * 5)):
        run = tiny_run / f"results/tiny/runs/lesions/longtail/{method}/seed1"
        # A method that does not resample has no resample job: it trains on the profile's rows.
        indices = kept if method == "baseline" else np.load(run / "train_indices.npy")
        assert np.bincount(train_labels[indices]).tolist() == expected
        names = {p.name for p in run.iterdir()}
        assert {
            "model.pt",
            "history.json",
            "predictions.npz",
            "metrics.json",
            "env.json",
            "run_config.json",
        } <= names
        assert ({"class_counts.tsv", "train_indices.npy"} <= names) == (method != "baseline")
        config = json.loads((run / "run_config.json").read_text())
        assert config["method"] == method and config["seed"] == 1
        assert config["spec"]["resample"] == {"baseline": "none"}.get(method, method)
        env = json.loads((run / "env.json").read_text())
        assert env["device"] == "cpu" and env["packages"]["monai"] == "1.6.1"


def test_a_profile_can_shape_the_validation_split_like_its_training_set(tiny_run):
    data = tiny_run / "results/tiny/data/lesions"
    val_labels = np.load(data / "val_targets.npy")
    assert np.bincount(val_labels).tolist() == [6] * 5
    rows = np.load(data / "longtail/val_indices.npy")
    # training 12, 8, 5, 3, 2 of 30: the largest subset of 6 per class in those proportions is
    # floor(15 x (12, 8, 5, 3, 2) / 30) = 6, 4, 2, 1, 1
    assert np.bincount(val_labels[rows]).tolist() == [6, 4, 2, 1, 1]
    counts = pd.read_csv(data / "longtail/val_class_counts.tsv", sep="\t")
    assert counts["kept"].tolist() == [6, 4, 2, 1, 1]
    for method in ("baseline", "smote"):
        predictions = np.load(
            tiny_run / f"results/tiny/runs/lesions/longtail/{method}/seed0/predictions.npz"
        )
        assert np.array_equal(predictions["val_targets"], val_labels[rows])
        assert len(predictions["val_logits"]) == len(rows)
    # a profile without the key validates on the whole split
    assert not (data / "balanced/val_indices.npy").exists()
    balanced = np.load(
        tiny_run / "results/tiny/runs/lesions/balanced/baseline/seed0/predictions.npz"
    )
    assert np.array_equal(balanced["val_targets"], val_labels)
    # regression: the validation targets follow the profile's U(1, 5), the pool's span 1 to 10
    std = tiny_run / "results/tiny/data/std"
    pool = np.load(std / "val_targets.npy")
    shaped = pool[np.load(std / "low/val_indices.npy")]
    assert pool.max() > 6 and 0 < len(shaped) < len(pool) and shaped.max() <= 5


def test_synthesizers_add_minority_images_and_the_gan_is_measured(tiny_run):
    longtail = tiny_run / "results/tiny/runs/lesions/longtail"
    kept = np.load(tiny_run / "results/tiny/data/lesions/longtail/train_indices.npy")
    for method in ("smote", "cdcgan"):
        run = longtail / f"{method}/seed0"
        assert np.array_equal(np.load(run / "train_indices.npy"), kept)  # every real image
        with np.load(run / "synthetic.npz") as synthetic:
            assert synthetic["images"].shape == (30, 1, 16, 16)  # 12·5 − 30 real images
            assert synthetic["images"].dtype == np.uint8
            assert np.bincount(synthetic["targets"]).tolist() == [0, 4, 7, 9, 10]
        counts = pd.read_csv(run / "class_counts.tsv", sep="\t")
        assert counts["after"].tolist() == [12] * 5
    gan = tiny_run / "results/tiny/gans/lesions/longtail/cdcgan"
    assert {"generator.pt", "history.json"} <= {p.name for p in gan.iterdir()}
    assert not list(gan.glob(".checkpoint*"))  # removed once the generator is saved
    table = (tiny_run / "results/tiny/tables/lesions_longtail_cdcgan_synthesis.md").read_text()
    assert "| all | 30 |" in table and "train on synthetic (TSTR)" in table
    features = tiny_run / "results/tiny/features/lesions/longtail"
    assert np.load(features / "train_embeddings.npy").shape == (60, 64)  # the whole split
    log = (tiny_run / "logs/tiny/resample/lesions_longtail_smote_seed0.log").read_text()
    assert "smote: neighbours in the network embedding" in log
    with np.load(longtail / "ros/seed0/synthetic.npz") as synthetic:  # no new images
        assert synthetic["images"].shape == (0, 1, 16, 16)


def test_calibration_and_estimation_under_shift(tiny_run):
    tables = tiny_run / "results/tiny/tables"
    calibration = pd.read_csv(tables / "lesions_longtail_calibration.csv")
    assert list(dict.fromkeys(calibration["method"])) == [
        "baseline",
        "ros",
        "rus",
        "smote",
        "sampler_aug",
        "cdcgan",
        "disalign",
    ]
    scalers = list(dict.fromkeys(calibration["scaler"]))
    assert scalers == ["none", "temperature", "vector", "class_temperature"]
    assert calibration.loc[calibration["metric"] == "ece", "mean"].between(0, 1).all()
    metrics = json.loads(
        (tiny_run / "results/tiny/runs/lesions/longtail/baseline/seed0/metrics.json").read_text()
    )
    assert len(metrics["calibration"]["none"]["reliability"]["count"]) == 10  # calibration_bins
    for table, metric in (("lesions_longtail", "accuracy"), ("tumours_natural", "dice")):
        shift = pd.read_csv(tables / f"{table}_shift.csv")
        assert set(shift["kind"]) == {"none", "noise", "bias_field"}
        assert set(shift["severity"]) == {0, 2, 4} and shift["seed"].nunique() == 2
        assert set(shift["estimator"]) >= {"AC", "ATC", "CS-ATC", "CS-TS-ATC"}
        md = (tables / f"{table}_shift.md").read_text()
        assert f"mean absolute error of the estimated test {metric}" in md
        assert "| CS-TS-ATC |" in md
    assert not (tables / "std_low_shift.md").exists()  # regression is not estimated
    seg = pd.read_csv(tables / "tumours_natural.csv")
    assert {"hd95", "dice"} <= set(seg["metric"])
    assert "HD95 (mm)" in (tables / "tumours_natural.md").read_text()
    reg = pd.read_csv(tables / "std_low.csv")
    assert {"mae_few", "uniform_guess_percentage_error"} <= set(reg["metric"])
    text = (tables / "std_low.md").read_text()
    assert "| uniform random guess |" in text and "Bias (%)" in text
    assert "uniformly over [" in text
    cls = pd.read_csv(tables / "lesions_longtail.csv")
    assert {"mcc", "g_mean"} <= set(cls["metric"])


def test_report_contains_tables_and_figures(tiny_run):
    html = (tiny_run / "report.html").read_text()
    for name in (
        "lesions_longtail.csv",
        "lesions_balanced.html",
        "lesions_longtail_class_distribution.png",
        "lesions_balanced_confusion.png",
        "lesions_longtail_cdcgan_synthesis.html",
        "lesions_longtail_cdcgan_samples.png",
        "lesions_longtail_calibration.html",
        "lesions_longtail_reliability.png",
        "lesions_longtail_shift.html",
        "tumours_natural_shift.html",
        "tumours_natural_asym_focal_seed1_logits.png",
        "sweep.png",
    ):
        assert name in html
    assert "Paper figures" in html
    for figure in (tiny_run / "results/tiny/figures").rglob("*.png"):
        assert figure.read_bytes()[:4] == b"\x89PNG"


def test_the_reports_texts_come_from_the_studys_config(tiny_run):
    html = (tiny_run / "report.html").read_text()
    # the landing text lists each dataset's own profiles and methods, not every configured one
    assert "profiles natural; methods asym_focal; 1 epochs per phase" in html
    assert "profiles low; methods balanced_mse" in html
    # each table's caption names its task's metrics; the configured bins, kinds and severities
    assert "Columns: MSE (the headline metric), MAE" in html
    assert "Columns: mean foreground Dice (the headline metric)" in html
    assert "Columns: macro AUROC (the headline metric)" in html
    assert "of\\n10 equal-width" in html and "15 equal-width" not in html
    assert "shifted synthetically (noise, bias_field)\\nat severities 2, 4" in html


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium: make test installs Debian's chromium when run as root (apt-get)",
)
def test_every_report_category_and_entry_opens_without_a_browser_error(tiny_run, tmp_path):
    record = crawl_report(tiny_run / "report.html", tmp_path)
    assert record["errors"] == []
    visited = set(record["visited"])
    # the datasets use different profiles: each category must still open, with every entry
    for entry in (
        "Tables > lesions, longtail",
        "Tables > std, low",
        "Calibration > lesions, balanced",
        "Figures > Class distributions",
        "Figures > Logit distributions",
        "Performance estimation",
        "Synthesis > lesions, longtail",
        "Paper figures",
    ):
        assert entry in visited
    assert sum(" > result " in v for v in visited) >= 10  # the figures, opened one by one


def test_a_declared_sweep_figure_plots_each_methods_mean_over_seeds(tiny_run):
    results = tiny_run / "results/tiny"
    points = pd.read_csv(results / "figures/paper/sweep.csv")
    assert points["method"].tolist() == ["baseline"] * 2 + ["ros"] * 2
    # imbalance factors of the kept training sets: 12 / 12 and 12 / 2
    assert points["x"].tolist() == [1.0, 6.0, 1.0, 6.0]
    for _, point in points.iterrows():
        recalls = []
        for seed in (0, 1):
            run = results / f"runs/lesions/{point['profile']}/{point['method']}/seed{seed}"
            metrics = json.loads((run / "metrics.json").read_text())
            recalls.append(metrics["per_class"]["recall"][4])  # grade_4
        assert point["mean"] == pytest.approx(np.mean(recalls))
        assert point["std"] == pytest.approx(np.std(recalls, ddof=1))
        assert point["n_seeds"] == 2
    assert (results / "figures/paper/sweep.pdf").read_bytes()[:5] == b"%PDF-"


def test_rerun_is_a_no_op(tiny_run):
    again = run_snakemake("-n", "--configfile", str(TINY), "--directory", str(tiny_run))
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_failed_job_leaves_no_output_and_names_the_problem(tmp_path):
    shutil.copy(TINY, tmp_path / "c.yaml")
    config = (tmp_path / "c.yaml").read_text().replace("mu: 0.2", "mu: 0.01")
    (tmp_path / "c.yaml").write_text(config)  # 12 * 0.01^(3/4) < 1: grade 3 would vanish
    done = run_snakemake(
        "--cores",
        "1",
        "--configfile",
        str(tmp_path / "c.yaml"),
        "--directory",
        str(tmp_path),
        "results/tiny/data/lesions/longtail/class_counts.tsv",
    )
    assert done.returncode != 0
    log = (tmp_path / "logs/tiny/impose_profile/lesions_longtail.log").read_text()
    assert "leaves class 'grade_3' with no training images" in log
    assert not (tmp_path / "results/tiny/data/lesions/longtail").exists() or not any(
        (tmp_path / "results/tiny/data/lesions/longtail").iterdir()
    )


@pytest.mark.parametrize(
    "configfile", [None, *sorted(str(p) for p in (REPO / "config" / "studies").glob("*.yaml"))]
)
def test_dry_run_of_shipped_configs(configfile, tmp_path):
    args = ["-n", "--quiet", "--directory", str(tmp_path)]
    # the default config/config.yaml, and the files studies name relative to the repository
    shutil.copytree(REPO / "config", tmp_path / "config")
    if configfile is not None:
        args += ["--configfile", configfile]
    done = run_snakemake(*args)
    assert done.returncode == 0, done.stderr[-3000:]


def test_lint_is_clean():
    done = run_snakemake("--lint")
    assert done.returncode == 0 and "good condition" in done.stdout + done.stderr, done.stdout


def test_a_decoupled_method_reuses_its_stage1_run(tiny_run):
    runs = tiny_run / "results/tiny/runs/lesions/longtail"
    history = json.loads((runs / "disalign/seed0/history.json").read_text())["epochs"]
    assert {r["phase"] for r in history} == {"stage2"}
    log = (tiny_run / "logs/tiny/train/lesions_longtail_disalign_seed0.log").read_text()
    assert "stage 2 disalign on the frozen features of baseline" in log
    config = json.loads((runs / "disalign/seed0/run_config.json").read_text())
    assert config["spec"]["loss"] == "grw_ce" and config["spec"]["model"] == "small_cnn"
    import torch

    from medimbalance.experiment import load_trained_model
    from medimbalance.models import DisAlignClassifier
    from medimbalance.training import last_layer

    meta = json.loads((tiny_run / "results/tiny/data/lesions/meta.json").read_text())
    model, _ = load_trained_model(runs / "disalign/seed0/model.pt", meta)
    assert isinstance(last_layer(model), DisAlignClassifier)
    stage1, _ = load_trained_model(runs / "baseline/seed0/model.pt", meta)
    trained, first = model.state_dict(), stage1.state_dict()
    backbone = [k for k in first if not k.startswith("final.")]  # MONAI Classifier's head
    assert backbone and all(torch.equal(trained[k], first[k]) for k in backbone)
