"""Networks by name, built from MONAI (and Thakoersingh's 2021 small regression CNN).

Every builder takes ``(in_channels, num_outputs, spatial_shape)``: classifiers and regressors
return ``(B, num_outputs)``, segmentation networks ``(B, num_outputs, *spatial_shape)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import BasicUNet, Classifier, DenseNet121, UNet, resnet18
from torch import nn

from .registry import Registry

ModelBuilder = Callable[[int, int, Sequence[int]], nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")


@MODELS.register("small_cnn")
def small_cnn(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """A three-stage residual CNN (MONAI ``Classifier``: 16/32/64 channels, stride 2 each).

    Fast on a CPU (≈ 6,700 images/s for 28×28 on one core); the demo's default.
    """
    return Classifier(
        in_shape=(in_channels, *spatial_shape),
        classes=num_classes,
        channels=(16, 32, 64),
        strides=(2, 2, 2),
        num_res_units=1,
    )


@MODELS.register("resnet18")
def resnet_18(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """MONAI ResNet-18 (He et al., CVPR 2016) in 2D or 3D, as in the MedMNIST v2 baselines."""
    return resnet18(
        spatial_dims=len(spatial_shape), n_input_channels=in_channels, num_classes=num_classes
    )


@MODELS.register("densenet121")
def densenet_121(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """MONAI DenseNet-121 (Huang et al., CVPR 2017) in 2D or 3D."""
    return DenseNet121(
        spatial_dims=len(spatial_shape), in_channels=in_channels, out_channels=num_classes
    )


class RegressionCNN(nn.Module):
    """Thakoersingh's (2021) regression network: two 5×5 convolutions with ReLU, each followed
    by 2×2 average pooling and dropout, then two fully connected layers (ReLU between).

    The report gives the layer types only; the widths (16 and 32 filters, 128 hidden units) and
    the dropout rate (0.25) are ours.
    """

    def __init__(
        self,
        in_channels: int,
        num_outputs: int,
        spatial_shape: Sequence[int],
        widths: tuple[int, int] = (16, 32),
        hidden: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        if len(spatial_shape) != 2 or min(spatial_shape) < 16:
            raise ValueError(
                f"regression_cnn needs 2D images of at least 16×16, got {spatial_shape}"
            )
        stage = lambda cin, cout: [  # noqa: E731
            nn.Conv2d(cin, cout, 5),
            nn.ReLU(),
            nn.AvgPool2d(2),
            nn.Dropout(dropout),
        ]
        self.features = nn.Sequential(*stage(in_channels, widths[0]), *stage(*widths))
        side = [((s - 4) // 2 - 4) // 2 for s in spatial_shape]
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[1] * side[0] * side[1], hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@MODELS.register("regression_cnn")
def regression_cnn(in_channels: int, num_outputs: int, spatial_shape: Sequence[int]) -> nn.Module:
    """Thakoersingh's (2021) regression CNN (:class:`RegressionCNN`)."""
    return RegressionCNN(in_channels, num_outputs, spatial_shape)


@MODELS.register("unet")
def unet(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """MONAI residual U-Net (Kerfoot et al. 2018) in 2D or 3D: 16–128 channels, three
    stride-2 levels, two residual units per block."""
    _check_divisible(spatial_shape, 8, "unet")
    return UNet(
        spatial_dims=len(spatial_shape),
        in_channels=in_channels,
        out_channels=num_classes,
        channels=(16, 32, 64, 128),
        strides=(2, 2, 2),
        num_res_units=2,
    )


@MODELS.register("basic_unet")
def basic_unet(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """MONAI ``BasicUNet`` (Falk et al., Nature Methods 2019) in 2D or 3D, features 16–128."""
    _check_divisible(spatial_shape, 16, "basic_unet", minimum=32)  # instance norm needs 2×2
    return BasicUNet(
        spatial_dims=len(spatial_shape),
        in_channels=in_channels,
        out_channels=num_classes,
        features=(16, 16, 32, 64, 128, 16),
    )


def _check_divisible(
    spatial_shape: Sequence[int], factor: int, name: str, minimum: int = 0
) -> None:
    if any(s % factor or s < minimum for s in spatial_shape):
        raise ValueError(
            f"{name} downsamples by {factor}: every image side must be a multiple of {factor}"
            f"{f' and at least {minimum}' if minimum else ''}, "
            f"got {tuple(spatial_shape)} (set the dataset's preprocess.shape)"
        )


class CosineClassifier(nn.Module):
    """Logits = cosine similarity of features ``(B, F)`` and class weight vectors ``(K, F)``.

    The normalised output layer of LDAM (Cao et al., NeurIPS 2019, ``NormedLinear``), whose
    logits in ``[−1, 1]`` the loss rescales by ``s``.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).T


HEADS = ("linear", "cosine")
OUTPUT_LAYERS = (nn.Linear, CosineClassifier)


def build_model(
    name: str,
    in_channels: int,
    num_classes: int,
    spatial_shape: Sequence[int],
    head: str = "linear",
) -> nn.Module:
    """Build the network registered as ``name``: input ``(B, in_channels, *spatial_shape)``,
    ``num_classes`` outputs (classes, labels or regression targets); ``head="cosine"`` swaps
    the last linear layer for a :class:`CosineClassifier`."""
    model = MODELS.get(name)(in_channels, num_classes, tuple(spatial_shape))
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; valid choices: {', '.join(HEADS)}")
    if head == "cosine":
        path, layer = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
        parent = model.get_submodule(path.rpartition(".")[0]) if "." in path else model
        setattr(
            parent, path.rpartition(".")[2], CosineClassifier(layer.in_features, layer.out_features)
        )
    return model


def num_outputs(task: str, meta: dict) -> int:
    """Network outputs: one per class or label, one for regression."""
    return 1 if task == "regression" else len(meta["classes"])
