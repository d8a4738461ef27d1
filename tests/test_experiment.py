"""One run from its arrays through its schedule, for every task: outputs, synthetic images,
sampler and augmentation, checkpoints that follow the run's identity."""

import numpy as np
import pytest
import torch

from medimbalance.checkpoints import Checkpoints
from medimbalance.config import RunConfig
from medimbalance.data.synthetic import (
    FindingsSpec,
    GradedLesionsSpec,
    TumoursSpec,
    make_findings,
    make_graded_lesions,
    make_tumours,
)
from medimbalance.experiment import run_training
from medimbalance.schedules import RunArrays, TrainingJob

CPU = torch.device("cpu")


def arrays(images, targets, n_train):
    rows = np.arange(n_train)
    half = (len(images) - n_train) // 2
    val, test = slice(n_train, n_train + half), slice(n_train + half, None)
    return RunArrays(
        train_images=images[:n_train],
        train_targets=targets[:n_train],
        rows=rows,
        profile_rows=rows,
        val_images=images[val],
        val_targets=targets[val],
        test_images=images[test],
        test_targets=targets[test],
    )


def run(task, method, **training):
    return RunConfig.from_dict(
        {
            "study": "s",
            "dataset": "d",
            "task": task,
            "profile": "p",
            "method": "m",
            "seed": 0,
            "spec": method,
            "training": {"epochs": 2, "batch_size": 8, "lr": 0.003, **training},
        }
    )


def train(config, data, meta, folder=None, identity="run"):
    checkpoints = None if folder is None else Checkpoints(folder, identity)
    return run_training(TrainingJob(config, data, meta, CPU, checkpoints))


def lesion_data(n_per_class=20, size=16, seed=0):
    spec = GradedLesionsSpec(n_per_class=n_per_class, image_size=size, num_grades=3, seed=seed)
    images, labels = make_graded_lesions(spec)
    order = np.random.default_rng(seed).permutation(len(labels))
    return images[order], labels[order]


LESIONS = {"classes": ["a", "b", "c"], "channels": 1, "spatial_shape": [16, 16]}


def test_multilabel_run():
    images, labels = make_findings(FindingsSpec(n=60, image_size=16, prevalence=(0.5, 0.3)))
    meta = {"classes": ["a", "b"], "channels": 1, "spatial_shape": [16, 16]}
    cfg = run("multilabel", {"loss": "weighted_bce"})
    assert cfg.training.monitor == "auroc"
    trained = train(cfg, arrays(images, labels, 40), meta)
    assert trained.outputs["test"].shape == (10, 2)
    assert "val_average_precision" in trained.history[-1]


def test_segmentation_run_with_asymmetric_mixup():
    images, masks = make_tumours(TumoursSpec(n=14, shape=(32, 32), channels=2))
    meta = {"classes": ["bg", "e", "n", "t"], "channels": 2, "spatial_shape": [32, 32]}
    spec = {"loss": "gdl_wll", "model": "unet", "mixup": "asymmetric"}
    trained = train(run("segmentation", spec), arrays(images, masks, 10), meta)
    assert trained.outputs["val"].shape == (2, 4, 32, 32)
    dice = trained.history[-1]["val_dice"]
    assert dice is None or 0 <= dice <= 1


def test_regression_run_outputs_one_value_per_image():
    rng = np.random.default_rng(0)
    scale = rng.uniform(1, 5, 50).astype(np.float32)
    images = (rng.standard_normal((50, 1, 16, 16)) * scale[:, None, None, None]).astype(np.float32)
    targets = images.reshape(50, -1).std(1)
    meta = {"classes": ["std"], "channels": 1, "spatial_shape": [16, 16]}
    spec = {"loss": "lds_mse", "model": "regression_cnn", "loss_args": {"bins": 10}}
    trained = train(run("regression", spec), arrays(images, targets, 30), meta)
    assert trained.outputs["test"].shape == (10, 1) and trained.history[-1]["val_mse"] >= 0


def test_synthetic_images_join_the_training_set(caplog):
    images, labels = lesion_data()
    data = arrays(images, labels, 40)
    extra = images[40:47].copy()
    data.synthetic_images, data.synthetic_targets = extra, np.full(7, 2)
    caplog.set_level("INFO", logger="medimbalance.schedules")
    cfg = run("multiclass", {"loss": "ce", "resample": "smote"})
    with_extra = train(cfg, data, LESIONS).outputs
    assert "47 training samples (TensorSet)" in caplog.text
    data.synthetic_images, data.synthetic_targets = None, None
    without = train(cfg, data, LESIONS).outputs
    assert not np.array_equal(with_extra["test"], without["test"])


