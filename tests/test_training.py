"""The training loop: learning, determinism, best epoch, early stopping, bounded-memory data,
checkpoints and exact resume (also of a killed process, a learnt loss parameter and mixup),
and two-phase fine-tuning of the last layer."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

from medimbalance.augment import build_mixup
from medimbalance.checkpoints import Checkpoints
from medimbalance.config import RunConfig, TrainConfig
from medimbalance.data.synthetic import TumoursSpec, make_tumours
from medimbalance.jobs.runtime import configure, environment_info, select_device
from medimbalance.losses import build_loss
from medimbalance.models import build_model
from medimbalance.targets import TargetStats
from medimbalance.training import (
    TensorSet,
    TrainingDivergedError,
    check_divergence,
    evaluate,
    fine_tune_last_layer,
    fit,
    last_layer,
    predict_logits,
    train_one_epoch,
)

CPU = torch.device("cpu")
QUIET = {"on_epoch_end": lambda record: None}


def toy(n_per_class=40, seed=0):
    """Two classes told apart by the mean brightness of a 12x12 image."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    images = rng.normal(90 + 80 * labels[:, None, None, None], 20, size=(labels.size, 1, 12, 12))
    return TensorSet.from_arrays(np.clip(images, 0, 255).astype(np.uint8), labels, CPU, "binary")


