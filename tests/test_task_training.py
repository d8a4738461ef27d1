"""Training for every task through ``run_training``, and exact resume with a loss that learns
(Balanced MSE's σ) and a batch transform (mixup) drawing from the training generator."""

import numpy as np
import pytest
import torch

from medimbalance.augment import build_mixup
from medimbalance.config import RunConfig, TrainConfig
from medimbalance.data.synthetic import FindingsSpec, TumoursSpec, make_findings, make_tumours
from medimbalance.experiment import RunArrays, run_training
from medimbalance.losses import build_loss
from medimbalance.models import build_model
from medimbalance.targets import TargetStats
from medimbalance.training import TensorSet, fit

CPU = torch.device("cpu")


def arrays(images, targets, n_train):
    rows = np.arange(n_train)
    half = (len(images) - n_train) // 2
    val, test = slice(n_train, n_train + half), slice(n_train + half, None)
    return RunArrays(images[:n_train], targets[:n_train], rows, rows,
                     images[val], targets[val], images[test], targets[test])  # fmt: skip


def run(task, method, **training):
    return RunConfig.from_dict({
        "study": "s", "dataset": "d", "task": task, "profile": "p", "method": "m", "seed": 0,
        "spec": method, "training": {"epochs": 2, "batch_size": 8, "lr": 0.003, **training},
    })  # fmt: skip


def test_multilabel_run(tmp_path):
    images, labels = make_findings(FindingsSpec(n=60, image_size=16, prevalence=(0.5, 0.3)))
    meta = {"classes": ["a", "b"], "channels": 1, "spatial_shape": [16, 16]}
    cfg = run("multilabel", {"loss": "weighted_bce"})
    assert cfg.training.monitor == "auroc"
    _, history, outputs = run_training(cfg, arrays(images, labels, 40), meta, CPU, tmp_path / "c")
    assert outputs["test"].shape == (10, 2) and "val_average_precision" in history[-1]


def test_segmentation_run_with_asymmetric_mixup(tmp_path):
    images, masks = make_tumours(TumoursSpec(n=14, shape=(32, 32), channels=2))
    meta = {"classes": ["bg", "e", "n", "t"], "channels": 2, "spatial_shape": [32, 32]}
    spec = {"loss": "gdl_wll", "model": "unet", "mixup": "asymmetric"}
    _, history, outputs = run_training(
        run("segmentation", spec), arrays(images, masks, 10), meta, CPU, tmp_path / "c"
    )
    assert outputs["val"].shape == (2, 4, 32, 32)
    assert history[-1]["val_dice"] is None or 0 <= history[-1]["val_dice"] <= 1


