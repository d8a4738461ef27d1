"""Networks by name, built from MONAI (and Thakoersingh's 2021 small regression CNN).

Every builder takes ``(in_channels, num_outputs, spatial_shape)``: classifiers and regressors
return ``(B, num_outputs)``, segmentation networks ``(B, num_outputs, *spatial_shape)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import (
    BasicUNet,
    Classifier,
    DenseNet121,
    EfficientNetBN,
    SEResNet50,
    UNet,
    ViT,
    resnet18,
    resnet50,
)
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


@MODELS.register("resnet50")
def resnet_50(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """MONAI ResNet-50 (He et al., CVPR 2016) in 2D or 3D: the backbone of MONICA's and
    LongTailCXR's tables (at 224 px)."""
    return resnet50(
        spatial_dims=len(spatial_shape), n_input_channels=in_channels, num_classes=num_classes
    )


@MODELS.register("efficientnet_b0")
def efficientnet_b0(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """MONAI EfficientNet-B0 (Tan and Le, ICML 2019) in 2D or 3D, randomly initialised (MONAI's
    own download of ImageNet weights is off: use ``pretrained`` with a local file)."""
    return EfficientNetBN(
        "efficientnet-b0",
        pretrained=False,
        spatial_dims=len(spatial_shape),
        in_channels=in_channels,
        num_classes=num_classes,
    )


@MODELS.register("seresnet50")
def seresnet_50(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """MONAI SE-ResNet-50 (Hu et al., CVPR 2018) in 2D or 3D."""
    return SEResNet50(
        spatial_dims=len(spatial_shape), in_channels=in_channels, num_classes=num_classes
    )


class ViTClassifier(nn.Module):
    """MONAI's ``ViT`` as a classifier that returns the logits only (MONAI's returns the logits
    and every block's hidden states); its class-token head is a plain linear layer."""

    def __init__(self, vit: ViT) -> None:
        super().__init__()
        self.vit = vit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vit(x)[0]


@MODELS.register("vit_b16")
def vit_b16(in_channels: int, num_classes: int, spatial_shape: Sequence[int]) -> nn.Module:
    """ViT-B/16 (Dosovitskiy et al., ICLR 2021; MONAI ``ViT``: 12 layers, 12 heads, hidden size
    768, 16-pixel patches) in 2D or 3D; every image side must be a multiple of 16."""
    _check_divisible(spatial_shape, 16, "vit_b16")
    vit = ViT(
        in_channels=in_channels,
        img_size=tuple(spatial_shape),
        patch_size=16,
        classification=True,
        num_classes=num_classes,
        spatial_dims=len(spatial_shape),
        post_activation=None,
    )
    return ViTClassifier(vit)


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
            f"got {tuple(spatial_shape)} (set the dataset's preprocess.shape, or the method's "
            "patch.size when it trains on patches)"
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


class NCMClassifier(nn.Module):
    """Nearest class mean on centred, L2-normalised features (Kang et al., "Decoupling
    Representation and Classifier for Long-Tailed Recognition", ICLR 2020; their code's
    ``cl2n`` features and ``l2`` distance): ``x̂ = (x − m)/‖x − m‖`` with ``m`` the training
    features' mean, logits ``−‖x̂ − c_k‖²`` with ``c_k`` the mean ``x̂`` of class ``k``'s
    training images. The statistics are buffers, set by :meth:`fit`."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("centroids", torch.zeros(out_features, in_features))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x - self.mean.to(x.dtype), dim=1)

    @torch.no_grad()
    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> NCMClassifier:
        """Set the mean and class centroids from training ``features (N, F)`` and ``labels``;
        a class without training images raises ``ValueError``."""
        counts = torch.bincount(labels, minlength=len(self.centroids))
        if (counts == 0).any():
            missing = torch.nonzero(counts == 0).flatten().tolist()
            raise ValueError(
                f"nearest class mean needs training images of every class, not of {missing}"
            )
        self.mean.copy_(features.mean(0))
        normalised = self.normalise(features)
        sums = torch.zeros_like(self.centroids).index_add_(0, labels, normalised)
        self.centroids.copy_(sums / counts[:, None].to(sums.dtype))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(torch.cdist(self.normalise(x), self.centroids.to(x.dtype)) ** 2)


class DisAlignClassifier(nn.Module):
    """Distribution alignment (Zhang et al., "Distribution Alignment: A Unified Framework for
    Long-tail Visual Recognition", CVPR 2021): the stage-1 logits ``z = Wx + b`` are adjusted
    by a per-class magnitude ``α`` and margin ``β``, gated by an input-dependent confidence
    ``σ(x) = sigmoid(v·x + u)``: ``σ(x)·(α ⊙ z + β) + (1 − σ(x))·z``. It starts as the
    identity (``α = 1``, ``β = 0``); stage 2 learns ``α``, ``β``, ``v`` and ``u`` with ``W``, ``b``
    frozen. Plain parameters (no ``nn.Linear`` inside), so it is the network's last layer."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        linear = nn.Linear(in_features, out_features)
        gate = nn.Linear(in_features, 1)
        self.weight, self.bias = linear.weight, linear.bias
        self.gate_weight, self.gate_bias = gate.weight, gate.bias
        self.scale = nn.Parameter(torch.ones(out_features))
        self.margin = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.linear(x, self.weight, self.bias)
        confidence = torch.sigmoid(F.linear(x, self.gate_weight, self.gate_bias))
        return confidence * (z * self.scale + self.margin) + (1 - confidence) * z


HEAD_LAYERS = {"cosine": CosineClassifier, "ncm": NCMClassifier, "disalign": DisAlignClassifier}
HEADS = ("linear", *HEAD_LAYERS)
OUTPUT_LAYERS = (nn.Linear, CosineClassifier, NCMClassifier, DisAlignClassifier)


def replace_head(model: nn.Module, layer: nn.Module) -> nn.Module:
    """Put ``layer`` in place of ``model``'s output layer (its last linear, cosine, NCM or
    DisAlign layer); returns ``model``."""
    path = [n for n, m in model.named_modules() if isinstance(m, OUTPUT_LAYERS)][-1]
    parent = model.get_submodule(path.rpartition(".")[0]) if "." in path else model
    setattr(parent, path.rpartition(".")[2], layer)
    return model


def build_model(
    name: str,
    in_channels: int,
    num_classes: int,
    spatial_shape: Sequence[int],
    head: str = "linear",
) -> nn.Module:
    """Build the network registered as ``name``: input ``(B, in_channels, *spatial_shape)``,
    ``num_classes`` outputs (classes, labels or regression targets); ``head`` swaps the last
    linear layer for a :class:`CosineClassifier` (``cosine``), an :class:`NCMClassifier`
    (``ncm``) or a :class:`DisAlignClassifier` (``disalign``) of the same size."""
    model = MODELS.get(name)(in_channels, num_classes, tuple(spatial_shape))
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; valid choices: {', '.join(HEADS)}")
    if head != "linear":
        layer = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        replace_head(model, HEAD_LAYERS[head](layer.in_features, layer.out_features))
    return model


def num_outputs(task: str, meta: dict) -> int:
    """Network outputs: one per class or label, one for regression."""
    return 1 if task == "regression" else len(meta["classes"])
