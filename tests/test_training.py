import json

import numpy as np
import pytest
import torch

from medimbalance.config import RunConfig, TrainConfig
from medimbalance.jobs.runtime import configure, environment_info, select_device
from medimbalance.models import build_model
from medimbalance.training import TensorSet, fit, predict_logits, save_checkpoint, train_one_epoch


def toy(n_per_class=40, seed=0):
    """Two classes told apart by the mean brightness of a 12x12 image."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    images = rng.normal(90 + 80 * labels[:, None, None, None], 20, size=(labels.size, 1, 12, 12))
    return TensorSet.from_arrays(
        np.clip(images, 0, 255).astype(np.uint8), labels, torch.device("cpu")
    )


def train_toy(seed, epochs=3, records=None):
    configure(seed, threads=1)
    model = build_model("small_cnn", 1, 2, (12, 12))
    history = fit(
        model, torch.nn.CrossEntropyLoss(), toy(), toy(seed=1),
        TrainConfig(epochs=epochs, batch_size=16, lr=3e-3), seed,
        on_epoch_end=(records.append if records is not None else lambda r: None),
    )  # fmt: skip
    return model, history


def test_normalisation_maps_uint8_to_unit_interval():
    data = TensorSet.from_arrays(np.array([[[[0, 255]]]], dtype=np.uint8), np.array([1]), "cpu")
    assert data.images.flatten().tolist() == [-1.0, 1.0] and len(data) == 1


def test_fit_learns_a_separable_toy_and_calls_the_hook():
    records = []
    _model, history = train_toy(seed=0, epochs=4, records=records)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4] and records == history
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
        train_one_epoch(model, NaNLoss(), optimizer, toy(), 8, torch.Generator().manual_seed(0), 7)


def test_checkpoint_embeds_config_and_reloads(tmp_path):
    model, _ = train_toy(seed=0, epochs=1)
    path = tmp_path / "model.pt"
    save_checkpoint(str(path), model, {"method": "baseline"}, {"classes": ["a", "b"]})
    state = torch.load(path, weights_only=True)
    assert state["run_config"] == {"method": "baseline"} and state["meta"]["classes"] == ["a", "b"]
    fresh = build_model("small_cnn", 1, 2, (12, 12))
    fresh.load_state_dict(state["state_dict"])
    x = toy(seed=3)
    assert torch.equal(predict_logits(fresh, x), predict_logits(model, x))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


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


def test_run_config_round_trip_and_unknown_keys():
    d = {
        "study": "s", "dataset": "d", "profile": "p", "method": "m", "seed": 2,
        "spec": {"resample": "ros", "loss": "ce", "model": "small_cnn", "schedule": "single"},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.01, "weight_decay": 0.0},
    }  # fmt: skip
    run = RunConfig.from_dict(d)
    assert RunConfig.from_dict(run.to_dict()) == run and run.training.epochs == 2
    assert run.to_dict()["training"]["monitor"] == "balanced_accuracy"  # defaults are recorded
    assert run.to_dict()["spec"]["loss_args"] == {} and run.to_dict()["spec"]["head"] == "linear"
    assert {k: run.to_dict()["spec"][k] for k in d["spec"]} == d["spec"]
    with pytest.raises(ValueError, match=r"methods.m: unknown key\(s\) \['sampling'\]"):
        RunConfig.from_dict({**d, "spec": {**d["spec"], "sampling": "x"}})
    with pytest.raises(ValueError, match=r"training\.lr must be > 0"):
        TrainConfig(lr=0)


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
        data = load_set(mapped, labels[rows], "cpu", rows=rows, preload_limit=limit)
        assert isinstance(data, MemmapSet) == (limit == 0)
        configure(0, threads=1)
        model = build_model("small_cnn", 1, 2, (12, 12))
        config = TrainConfig(epochs=2, batch_size=16)
        history = fit(model, torch.nn.CrossEntropyLoss(), data, data, config, 0, lambda r: None)
        results.append((history, predict_logits(model, data)))
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])
