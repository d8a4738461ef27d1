"""Decoupled two-stage training: each stage-2 method by hand on small layers and features, and
end to end on a stage-1 network (the backbone stays as it was)."""

import math

import numpy as np
import pytest
import torch
from test_experiment import CPU, LESIONS, arrays, lesion_data, run, train
from torch import nn

from medimbalance.checkpoints import Checkpoints
from medimbalance.decoupled import (
    TAU_GRID,
    ScaledLinear,
    choose_tau,
    extract_features,
    shift_batch_norm,
    tau_normalised,
)
from medimbalance.experiment import run_training
from medimbalance.losses import build_loss
from medimbalance.losses.weights import grw_weights, label_aware_smoothing
from medimbalance.models import DisAlignClassifier, NCMClassifier, build_model
from medimbalance.schedules import TrainingJob
from medimbalance.training import TensorSet, last_layer


def close(tensor, expected, **tolerance):
    return np.allclose(tensor.detach().numpy(), np.array(expected), **tolerance)


def linear(weight, bias):
    layer = nn.Linear(len(weight[0]), len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def test_tau_normalisation_by_hand_and_tau_zero_is_the_stage1_layer():
    layer = linear([[3.0, 4.0], [0.0, 0.5]], [0.1, -0.2])  # norms 5 and 0.5
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    assert torch.equal(tau_normalised(layer, 0.0)(x), layer(x))
    one = tau_normalised(layer, 1.0)
    assert close(one.weight, [[0.6, 0.8], [0.0, 1.0]])
    assert one.bias.tolist() == pytest.approx([0.1, -0.2])
    half = tau_normalised(layer, 0.5, keep_bias=False)
    assert close(half.weight, [[3 / math.sqrt(5), 4 / math.sqrt(5)], [0.0, 0.5 / math.sqrt(0.5)]])
    assert half.bias.tolist() == [0.0, 0.0]


def test_tau_is_chosen_on_validation_by_the_monitored_metric():
    # Class 1's weights are 10 times longer: at τ = 0 everything is predicted as class 1, from
    # τ = 1 on the two classes are separated by the sign of the first feature.
    layer = linear([[1.0, 0.0], [0.0, 10.0]], [0.0, 0.0])
    features = torch.tensor([[2.0, 0.5], [3.0, 0.4], [0.1, 1.0], [0.2, 2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    tau, scores = choose_tau(layer, features, labels, "balanced_accuracy", "multiclass")
    by_tau = {s["tau"]: s["val_balanced_accuracy"] for s in scores}
    assert [s["tau"] for s in scores] == list(TAU_GRID) and TAU_GRID[-1] == 2.0
    assert by_tau[0.0] == 0.5 and by_tau[1.0] == 1.0
    assert tau == min(t for t, v in by_tau.items() if v == 1.0)  # ties: the smallest τ


def test_nearest_class_mean_on_hand_placed_features():
    # Training features: class 0 around (2, 0), class 1 around (0, 2); their mean (1, 1) is
    # removed and each is normalised: class 0 → (1, −1)/√2, class 1 → (−1, 1)/√2.
    train = torch.tensor([[2.0, 0.0], [3.0, -1.0], [0.0, 2.0], [-1.0, 3.0]])
    labels = torch.tensor([0, 0, 1, 1])
    ncm = NCMClassifier(2, 2).fit(train, labels)
    assert ncm.mean.tolist() == pytest.approx([1.0, 1.0])
    s = 1 / math.sqrt(2)
    assert close(ncm.centroids, [[s, -s], [-s, s]])
    x = torch.tensor([[1.0 + 3.0, 1.0 - 1.0]])  # centred (3, −1), normalised (3, −1)/√10
    u = np.array([3.0, -1.0]) / math.sqrt(10)
    expected = [-np.sum((u - c) ** 2) for c in ([s, -s], [-s, s])]
    assert ncm(x)[0].tolist() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"training images of every class, not of \[2\]"):
        NCMClassifier(2, 3).fit(train, labels)


def test_learnable_weight_scaling_folds_into_a_linear_layer():
    layer = linear([[1.0, 2.0], [3.0, -1.0]], [0.5, 1.0])
    scaled = ScaledLinear(layer)
    assert [p.requires_grad for p in scaled.linear.parameters()] == [False, False]
    with torch.no_grad():
        scaled.scales.copy_(torch.tensor([2.0, 0.5]))
    x = torch.tensor([[1.0, 1.0]])
    assert close(scaled(x), [[2 * 3.5, 0.5 * 3.0]])
    folded = scaled.fold()
    assert close(folded(x), scaled(x).tolist())
    assert close(folded.weight, [[2.0, 4.0], [1.5, -0.5]])
    assert all(p.requires_grad for p in ScaledLinear(layer, learn_weights=True).parameters())


def test_disalign_starts_as_the_identity_and_follows_its_formula():
    layer = DisAlignClassifier(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        layer.bias.zero_()
    x = torch.tensor([[2.0, -1.0]])
    assert close(layer(x), [[2.0, -1.0]])  # α = 1, β = 0
    with torch.no_grad():
        layer.gate_weight.zero_()
        layer.gate_bias.fill_(math.log(3))  # σ = 0.75
        layer.scale.copy_(torch.tensor([2.0, 1.0]))
        layer.margin.copy_(torch.tensor([0.0, 1.0]))
    # σ (α z + β) + (1 − σ) z: class 0: 0.75·4 + 0.25·2 = 3.5; class 1: 0.75·0 + 0.25·(−1)
    assert close(layer(x), [[3.5, -0.25]])


def test_generalized_reweighting_and_label_aware_smoothing_by_hand():
    # GRW: r = (0.8, 0.2); (1/r)^1.2 = 1.25^1.2, 5^1.2, normalised to sum 2
    a, b = 1.25**1.2, 5**1.2
    assert grw_weights([80, 20], 1.2) == pytest.approx([2 * a / (a + b), 2 * b / (a + b)])
    assert grw_weights([80, 20], 0.0) == pytest.approx([1.0, 1.0])
    loss = build_loss("grw_ce", [80, 20], rho=1.0)  # inverse frequency: weights 0.4, 1.6
    logits, targets = torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([0, 1])
    assert loss(logits, targets).item() == pytest.approx((0.4 + 1.6) * math.log(2) / 2)
    # Label-aware smoothing, counts 100, 55, 10: x = 1, 0.5, 0 → concave ε = 0.3·sin(πx/2)
    eps = label_aware_smoothing([100, 55, 10], 0.3, 0.0)
    assert eps == pytest.approx([0.3, 0.3 * math.sin(math.pi / 4), 0.0])
    assert label_aware_smoothing([100, 55, 10], 0.3, 0.1, "linear") == pytest.approx(
        [0.3, 0.2, 0.1]
    )
    convex = label_aware_smoothing([100, 55, 10], 0.3, 0.1, "convex")
    assert convex == pytest.approx([0.3, 0.3 + 0.2 * math.sin(1.75 * math.pi), 0.1])
    las = build_loss("label_aware_smoothing", [100, 55, 10])
    z = torch.tensor([[2.0, 0.0, 0.0]])
    log_p = torch.log_softmax(z, 1)[0]
    expected = 0.7 * -log_p[0] + 0.3 * -log_p.mean()  # class 0: ε = 0.3 over all 3 classes
    assert las(z, torch.tensor([0])).item() == pytest.approx(expected.item())
    assert las(z, torch.tensor([2])).item() == pytest.approx(-log_p[2].item())  # ε = 0


def test_shifted_batch_norm_reestimates_statistics_on_the_weighted_draws():
    net = nn.Sequential(nn.BatchNorm1d(1))
    data = TensorSet(torch.tensor([[0.0], [0.0], [0.0], [10.0]]), torch.tensor([0, 0, 0, 1]))
    weights = torch.tensor([1 / 6, 1 / 6, 1 / 6, 1 / 2])  # class-balanced: half the draws 10
    assert shift_batch_norm(net, data, weights, batch_size=4, seed=0) == 1
    drawn = torch.multinomial(
        weights, 4, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    assert net[0].running_mean.item() == pytest.approx(data.images[drawn].mean().item())
    assert net[0].momentum == 0.1 and not net.training
    assert shift_batch_norm(nn.Sequential(nn.InstanceNorm1d(1)), data, weights, 4, 0) == 0


def decoupled_run(stage2, **args):
    spec = {"schedule": "decoupled", "stage1": "erm", "stage2": stage2, "stage2_args": args}
    return run("multiclass", spec, epochs=3)


@pytest.fixture(scope="module")
def stage1():
    images, labels = lesion_data(n_per_class=20)
    data = arrays(images, labels, 40)
    torch.manual_seed(0)
    trained = train(run("multiclass", {"loss": "ce"}), data, LESIONS)
    return data, trained


def stage2(stage1, config, folder=None):
    data, first = stage1
    model = build_model("small_cnn", 1, 3, (16, 16))
    model.load_state_dict(first.model.state_dict())
    checkpoints = None if folder is None else Checkpoints(folder, "stage2")
    job = TrainingJob(config, data, LESIONS, CPU, checkpoints, stage1=model)
    return run_training(job)


def backbone(model):
    """The state of every layer but the output layer."""
    head = last_layer(model)
    path = next(n for n, m in model.named_modules() if m is head)
    return {k: v for k, v in model.state_dict().items() if not k.startswith(path + ".")}


@pytest.mark.parametrize("name", ["crt", "lws", "disalign", "mislas", "ncm", "tau_norm"])
def test_stage2_leaves_the_backbone_as_stage1_trained_it(stage1, name):
    data, first = stage1
    before = {k: v.clone() for k, v in first.model.state_dict().items()}
    trained = stage2(stage1, decoupled_run(name))
    kept = backbone(trained.model)
    assert len(kept) == len(backbone(first.model)) > 0
    assert all(torch.equal(v, before[k]) for k, v in kept.items())
    assert trained.outputs["test"].shape == (len(data.test_targets), 3)
    expected_head = {"ncm": "ncm", "disalign": "disalign"}.get(name)
    assert trained.head == (expected_head or "linear")
    assert np.isfinite(trained.outputs["test"]).all()


def test_tau_norm_at_zero_gives_the_stage1_outputs(stage1):
    _, first = stage1
    trained = stage2(stage1, decoupled_run("tau_norm", tau=0.0))
    assert np.allclose(trained.outputs["test"], first.outputs["test"], atol=1e-5)
    auto = stage2(stage1, decoupled_run("tau_norm"))
    assert sum(r["chosen"] for r in auto.history) == 1 and len(auto.history) == 21


def test_crt_trains_a_new_classifier_with_class_balanced_sampling(stage1, tmp_path):
    trained = stage2(stage1, decoupled_run("crt"), tmp_path)
    assert [r["phase"] for r in trained.history] == ["stage2"] * 3
    again = stage2(stage1, decoupled_run("crt"), tmp_path)  # resumed from the finished state
    assert np.array_equal(again.outputs["test"], trained.outputs["test"])
    features = extract_features(
        trained.model, TensorSet(torch.from_numpy(stage1[0].test_images).float(), torch.zeros(1))
    )
    assert features.shape[1] == last_layer(trained.model).in_features