def toy3(n=120, seed=0, size=12):
    """Three classes of rising brightness."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], n // 3)
    means = 60 + 60 * labels[:, None, None, None]
    images = np.clip(rng.normal(means, 40, (len(labels), 1, size, size)), 0, 255).astype(np.uint8)
    return TensorSet.from_arrays(images, labels, CPU, "multiclass")


def train_toy(seed, epochs=3, records=None):
    configure(seed, threads=1)
    model = build_model("small_cnn", 1, 2, (12, 12))
    cfg = TrainConfig(epochs=epochs, batch_size=16, lr=3e-3)
    hook = records.append if records is not None else lambda r: None
    loss = torch.nn.CrossEntropyLoss()
    history = fit(model, loss, toy(), toy(seed=1), cfg, seed, task="binary", on_epoch_end=hook)
    return model, history


def fit3(model, cfg, seed=0, **options):
    """``fit`` on the three-class toy (training and validation sets)."""
    loss = torch.nn.CrossEntropyLoss()
    return fit(model, loss, toy3(), toy3(seed=1), cfg, seed, task="multiclass", **options)


def test_normalisation_maps_uint8_to_unit_interval():
    data = TensorSet.from_arrays(
        np.array([[[[0, 255]]]], dtype=np.uint8), np.array([1]), CPU, "binary"
    )
    assert data.images.flatten().tolist() == [-1.0, 1.0] and len(data) == 1


def test_fit_learns_a_separable_toy_and_calls_the_hook():
    records = []
    _model, history = train_toy(seed=0, epochs=4, records=records)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    # the hook sees each epoch's record and the planned number of epochs; the history marks the
    # epoch whose weights were kept
    assert [r.pop("of") for r in records] == [4] * 4
    assert records == [{k: v for k, v in r.items() if k != "kept"} for r in history]
    assert sum(r["kept"] for r in history) == 1
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_balanced_accuracy"] >= 0.95


def test_same_seed_gives_identical_results_on_cpu():
    a, ha = train_toy(seed=5)
    b, hb = train_toy(seed=5)
    c, _ = train_toy(seed=6)
    x = toy(seed=2)
    assert ha == hb
    assert torch.equal(predict_logits(a, x), predict_logits(b, x))
    assert not torch.equal(predict_logits(a, x), predict_logits(c, x))


def test_non_finite_loss_names_epoch_and_batch():
    class NaNLoss(torch.nn.Module):
        def forward(self, logits, targets):
            return logits.sum() * float("nan")

    model = build_model("small_cnn", 1, 2, (12, 12))
    optimizer = torch.optim.Adam(model.parameters())
    with pytest.raises(FloatingPointError, match="at epoch 7, batch 0"):
        train_one_epoch(
            model, NaNLoss(), optimizer, toy(), batch_size=8, generator=torch.Generator(), epoch=7
        )


def test_environment_info_records_versions_device_and_commit(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("LSB_JOBID", raising=False)
    info = environment_info(select_device())
    assert info["device"] == "cpu" and info["packages"]["torch"].startswith("2.13.0")
    assert set(info["git"]) == {"commit", "dirty"}
    assert info["scheduler_job"] == {}
    json.dumps(info)  # serialisable as env.json
    monkeypatch.setenv("SLURM_JOB_ID", "4711")
    assert environment_info(select_device())["scheduler_job"] == {"SLURM_JOB_ID": "4711"}


def test_determinism_is_on_unless_turned_off_and_env_json_says_which(monkeypatch):
    from medimbalance.jobs.runtime import deterministic_setting

    monkeypatch.delenv("MEDIMBALANCE_DETERMINISTIC", raising=False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        configure(0, threads=1)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.backends.cudnn.benchmark
        info = environment_info(torch.device("cpu"))["deterministic"]
        # what CUDA's deterministic matrix products need, set before CUDA starts
        assert info == {
            "algorithms": True,
            "cudnn_benchmark": False,
            "cublas_workspace_config": ":4096:8",
        }
        monkeypatch.setenv("MEDIMBALANCE_DETERMINISTIC", "off")
        configure(0, threads=1)
        assert not torch.are_deterministic_algorithms_enabled()
        assert environment_info(torch.device("cpu"))["deterministic"]["cudnn_benchmark"]
        monkeypatch.setenv("MEDIMBALANCE_DETERMINISTIC", "sometimes")
        with pytest.raises(ValueError, match="MEDIMBALANCE_DETERMINISTIC must be on or off"):
            deterministic_setting()
    finally:
        monkeypatch.delenv("MEDIMBALANCE_DETERMINISTIC", raising=False)
        configure(0, threads=1)


def test_run_config_round_trip_and_unknown_keys():
    d = {
        "study": "s",
        "dataset": "d",
        "task": "multiclass",
        "profile": "p",
        "method": "m",
        "seed": 2,
        "spec": {"resample": "ros", "loss": "ce", "model": "small_cnn", "schedule": "single"},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.01, "weight_decay": 0.0},
    }
    run = RunConfig.from_dict(d)
    assert RunConfig.from_dict(run.to_dict()) == run and run.training.epochs == 2
    assert run.to_dict()["training"]["monitor"] == "balanced_accuracy"  # defaults are recorded
    assert run.to_dict()["spec"]["loss_args"] == {} and run.to_dict()["spec"]["head"] == "linear"
    assert {k: run.to_dict()["spec"][k] for k in d["spec"]} == d["spec"]
    with pytest.raises(ValueError, match=r"methods.m: unknown key\(s\) \['sampling'\]"):
        RunConfig.from_dict({**d, "spec": {**d["spec"], "sampling": "x"}})
    with pytest.raises(ValueError, match=r"training\.lr must be > 0"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match=r"task: unknown None; valid choices: multiclass"):
        RunConfig.from_dict({k: v for k, v in d.items() if k != "task"})


def test_memory_mapped_training_equals_preloaded_training(tmp_path):
    """A set streamed from its .npy file (with oversampling repeats) trains bit-identically."""
    from medimbalance.data.io import load_array, save_array
    from medimbalance.training import MemmapSet, load_set

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    means = 90 + 80 * labels[:, None, None, None]
    images = np.clip(rng.normal(means, 20, (80, 1, 12, 12)), 0, 255)
    save_array(tmp_path / "x.npy", images.astype(np.uint8))
    mapped = load_array(tmp_path / "x.npy", mmap=True)
    rows = np.r_[np.arange(80), [40, 41, 42]]  # repeats, as after random oversampling
    results = []
    for limit in (2**40, 0):  # preloaded, then streamed
        data = load_set(mapped, labels[rows], "cpu", rows=rows, task="binary", preload_limit=limit)
        assert isinstance(data, MemmapSet) == (limit == 0)
        configure(0, threads=1)
        model = build_model("small_cnn", 1, 2, (12, 12))
        config = TrainConfig(epochs=2, batch_size=16)
        loss = torch.nn.CrossEntropyLoss()
        history = fit(model, loss, data, data, config, 0, task="binary", **QUIET)
        results.append((history, predict_logits(model, data)))
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])


def test_history_records_lr_and_best_epoch_weights_are_kept():
    configure(0, 1)
    model = build_model("small_cnn", 1, 3, (12, 12))
    cfg = TrainConfig(epochs=4, batch_size=32, lr=0.01, lr_schedule="step", milestones=(2,))
    history = fit3(model, cfg, **QUIET)
    assert [r["lr"] for r in history] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    best = max(history, key=lambda r: r["val_balanced_accuracy"])
    again = evaluate(model, torch.nn.CrossEntropyLoss(), toy3(seed=1), task="multiclass")
    assert again["val_balanced_accuracy"] == best["val_balanced_accuracy"]


def test_early_stopping_after_patience_keeps_the_best_epoch(monkeypatch):
    import medimbalance.training as training

    losses = iter([5.0, 4.0, 3.0, 3.5, 3.2, 2.0, 1.0])  # best at epoch 3, then two worse
    seen = []

    def scripted(model, loss_fn, data, task):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"val_loss": next(losses), "val_balanced_accuracy": 0.0}

    monkeypatch.setattr(training, "evaluate", scripted)
    configure(0, 1)
    model = build_model("small_cnn", 1, 3, (12, 12))
    cfg = TrainConfig(epochs=30, batch_size=32, lr=0.01, monitor="loss", patience=2)
    history = fit3(model, cfg, **QUIET)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert all(torch.equal(seen[2][k], v) for k, v in model.state_dict().items())  # epoch 3
    assert [r["kept"] for r in history] == [False, False, True, False, False]


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(epochs=5, batch_size=16, lr=0.003, lr_schedule="cosine")

    def run(folder, crash_after=None):
        configure(3, 1)
        model = build_model("small_cnn", 1, 3, (12, 12))

        def hook(record):
            if record["epoch"] == crash_after:
                raise KeyboardInterrupt

        checkpoints = Checkpoints(tmp_path / folder, "run")
        history = fit3(model, cfg, 3, on_epoch_end=hook, checkpoints=checkpoints)
        return history, model.state_dict()

    full_history, full_weights = run("a")
    with pytest.raises(KeyboardInterrupt):
        run("b", crash_after=2)
    saved = torch.load(tmp_path / "b/.checkpoint_train.pt", weights_only=True)
    assert saved["state"]["epoch"] == 2
    resumed_history, resumed_weights = run("b")
    assert resumed_history == full_history
    assert all(torch.equal(full_weights[k], resumed_weights[k]) for k in full_weights)


def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path, caplog):
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.003)
    configure(3, 1)
    fit3(
        build_model("small_cnn", 1, 3, (12, 12)),
        cfg,
        3,
        checkpoints=Checkpoints(tmp_path, "a"),
        **QUIET,
    )
    caplog.set_level("INFO", logger="medimbalance.checkpoints")
    configure(3, 1)
    model = build_model("small_cnn", 1, 3, (12, 12))
    history = fit3(model, cfg, 3, checkpoints=Checkpoints(tmp_path, "b"), **QUIET)
    assert [r["epoch"] for r in history] == [1, 2]  # trained afresh, not resumed at epoch 2
    assert "written by a run with other settings, data or library code" in caplog.text


CHILD = """
import json, sys, hashlib
sys.path.insert(0, {tests!r})
import torch
from test_training import toy3
from medimbalance.checkpoints import Checkpoints
from medimbalance.config import TrainConfig
from medimbalance.models import build_model
from medimbalance.jobs.runtime import configure
from medimbalance.training import fit
configure(0, 1)
model = build_model("small_cnn", 1, 3, (16, 16))
cfg = TrainConfig(epochs=10, batch_size=64, lr=0.003, lr_schedule="step", milestones=(5,))
history = fit(model, torch.nn.CrossEntropyLoss(), toy3(3000, size=16), toy3(300, 1, 16), cfg, 0,
              task="multiclass", on_epoch_end=lambda r: print(r["epoch"], flush=True),
              checkpoints=Checkpoints(sys.argv[1], "run"))
