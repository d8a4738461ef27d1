"""The task table the workflow checks configs with agrees with the library's registries."""

import inspect

import pytest

from medimbalance.config import MONITORS
from medimbalance.data import sources
from medimbalance.losses import LOSSES
from medimbalance.models import MODELS
from medimbalance.tasks import (
    DEFAULT_MONITOR,
    LOSS_ARGS,
    LOSS_TASKS,
    MODEL_TASKS,
    MONITOR_TASKS,
    TASKS,
    argument_errors,
    method_errors,
    resolve_monitor,
)


def test_every_registered_component_has_its_tasks():
    assert sorted(LOSS_TASKS) == LOSSES.names()
    assert sorted(MODEL_TASKS) == MODELS.names()
    assert list(MONITOR_TASKS) == list(MONITORS)
    assert set(DEFAULT_MONITOR) == set(TASKS) and sources.TASKS is TASKS
    for task, monitor in DEFAULT_MONITOR.items():
        assert task in MONITOR_TASKS[monitor]
    for table in (LOSS_TASKS, MODEL_TASKS, MONITOR_TASKS):
        assert all(set(tasks) <= set(TASKS) and tasks for tasks in table.values())
    assert {t for tasks in LOSS_TASKS.values() for t in tasks} == set(TASKS)  # a loss per task


def test_method_errors_name_what_does_not_fit():
    ok = {"resample": "none", "loss": "dice_ce", "model": "unet", "mixup": "asymmetric"}
    assert method_errors(ok, "segmentation") == []
    assert method_errors(ok, "multiclass") == [
        "loss 'dice_ce' is for segmentation data",
        "model 'unet' is for segmentation data",
        "mixup: 'asymmetric' needs segmentation data",
    ]
    assert method_errors({"mixup": "mixup", "loss": "bce"}, "multilabel") == []
    assert method_errors({"mixup": "remix", "loss": "bce"}, "multilabel") == [
        "mixup: 'remix' needs multiclass or binary data"
    ]
    assert method_errors(
        {"mixup": "cutmix", "loss": "mse", "model": "regression_cnn"}, "regression"
    ) == ["mixup: 'cutmix' needs multiclass or binary or multilabel data"]
    two_phase = {"resample": "ros", "loss": "ce", "model": "small_cnn", "schedule": "two_phase"}
    assert method_errors(two_phase, "binary") == []
    assert method_errors({**two_phase, "loss": "mse"}, "regression") == [
        "resample: 'ros' needs multiclass or binary data",
        "schedule: 'two_phase' needs multiclass or binary data",
    ]
    # The diffusion model also makes image–mask pairs, on whole images only.
    pairs = {"resample": "diffusion", "loss": "dice_ce", "model": "unet"}
    assert method_errors(pairs, "segmentation") == []
    assert method_errors({**pairs, "resample": "smote"}, "segmentation") == [
        "resample: 'smote' needs multiclass or binary data"
    ]
    assert method_errors({**pairs, "patch": {"size": [8, 8]}}, "segmentation") == [
        "resample: 'diffusion' adds whole image–mask pairs, which patch training does not read; "
        "train on whole images (no patch) or drop the resampler"
    ]
    # ... and images for findings vectors of multi-label data; the GAN has one class per image.
    findings = {**pairs, "loss": "bce", "model": "small_cnn"}
    assert method_errors(findings, "multilabel") == []
    assert method_errors({**findings, "resample": "cdcgan"}, "multilabel") == [
        "resample: 'cdcgan' needs multiclass or binary data"
    ]
    assert method_errors({**pairs, "loss": "mse", "model": "small_cnn"}, "regression") == [
        "resample: 'diffusion' needs multiclass or binary or multilabel or segmentation data"
    ]


def test_monitor_auto_and_mismatch():
    assert [resolve_monitor("auto", t) for t in ("binary", "multilabel", "segmentation")] == [
        "balanced_accuracy",
        "auroc",
        "dice",
    ]
    assert resolve_monitor("loss", "regression") == "loss"
    with pytest.raises(ValueError, match="monitor 'dice' is for segmentation data, not regression"):
        resolve_monitor("dice", "regression")
    with pytest.raises(ValueError, match="unknown monitor 'f2'"):
        resolve_monitor("f2", "binary")


def test_loss_args_are_the_builders_keyword_arguments():
    assert sorted(LOSS_ARGS) == LOSSES.names()
    for name, args in LOSS_ARGS.items():
        stats, *taken = inspect.signature(LOSSES.get(name)).parameters
        assert stats == "stats" and tuple(taken) == args, name


def test_argument_errors_name_the_keys_and_what_is_taken():
    assert argument_errors({"resample": "ros", "resample_args": {"ratio": 0.5}}) == []
    assert argument_errors({"loss": "ldam", "loss_args": {"drw_epoch": 3, "gama": 1}}) == [
        "loss_args ['gama'] do not apply to loss 'ldam' (it takes: max_margin, scale, "
        "drw_epoch, beta)"
    ]
    assert argument_errors({"loss_args": {"gamma": 2}}) == [
        "loss_args ['gamma'] do not apply to loss 'ce' (it takes: none)"
    ]
    assert argument_errors({"loss": "lds_mse", "loss_args": {"form": "gai"}}) == [
        "loss_args.form 'gai' is not a form of loss 'lds_mse' (valid: reference, paper)"
    ]
    assert argument_errors({"loss": "lds_mse", "loss_args": {"power": 2}}) == [
        "loss_args.power 2 has no reference form of lds_mse (0.5 or 1; form: paper takes any power)"
    ]
    assert argument_errors({"loss": "lds_mse", "loss_args": {"power": 2, "form": "paper"}}) == []


def test_an_effective_number_beta_outside_0_1_is_refused_before_any_job():
    assert argument_errors({"loss": "cb_ce", "loss_args": {"beta": 1.0}}) == [
        "loss_args.beta 1.0 of loss 'cb_ce' is an effective-number beta: it must lie in [0, 1)"
    ]
    assert argument_errors({"loss": "fbeta", "loss_args": {"beta": 4.0}}) == []