def test_weighted_sampler_with_augmentation_trains_and_logs_the_rates(caplog):
    images, labels = lesion_data()
    caplog.set_level("INFO", logger="medimbalance.schedules")
    spec = {"loss": "ce", "sampler": "sqrt", "augment": "preset"}
    trained = train(run("multiclass", spec), arrays(images, labels, 40), LESIONS)
    assert trained.outputs["test"].shape == (10, 3) and len(trained.history) == 2
    assert "augmentation: 80 samples; each transform fired at rates" in caplog.text


@pytest.mark.parametrize(
    "spec",
    [
        {"loss": "ce", "resample": "ros", "schedule": "two_phase"},
        {"resample": "none", "schedule": "one_class"},
    ],
    ids=["two_phase", "one_class"],
)
def test_each_schedule_resumes_from_its_checkpoints_only_for_the_same_run(spec, tmp_path, caplog):
    images, labels = lesion_data()
    data, cfg = arrays(images, labels, 40), run("multiclass", spec)
    caplog.set_level("INFO", logger="medimbalance.checkpoints")
    torch.manual_seed(0)
    first = train(cfg, data, LESIONS, tmp_path, "run")
    phases = sorted(p.name for p in tmp_path.iterdir())
    expected = {
        "two_phase": [".checkpoint_finetune.pt", ".checkpoint_pretrain.pt"],
        "one_class": [f".checkpoint_autoencoder_{c}_.pt" for c in "abc"],
    }
    assert phases == expected[spec["schedule"]] and "resumed" not in caplog.text
    torch.manual_seed(1)  # other initial weights: only the restored ones give equal outputs
    again = train(cfg, data, LESIONS, tmp_path, "run")
    assert caplog.text.count("resumed") == len(phases)  # every phase, at its last epoch
    assert again.history == first.history
    assert all(np.array_equal(again.outputs[k], first.outputs[k]) for k in first.outputs)
    caplog.clear()
    train(cfg, data, LESIONS, tmp_path, "another run")
    assert "resumed" not in caplog.text
    assert caplog.text.count("written by a run with other settings, data or library code") == len(
        phases
    )


def test_unknown_schedule_and_posthoc_adjustment_of_non_logits_are_refused():
    images, labels = lesion_data()
    with pytest.raises(
        ValueError,
        match="unknown schedule 'two_phases'; valid choices: decoupled, one_class, single",
    ):
        train(run("multiclass", {"schedule": "two_phases"}), arrays(images, labels, 40), LESIONS)
    spec = {"schedule": "one_class", "posthoc_tau": 1.0}
    with pytest.raises(ValueError, match="posthoc_tau: schedule 'one_class' does not give logits"):
        train(run("multiclass", spec, epochs=1), arrays(images, labels, 40), LESIONS)


@pytest.mark.parametrize("mix", ["mixup", "cutmix", "remix", "balanced_mixup"])
def test_a_classification_run_with_each_batch_mix_is_repeatable(mix):
    images, labels = lesion_data()
    cfg = run("multiclass", {"loss": "ce", "mixup": mix, "mixup_alpha": 0.4})
    torch.manual_seed(0)
    first = train(cfg, arrays(images, labels, 40), LESIONS)
    torch.manual_seed(0)
    second = train(cfg, arrays(images, labels, 40), LESIONS)
    assert all(np.isfinite(r["train_loss"]) for r in first.history)
    assert np.array_equal(first.outputs["test"], second.outputs["test"])
    torch.manual_seed(0)
    plain = train(run("multiclass", {"loss": "ce"}), arrays(images, labels, 40), LESIONS)
    assert first.history[0]["train_loss"] != plain.history[0]["train_loss"]  # it does mix


def test_a_multilabel_run_with_class_aware_sampling_asl_and_cutmix():
    images, labels = make_findings(FindingsSpec(n=60, image_size=16, prevalence=(0.5, 0.1)))
    meta = {"classes": ["a", "b"], "channels": 1, "spatial_shape": [16, 16]}
    spec = {"loss": "asl", "sampler": "class_balanced", "mixup": "cutmix", "mixup_alpha": 1.0}
    trained = train(run("multilabel", spec), arrays(images, labels, 40), meta)
    assert trained.outputs["test"].shape == (10, 2)
    assert all(np.isfinite(r["train_loss"]) for r in trained.history)


def test_a_run_with_randaugment_and_sam_is_repeatable():
    images, labels = lesion_data()
    spec = {"loss": "ldam", "head": "cosine", "augment": "randaugment", "randaugment_n": 2}
    cfg = run("multiclass", spec, sam_rho=0.05, optimizer="sgd", lr=0.05)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        runs.append(train(cfg, arrays(images, labels, 40), LESIONS))
    assert np.array_equal(runs[0].outputs["test"], runs[1].outputs["test"])
    assert all(np.isfinite(r["train_loss"]) for r in runs[0].history)
