"""Adversarial training for segmentation: the perturbation's size and direction, by hand on a
voxel-wise network (a 1×1 convolution), and a run with it."""

import numpy as np
import pytest
import torch
from test_experiment import arrays, run, train
from torch import nn

from medimbalance.adversarial import AdversarialPerturbation, build_adversarial, normalise
from medimbalance.data.synthetic import TumoursSpec, make_tumours


def voxelwise():
    torch.manual_seed(0)
    return nn.Conv2d(1, 2, kernel_size=1)  # each voxel's logits depend on that voxel only


def batch():
    images = torch.randn(2, 1, 6, 6)
    masks = torch.zeros(2, 6, 6, dtype=torch.long)
    masks[:, 2:4, 2:4] = 1
    return images, masks


def test_normalise_gives_unit_l2_norm_per_image():
    d = torch.tensor([[[[3.0, -4.0]]], [[[0.0, 2.0]]]])
    n = normalise(d)
    assert torch.allclose(n.flatten(1).norm(dim=1), torch.ones(2), atol=1e-3)
    assert torch.allclose(n[0].flatten(), torch.tensor([0.6, -0.8]), atol=1e-3)  # direction kept


@pytest.mark.parametrize("kind", ["symmetric", "asymmetric"])
def test_the_perturbation_has_norm_eps_and_raises_the_loss_it_follows(kind):
    model, (images, masks) = voxelwise(), batch()
    adversarial = AdversarialPerturbation(kind, eps=2.0, xi=1e-5)
    r = adversarial(model, images, masks, torch.Generator().manual_seed(0))
    assert torch.allclose(r.flatten(1).norm(dim=1), torch.full((2,), 2.0), rtol=1e-3)
    with torch.no_grad():
        before = adversarial.direction_loss(model(images), masks)
        after = adversarial.direction_loss(model(images + r), masks)
    assert after > before  # towards the decision boundary
    background = (masks == 0)[:, None]
    if kind == "asymmetric":  # only the foreground voxels are pushed
        assert torch.all(r[background] == 0) and torch.any(r[~background] != 0)
    else:
        assert torch.any(r[background] != 0) and torch.any(r[~background] != 0)


def test_adversarial_by_name_and_a_segmentation_run_with_it():
    assert build_adversarial("none", 10, 1e-5) is None
    with pytest.raises(ValueError, match="adversarial: unknown 'both'"):
        build_adversarial("both", 10, 1e-5)
    images, masks = make_tumours(TumoursSpec(n=12, shape=(32, 32), channels=1))
    meta = {"classes": ["bg", "e", "n", "t"], "channels": 1, "spatial_shape": [32, 32]}
    spec = {"loss": "dice_ce", "model": "unet", "adversarial": "asymmetric", "adversarial_eps": 5.0}
    trained = []
    for _ in range(2):
        torch.manual_seed(0)
        trained.append(train(run("segmentation", spec), arrays(images, masks, 8), meta))
    assert np.array_equal(trained[0].outputs["test"], trained[1].outputs["test"])
    torch.manual_seed(0)
    plain = train(
        run("segmentation", {"loss": "dice_ce", "model": "unet"}), arrays(images, masks, 8), meta
    )
    assert not np.array_equal(trained[0].outputs["test"], plain.outputs["test"])  # it stepped