weights = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values()))
json.dump({{"history": history, "weights": weights.hexdigest()}}, open(sys.argv[2], "w"))
"""


def test_killed_training_process_resumes_to_the_same_result(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(REPO / "tests")))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def child(folder, result):
        return [sys.executable, str(script), str(tmp_path / folder), str(tmp_path / result)]

    subprocess.run(child("full", "full.json"), check=True, env=env, timeout=300)
    process = subprocess.Popen(
        child("killed", "killed.json"), env=env, stdout=subprocess.PIPE, text=True
    )
    for line in process.stdout:  # one line per finished epoch
        if int(line) == 3:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    saved = torch.load(tmp_path / "killed/.checkpoint_train.pt", weights_only=True)
    assert 3 <= saved["state"]["epoch"] < 10 and not (tmp_path / "killed.json").exists()
    subprocess.run(child("killed", "killed.json"), check=True, env=env, timeout=300)
    full = json.loads((tmp_path / "full.json").read_text())
    resumed = json.loads((tmp_path / "killed.json").read_text())
    assert resumed == full


class Interrupt(Exception):
    pass


def std_data(n, seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(1, 5, n).astype(np.float32)
    images = (rng.standard_normal((n, 1, 16, 16)) * scale[:, None, None, None]).astype(np.float32)
    return images, images.reshape(n, -1).std(1)


@pytest.mark.parametrize("task", ["regression", "segmentation"])
def test_interrupted_training_with_a_learnt_loss_or_mixup_resumes_exactly(task, tmp_path):
    if task == "regression":
        images, targets = std_data(48, 1)
        make = lambda: build_model("regression_cnn", 1, 1, (16, 16))  # noqa: E731
        loss = lambda: build_loss("balanced_mse", TargetStats(values=targets))  # noqa: E731
        mix = None
    else:
        images, targets = make_tumours(TumoursSpec(n=40, shape=(16, 16), channels=1))
        make = lambda: build_model("unet", 1, 4, (16, 16))  # noqa: E731
        loss = lambda: build_loss("dice_ce", TargetStats((1,) * 4, 4))  # noqa: E731
        mix = build_mixup("mixup", 0.4, 4)  # draws from the training generator
    train = TensorSet.from_arrays(images[:32], targets[:32], CPU, task)
    val = TensorSet.from_arrays(images[32:], targets[32:], CPU, task)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=0.01)

    def trained(checkpoints=None, stop_after=None):
        torch.manual_seed(0)
        model, loss_fn = make(), loss()

        def hook(record):
            if record["epoch"] == stop_after:
                raise Interrupt

        history = fit(
            model,
            loss_fn,
            train,
            val,
            cfg,
            0,
            task=task,
            on_epoch_end=hook,
            checkpoints=checkpoints,
            mix=mix,
        )
        return model, loss_fn, history

    model, loss_fn, history = trained()
    checkpoints = Checkpoints(tmp_path, "run")
    with pytest.raises(Interrupt):
        trained(checkpoints, stop_after=1)
    resumed, resumed_loss, resumed_history = trained(checkpoints)
    assert resumed_history == history
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    if task == "regression":  # σ is learnt and restored with the checkpoint
        assert loss_fn.sigma.item() != 1.0 and resumed_loss.sigma.item() == loss_fn.sigma.item()


def test_two_phase_changes_only_the_last_layer():
    configure(0, 1)
    model = build_model("small_cnn", 1, 3, (12, 12))
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.01)
    fit3(model, cfg, **QUIET)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = last_layer(model)
    head_names = {n for n, p in model.named_parameters() if any(p is q for q in head.parameters())}
    imbalanced = toy3(seed=2)
    keep = torch.cat([torch.arange(0, 40), torch.arange(40, 45), torch.arange(80, 82)])
    imbalanced = TensorSet(imbalanced.images[keep], imbalanced.labels[keep])
    loss = torch.nn.CrossEntropyLoss()
    history = fine_tune_last_layer(
        model, loss, imbalanced, toy3(seed=1), cfg, 0, task="multiclass", **QUIET
    )
    assert [r["phase"] for r in history] == ["finetune", "finetune"]
    after = model.state_dict()
    for name, value in before.items():
        if name in head_names:
            assert not torch.equal(value, after[name]), name
        else:
            assert torch.equal(value, after[name]), name  # parameters and batch-norm buffers
    assert all(p.requires_grad for p in model.parameters())


def test_a_diverging_but_finite_run_fails_naming_the_epoch_and_factor():
    # Adam at lr 1e6: the loss explodes by orders of magnitude yet may stay finite
    configure(0, 1)
    cfg = TrainConfig(epochs=6, batch_size=16, lr=1e6)
    with pytest.raises(TrainingDivergedError, match="training diverged") as raised:
        fit3(build_model("small_cnn", 1, 3, (12, 12)), cfg, **QUIET)
    assert "at phase train, epoch 1 is more than" in str(raised.value)


def test_divergence_checks_by_hand():
    ok, cfg = [torch.nn.Parameter(torch.ones(2))], TrainConfig(divergence_factor=1000)
    check_divergence("epoch 2", 1999.0, 2.0, ok, cfg)
    with pytest.raises(TrainingDivergedError, match=r"2001 at epoch 2 is more than .* 1000 times"):
        check_divergence("epoch 2", 2001.0, 2.0, ok, cfg)
    check_divergence("epoch 2", 2001.0, 2.0, ok, TrainConfig(divergence_factor=0))  # off
    check_divergence("epoch 2", 2001.0, -2.0, ok, cfg)  # no scale from a negative loss
    inf = [torch.nn.Parameter(torch.tensor([1.0, float("inf")]))]
    with pytest.raises(TrainingDivergedError, match="parameters are NaN or infinite after"):
        check_divergence("epoch 1", 1.0, 1.0, inf, cfg)


@pytest.mark.parametrize("rho, expected", [(0.0, 1.4), (0.5, 1.5)])
def test_sharpness_aware_step_by_hand(rho, expected):
    # L(w) = (w·1 − 3)², w = 1: g = −4; SAM moves w to 1 − ρ, where the gradient is
    # 2(−2 − ρ) = −5 for ρ = 0.5, and SGD (lr 0.1) steps from w = 1 with it.
    from medimbalance.training import train_one_epoch

    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    data = TensorSet(torch.ones(1, 1), torch.full((1, 1), 3.0))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    mse = torch.nn.MSELoss()
    train_one_epoch(
        model, mse, optimizer, data, batch_size=1, generator=torch.Generator(), epoch=1, sam_rho=rho
    )
    assert model.weight.item() == pytest.approx(expected)