def std_data(n, seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(1, 5, n).astype(np.float32)
    images = (rng.standard_normal((n, 1, 16, 16)) * scale[:, None, None, None]).astype(np.float32)
    return images, images.reshape(n, -1).std(1)


def test_regression_run_outputs_one_value_per_image(tmp_path):
    images, targets = std_data(50, 0)
    meta = {"classes": ["std"], "channels": 1, "spatial_shape": [16, 16]}
    cfg = run(
        "regression", {"loss": "lds_mse", "model": "regression_cnn", "loss_args": {"bins": 10}}
    )
    _, history, outputs = run_training(cfg, arrays(images, targets, 30), meta, CPU, tmp_path / "c")
    assert outputs["test"].shape == (10, 1) and history[-1]["val_mse"] >= 0


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("task", ["regression", "segmentation"])
def test_interrupted_training_resumes_exactly(task, tmp_path):
    if task == "regression":
        images, targets = std_data(48, 1)
        make = lambda: build_model("regression_cnn", 1, 1, (16, 16))  # noqa: E731
        mix = None
        loss = lambda: build_loss("balanced_mse", TargetStats(values=targets))  # noqa: E731
    else:
        images, targets = make_tumours(TumoursSpec(n=40, shape=(16, 16), channels=1))
        make = lambda: build_model("unet", 1, 4, (16, 16))  # noqa: E731
        loss = lambda: build_loss("dice_ce", TargetStats((1,) * 4, 4))  # noqa: E731
        mix = build_mixup("mixup", 0.4, 4)
    train = TensorSet.from_arrays(images[:32], targets[:32], CPU, task)
    val = TensorSet.from_arrays(images[32:], targets[32:], CPU, task)
    cfg = TrainConfig(epochs=3, batch_size=8, lr=0.01)

    def trained(checkpoint=None, stop_after=None):
        torch.manual_seed(0)
        model, loss_fn = make(), loss()

        def hook(record):
            if record["epoch"] == stop_after:
                raise Interrupt

        history = fit(
            model, loss_fn, train, val, cfg, 0, hook, checkpoint=checkpoint, task=task, mix=mix
        )
        return model, loss_fn, history

    model, loss_fn, history = trained()
    checkpoint = tmp_path / "ckpt.pt"
    with pytest.raises(Interrupt):
        trained(checkpoint, stop_after=1)
    resumed, resumed_loss, resumed_history = trained(checkpoint)
    assert resumed_history == history
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    if task == "regression":  # σ is learnt and restored with the checkpoint
        assert loss_fn.sigma.item() != 1.0 and resumed_loss.sigma.item() == loss_fn.sigma.item()


def lesion_data(n_per_class=20, size=16, seed=0):
    from medimbalance.data.synthetic import GradedLesionsSpec, make_graded_lesions

    spec = GradedLesionsSpec(n_per_class=n_per_class, image_size=size, num_grades=3, seed=seed)
    images, labels = make_graded_lesions(spec)
    order = np.random.default_rng(seed).permutation(len(labels))
    return images[order], labels[order]


def test_synthetic_images_join_the_training_set(tmp_path, caplog):
    images, labels = lesion_data()
    meta = {"classes": ["a", "b", "c"], "channels": 1, "spatial_shape": [16, 16]}
    data = arrays(images, labels, 40)
    extra = images[40:47].copy()
    data.synthetic_images, data.synthetic_targets = extra, np.full(7, 2)
    caplog.set_level("INFO", logger="medimbalance.experiment")
    cfg = run("multiclass", {"loss": "ce", "resample": "smote"})
    _, _, with_extra = run_training(cfg, data, meta, CPU, tmp_path / "a")
    assert "47 training samples (TensorSet)" in caplog.text
    data.synthetic_images, data.synthetic_targets = None, None
    _, _, without = run_training(cfg, data, meta, CPU, tmp_path / "b")
    assert not np.array_equal(with_extra["test"], without["test"])


def test_weighted_sampler_with_augmentation_trains_and_logs_the_rates(tmp_path, caplog):
    images, labels = lesion_data()
    meta = {"classes": ["a", "b", "c"], "channels": 1, "spatial_shape": [16, 16]}
    caplog.set_level("INFO", logger="medimbalance.experiment")
    spec = {"loss": "ce", "sampler": "sqrt", "augment": "preset"}
    _, history, outputs = run_training(
        run("multiclass", spec), arrays(images, labels, 40), meta, CPU, tmp_path / "c"
    )
    assert outputs["test"].shape == (10, 3) and len(history) == 2
    assert "augmentation: 80 samples; each transform fired at rates" in caplog.text


def test_penultimate_features_are_pooled():
    from medimbalance.features import embed

    images = torch.rand(5, 1, 28, 28)
    data = TensorSet(images, torch.zeros(5, dtype=torch.long))
    assert embed(build_model("small_cnn", 1, 3, (28, 28)), data).shape == (5, 64)
    assert embed(build_model("resnet18", 1, 3, (28, 28)), data).shape == (5, 512)
    assert embed(build_model("regression_cnn", 1, 1, (28, 28)), data).shape == (5, 32)
