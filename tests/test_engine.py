"""Training engine: schedules, best epoch, early stopping, checkpoints and resume, two-phase."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO

from medimbalance.config import TrainConfig
from medimbalance.jobs.runtime import configure
from medimbalance.models import build_model
from medimbalance.schedules import lr_factor
from medimbalance.training import TensorSet, fine_tune_last_layer, fit, last_layer


def toy(n=120, seed=0, size=12):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], n // 3)
    means = 60 + 60 * labels[:, None, None, None]
    images = np.clip(rng.normal(means, 40, (len(labels), 1, size, size)), 0, 255).astype(np.uint8)
    return TensorSet.from_arrays(images, labels, torch.device("cpu"))


def test_lr_factors():
    step = TrainConfig(epochs=10, lr_schedule="step", milestones=(4, 7), gamma=0.1)
    assert [round(lr_factor(step, e), 6) for e in range(9)] == [
        1,
        1,
        1,
        1,
        0.1,
        0.1,
        0.1,
        0.01,
        0.01,
    ]
    warm = TrainConfig(epochs=10, lr_schedule="cosine", warmup_epochs=2)
    factors = [lr_factor(warm, e) for e in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[6] == pytest.approx(0.5 * (1 + np.cos(np.pi * 4 / 8)))
    with pytest.raises(ValueError, match=r"training\.lr_schedule: unknown 'linear'"):
        TrainConfig(lr_schedule="linear")


def test_history_records_lr_and_best_epoch_weights_are_kept():
    configure(0, 1)
    model = build_model("small_cnn", 1, 3, (12, 12))
    cfg = TrainConfig(epochs=4, batch_size=32, lr=0.01, lr_schedule="step", milestones=(2,))
    history = fit(model, torch.nn.CrossEntropyLoss(), toy(), toy(seed=1), cfg, 0, lambda r: None)
    assert [r["lr"] for r in history] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    best = max(history, key=lambda r: r["val_balanced_accuracy"])
    from medimbalance.training import evaluate

    again = evaluate(model, torch.nn.CrossEntropyLoss(), toy(seed=1))
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
    history = fit(model, torch.nn.CrossEntropyLoss(), toy(), toy(seed=1), cfg, 0, lambda r: None)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5]
    assert all(torch.equal(seen[2][k], v) for k, v in model.state_dict().items())  # epoch 3


def test_resume_after_a_crash_equals_an_uninterrupted_run(tmp_path):
    cfg = TrainConfig(epochs=5, batch_size=16, lr=0.003, lr_schedule="cosine")

    def run(checkpoint, crash_after=None):
        configure(3, 1)
        model = build_model("small_cnn", 1, 3, (12, 12))

        def hook(record):
            if record["epoch"] == crash_after:
                raise KeyboardInterrupt

        history = fit(model, torch.nn.CrossEntropyLoss(), toy(), toy(seed=1), cfg, 3, hook,
                      checkpoint=checkpoint)  # fmt: skip
        return history, model.state_dict()

    full_history, full_weights = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", crash_after=2)
    assert torch.load(tmp_path / "b.pt", weights_only=True)["epoch"] == 2
    resumed_history, resumed_weights = run(tmp_path / "b.pt")
    assert resumed_history == full_history
    assert all(torch.equal(full_weights[k], resumed_weights[k]) for k in full_weights)


CHILD = """
import json, sys, hashlib
sys.path.insert(0, {tests!r})
import torch
from test_engine import toy
from medimbalance.config import TrainConfig
from medimbalance.models import build_model
from medimbalance.jobs.runtime import configure
from medimbalance.training import fit
configure(0, 1)
model = build_model("small_cnn", 1, 3, (16, 16))
cfg = TrainConfig(epochs=10, batch_size=64, lr=0.003, lr_schedule="step", milestones=(5,))
history = fit(model, torch.nn.CrossEntropyLoss(), toy(3000, size=16), toy(300, 1, 16), cfg, 0,
              lambda r: print(r["epoch"], flush=True), checkpoint=sys.argv[1])
weights = hashlib.sha256(b"".join(v.numpy().tobytes() for v in model.state_dict().values()))
json.dump({{"history": history, "weights": weights.hexdigest()}}, open(sys.argv[2], "w"))
"""


def test_killed_training_process_resumes_to_the_same_result(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(REPO / "tests")))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}

    def child(checkpoint, result):
        return [sys.executable, str(script), str(tmp_path / checkpoint), str(tmp_path / result)]

    subprocess.run(child("full.pt", "full.json"), check=True, env=env, timeout=300)
    process = subprocess.Popen(child("killed.pt", "killed.json"), env=env,
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    for line in process.stdout:  # one line per finished epoch
        if int(line) == 3:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    epoch = torch.load(tmp_path / "killed.pt", weights_only=True)["epoch"]
    assert 3 <= epoch < 10 and not (tmp_path / "killed.json").exists()
    subprocess.run(child("killed.pt", "killed.json"), check=True, env=env, timeout=300)
    full = json.loads((tmp_path / "full.json").read_text())
    resumed = json.loads((tmp_path / "killed.json").read_text())
    assert resumed == full


def test_two_phase_changes_only_the_last_layer():
    configure(0, 1)
    model = build_model("small_cnn", 1, 3, (12, 12))
    cfg = TrainConfig(epochs=2, batch_size=32, lr=0.01)
    fit(model, torch.nn.CrossEntropyLoss(), toy(), toy(seed=1), cfg, 0, lambda r: None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = last_layer(model)
    head_names = {n for n, p in model.named_parameters() if any(p is q for q in head.parameters())}
    imbalanced = toy(seed=2)
    keep = torch.cat([torch.arange(0, 40), torch.arange(40, 45), torch.arange(80, 82)])
    imbalanced = TensorSet(imbalanced.images[keep], imbalanced.labels[keep])
    history = fine_tune_last_layer(model, torch.nn.CrossEntropyLoss(), imbalanced, toy(seed=1),
                                   cfg, 0, on_epoch_end=lambda r: None)  # fmt: skip
    assert [r["phase"] for r in history] == ["finetune", "finetune"]
    after = model.state_dict()
    for name, value in before.items():
        if name in head_names:
            assert not torch.equal(value, after[name]), name
        else:
            assert torch.equal(value, after[name]), name  # parameters and batch-norm buffers
    assert all(p.requires_grad for p in model.parameters())
