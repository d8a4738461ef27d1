"""Fault injection, schedules: a run killed right after any checkpoint, in the middle of its
second phase (two-phase fine-tuning) or of its second autoencoder (one-class), resumes to the
result of an uninterrupted run."""

import numpy as np
import pytest
import torch
from test_experiment import LESIONS, arrays, lesion_data, run, train

from medimbalance.checkpoints import Checkpoints


class Killed(BaseException):
    """Stands for SIGKILL right after a checkpoint was written."""


@pytest.mark.parametrize(
    "spec, kill_after",
    [
        ({"loss": "ce", "resample": "ros", "schedule": "two_phase"}, 4),  # fine-tuning epoch 1
        ({"resample": "none", "schedule": "one_class"}, 5),  # 2nd autoencoder, epoch 2
    ],
    ids=["two_phase", "one_class"],
)
def test_a_run_killed_mid_schedule_resumes_to_the_uninterrupted_result(
    spec, kill_after, tmp_path, monkeypatch, caplog
):
    images, labels = lesion_data()
    data, cfg = arrays(images, labels, 40), run("multiclass", spec, epochs=3)
    torch.manual_seed(0)
    uninterrupted = train(cfg, data, LESIONS)

    saves, save = [], Checkpoints.save

    def save_then_die(self, phase, parts, state):
        save(self, phase, parts, state)
        saves.append(phase)
        if len(saves) == kill_after:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(Checkpoints, "save", save_then_die)
        torch.manual_seed(0)
        with pytest.raises(Killed):
            train(cfg, data, LESIONS, tmp_path)
    assert len(set(saves)) == 2  # killed in the second phase (or autoencoder)
    caplog.set_level("INFO", logger="medimbalance.checkpoints")
    torch.manual_seed(1)  # other initial weights: only the restored state gives equal outputs
    resumed = train(cfg, data, LESIONS, tmp_path)
    assert "resumed" in caplog.text
    assert resumed.history == uninterrupted.history
    assert all(
        np.array_equal(resumed.outputs[k], uninterrupted.outputs[k]) for k in resumed.outputs
    )
