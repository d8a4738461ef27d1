"""The loss registry: every loss by name, bad names and arguments named, torch-free weights."""

import subprocess
import sys

import pytest
import torch

from medimbalance.losses import LOSSES, build_loss
from medimbalance.tasks import LOSS_TASKS


def test_registry_and_bad_arguments():
    assert LOSSES.names() == sorted(LOSS_TASKS)
    with pytest.raises(ValueError, match=r"loss 'focal': .*unexpected keyword argument 'beta'"):
        build_loss("focal", [3, 1], beta=0.9)
    with pytest.raises(ValueError, match="every class needs at least one training image"):
        build_loss("cb_ce", [3, 0])
    with pytest.raises(
        ValueError, match="unknown loss 'dyce'; valid choices: asl, asym_focal, asym_large_margin"
    ):
        build_loss("dyce", [10, 5])


def test_cross_entropy_hand_value():
    loss = build_loss("ce", [3, 1])
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    targets = torch.tensor([1, 0])
    # mean of -log(1/2) and -log(e^2 / (e^2 + 1))
    expected = (torch.log(torch.tensor(2.0)) + torch.log1p(torch.exp(torch.tensor(-2.0)))) / 2
    assert loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_weights_balancing_and_calibration_import_without_torch():
    code = (
        "import sys; import medimbalance.losses.weights, medimbalance.balancing, "
        "medimbalance.calibration, medimbalance.data.profiles; "
        "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
