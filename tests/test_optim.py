"""Learning-rate factors per epoch: warm-up, step decay, cosine annealing."""

import numpy as np
import pytest

from medimbalance.config import TrainConfig
from medimbalance.optim import lr_factor


def test_lr_factors():
    step = TrainConfig(epochs=10, lr_schedule="step", milestones=(4, 7), gamma=0.1)
    factors = [round(lr_factor(step, e), 6) for e in range(9)]
    assert factors == [1, 1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01]
    warm = TrainConfig(epochs=10, lr_schedule="cosine", warmup_epochs=2)
    factors = [lr_factor(warm, e) for e in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[6] == pytest.approx(0.5 * (1 + np.cos(np.pi * 4 / 8)))
    with pytest.raises(ValueError, match=r"training\.lr_schedule: unknown 'linear'"):
        TrainConfig(lr_schedule="linear")
