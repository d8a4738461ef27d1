"""Synthetic domain shifts and estimation under them (medimbalance.shifts), and loading a
saved model for data it was not trained on."""

import numpy as np
import pytest
import torch

from medimbalance.checkpoints import save_model
from medimbalance.estimation import ESTIMATORS
from medimbalance.experiment import load_trained_model
from medimbalance.models import build_model
from medimbalance.shifts import SHIFT_KINDS, evaluate_under_shift, shift_images


@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_shifts_are_seeded_keep_the_range_and_grow_with_severity(kind):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24]
    disc = ((yy - 12) ** 2 + (xx - 12) ** 2 < 40).astype(np.float32)
    images = torch.as_tensor(
        np.stack([disc * 2 - 1 + rng.normal(0, 0.05, disc.shape)] * 6)[:, None]
    )
    changes = []
    for severity in (1, 3, 5):
        out = shift_images(images, kind, severity, seed=4)
        assert torch.equal(out, shift_images(images, kind, severity, seed=4))
        assert out.shape == images.shape
        changes.append(float((out - images).abs().mean()))
    assert 0 < changes[0] < changes[1] < changes[2], changes
    if kind in ("contrast", "blur"):  # deterministic and bounded by the image's range
        assert out.min() >= images.min() - 1e-5 and out.max() <= images.max() + 1e-5
    with pytest.raises(ValueError, match=r"shift severity must lie in 1\.\.5"):
        shift_images(images, kind, 6)


def test_unknown_shift_is_refused():
    with pytest.raises(ValueError, match="unknown shift 'rain'; valid choices: noise, blur"):
        shift_images(torch.zeros(1, 1, 8, 8), "rain", 1)


def test_estimation_under_shift_reports_truth_and_every_estimator():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    images = (rng.normal(0, 0.3, (60, 1, 16, 16)) + labels[:, None, None, None]).astype(np.float32)
    model = build_model("small_cnn", 1, 2, (16, 16))
    model.eval()
    with torch.no_grad():
        val_logits = model(torch.as_tensor(images[:30])).numpy()
    report = evaluate_under_shift(
        model,
        images[30:],
        labels[30:],
        val_logits,
        labels[:30],
        task="binary",
        classes=["a", "b"],
        kinds=["noise", "blur"],
        severities=[1, 5],
    )
    assert report["metric"] == "accuracy"
    assert [(r["kind"], r["severity"]) for r in report["results"]] == [
        ("none", 0),
        ("noise", 1),
        ("noise", 5),
        ("blur", 1),
        ("blur", 5),
    ]
    assert all(
        0 <= r["true"] <= 1 and len(r["estimates"]) == len(ESTIMATORS) for r in report["results"]
    )
    with pytest.raises(ValueError, match="covers classification and segmentation, not regression"):
        evaluate_under_shift(
            model, images, labels, val_logits, labels, task="regression", classes=["y"]
        )


def test_a_model_meets_only_the_data_it_was_trained_for(tmp_path):
    meta = {"classes": ["a", "b"], "channels": 1, "spatial_shape": [16, 16]}
    run = {
        "study": "s",
        "dataset": "d",
        "task": "multiclass",
        "profile": "p",
        "method": "m",
        "seed": 0,
        "spec": {"model": "small_cnn"},
        "training": {"epochs": 1, "batch_size": 4, "lr": 0.01},
    }
    model = build_model("small_cnn", 1, 2, (16, 16))
    save_model(tmp_path / "model.pt", model, run, meta)
    loaded, config = load_trained_model(tmp_path / "model.pt", meta)
    assert config.spec.model == "small_cnn"
    x = torch.rand(3, 1, 16, 16)
    assert torch.equal(loaded(x), model.eval()(x))
    with pytest.raises(ValueError, match=r"trained on classes \['a', 'b'\], but the data has"):
        load_trained_model(tmp_path / "model.pt", {**meta, "classes": ["a", "b", "c"]})
    with pytest.raises(ValueError, match=r"trained on channels 1, but the data has 3"):
        load_trained_model(tmp_path / "model.pt", {**meta, "channels": 3})
