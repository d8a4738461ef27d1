import pytest
import torch

from medimbalance.models import MODELS, build_model


@pytest.mark.parametrize("name", ["small_cnn", "resnet18", "densenet121", "regression_cnn"])
def test_models_map_images_to_logits(name):
    model = build_model(name, in_channels=1, num_classes=5, spatial_shape=(32, 32))
    assert model(torch.zeros(3, 1, 32, 32)).shape == (3, 5)


@pytest.mark.parametrize("name", ["unet", "basic_unet"])
@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 32)])
def test_segmentation_models_map_images_to_voxel_logits(name, shape):
    model = build_model(name, in_channels=2, num_classes=4, spatial_shape=shape)
    assert model(torch.zeros(2, 2, *shape)).shape == (2, 4, *shape)


def test_segmentation_models_refuse_sides_they_cannot_halve():
    with pytest.raises(ValueError, match=r"multiple of 16 and at least 32, got \(40, 40\)"):
        build_model("basic_unet", 1, 2, (40, 40))


def test_regression_cnn_is_thakoersinghs_layer_stack():
    model = build_model("regression_cnn", 1, 1, (52, 52))
    kinds = [type(m).__name__ for m in model.modules() if not list(m.children())]
    assert kinds == ["Conv2d", "ReLU", "AvgPool2d", "Dropout"] * 2 + [
        "Flatten",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert all(m.kernel_size == (5, 5) for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert model(torch.zeros(4, 1, 52, 52)).shape == (4, 1)


def test_small_cnn_three_channels():
    model = build_model("small_cnn", in_channels=3, num_classes=2, spatial_shape=(32, 32))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 2)


def test_unknown_names_list_choices():
    with pytest.raises(
        ValueError, match="unknown model 'vgg'; valid choices: basic_unet, densenet"
    ):
        build_model("vgg", 1, 2, (28, 28))
    assert "unet" in MODELS.names()


def test_cosine_head_replaces_the_last_linear_layer():
    from medimbalance.models import CosineClassifier
    from medimbalance.training import last_layer

    model = build_model("small_cnn", 1, 4, (16, 16), head="cosine")
    assert isinstance(last_layer(model), CosineClassifier)
    logits = model(torch.randn(5, 1, 16, 16))
    assert logits.shape == (5, 4) and logits.abs().max() <= 1 + 1e-6
    head = CosineClassifier(2, 2)
    head.weight.data = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    out = head(torch.tensor([[3.0, 4.0]]))  # cos to (1,0) = 0.6, to (0,1) = 0.8
    assert out.tolist()[0] == pytest.approx([0.6, 0.8])
    with pytest.raises(ValueError, match="unknown head 'mlp'"):
        build_model("small_cnn", 1, 4, (16, 16), head="mlp")


@pytest.mark.parametrize("name", ["resnet50", "efficientnet_b0", "seresnet50", "vit_b16"])
@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 32)])
def test_the_backbones_papers_use_in_2d_and_3d(name, shape):
    from medimbalance.training import last_layer

    model = build_model(name, 2, 7, shape)
    assert model(torch.zeros(2, 2, *shape)).shape == (2, 7)
    assert last_layer(model).out_features == 7  # the head stage 2 and pretrained weights swap


def test_vit_needs_sides_of_whole_patches():
    with pytest.raises(ValueError, match="vit_b16 downsamples by 16: every image side"):
        build_model("vit_b16", 1, 2, (28, 28))
