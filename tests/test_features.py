"""Penultimate-layer features of every classifier network."""

import torch

from medimbalance.features import embed
from medimbalance.models import build_model
from medimbalance.training import TensorSet


def test_penultimate_features_are_pooled():
    images = torch.rand(5, 1, 28, 28)
    data = TensorSet(images, torch.zeros(5, dtype=torch.long))
    assert embed(build_model("small_cnn", 1, 3, (28, 28)), data).shape == (5, 64)
    assert embed(build_model("resnet18", 1, 3, (28, 28)), data).shape == (5, 512)
    assert embed(build_model("regression_cnn", 1, 1, (28, 28)), data).shape == (5, 32)
