"""Pretrained weights from a local file: MD5, key prefixes, the first layer adapted to the
channels, the output layer replaced; tiny checkpoints built here, nothing downloaded."""

import numpy as np
import pytest
import torch
from test_experiment import CPU, LESIONS, arrays, lesion_data, run

from medimbalance.decoupled import extract_features
from medimbalance.models import build_model
from medimbalance.pretrained import adapt_channels, file_md5, load_pretrained
from medimbalance.schedules import TrainingJob
from medimbalance.training import TensorSet, last_layer


def save(tmp_path, state, name="ckpt.pt"):
    path = tmp_path / name
    torch.save(state, path)
    return path, file_md5(path)


@pytest.fixture
def rgb_network():
    torch.manual_seed(0)
    return build_model("small_cnn", 3, 5, (16, 16)).eval()  # e.g. trained on colour images


def test_a_grayscale_network_from_a_colour_checkpoint_sees_the_image_repeated(
    tmp_path, rgb_network
):
    path, md5 = save(tmp_path, rgb_network.state_dict())
    torch.manual_seed(1)
    gray = build_model("small_cnn", 1, 3, (16, 16))
    fresh_head = {k: v.clone() for k, v in last_layer(gray).state_dict().items()}
    record = load_pretrained(gray, path, md5, head=last_layer(gray))
    gray.eval()
    x = torch.randn(4, 1, 16, 16)
    data = lambda images: TensorSet(images, torch.zeros(4, dtype=torch.long))  # noqa: E731
    features = extract_features(gray, data(x))
    repeated = extract_features(rgb_network, data(x.repeat(1, 3, 1, 1)))
    assert torch.allclose(features, repeated, atol=1e-4)  # summed filters = repeated image
    head = last_layer(gray).state_dict()
    assert all(torch.equal(head[k], fresh_head[k]) for k in head)  # 3 classes: a new head
    assert record["md5"] == md5 and record["head_reset"] == ["final.1.weight", "final.1.bias"]
    assert "3 → 1 channels (repeat)" in record["first_layer"]


def test_channel_rules_by_hand():
    w = torch.arange(12.0).view(2, 3, 1, 2)  # out 2, in 3
    assert torch.equal(adapt_channels(w, 1, "repeat"), w.sum(1, keepdim=True))
    assert torch.equal(adapt_channels(w, 1, "average"), w.mean(1, keepdim=True))
    four = adapt_channels(w, 4)  # channels 0, 1, 2, 0, each × 3/4
    assert torch.equal(four, w[:, [0, 1, 2, 0]] * 0.75)
    assert torch.equal(adapt_channels(w, 3), w)
    with pytest.raises(ValueError, match=r"pretrained\.channels: unknown 'first'"):
        adapt_channels(w, 1, "first")


def test_prefixes_nested_state_dicts_and_bad_files_are_named(tmp_path, rgb_network):
    prefixed = {"module." + k: v for k, v in rgb_network.state_dict().items()}
    path, md5 = save(tmp_path, {"state_dict": prefixed, "epoch": 3})
    model = build_model("small_cnn", 3, 5, (16, 16))
    load_pretrained(model, path, md5, strip_prefix="module.", head=last_layer(model))
    assert all(torch.equal(v, rgb_network.state_dict()[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match=r"missing \['final.1.bias'.*set pretrained.strip_prefix"):
        load_pretrained(model, path, md5)
    with pytest.raises(ValueError, match=r"MD5 .* but pretrained\.md5 says 0{32}"):
        load_pretrained(model, path, "0" * 32)
    with pytest.raises(ValueError, match="no such file"):
        load_pretrained(model, tmp_path / "none.pt", md5)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        load_pretrained(model, junk, file_md5(junk))
    wide = build_model("small_cnn", 3, 5, (16, 16), head="linear")
    state = rgb_network.state_dict()
    key = next(k for k, v in state.items() if v.ndim == 4 and k != next(iter(state)))
    state[key] = torch.zeros(1, *state[key].shape[1:])  # a middle layer of another width
    path, md5 = save(tmp_path, state, "bad.pt")
    with pytest.raises(ValueError, match=f"{key} has shape"):
        load_pretrained(wide, path, md5, head=last_layer(wide))


def test_a_run_starts_from_the_checkpoint(tmp_path, rgb_network):
    path, md5 = save(tmp_path, rgb_network.state_dict())
    images, labels = lesion_data()
    spec = {"loss": "ce", "pretrained": {"file": str(path), "md5": md5}}
    job = TrainingJob(run("multiclass", spec), arrays(images, labels, 40), LESIONS, CPU)
    model = job.network()
    source, loaded = rgb_network.state_dict(), model.state_dict()
    reads_image = [k for k in source if loaded[k].shape != source[k].shape and k.startswith("net.")]
    assert len(reads_image) == 2  # the first convolution and its residual projection
    for k in reads_image:
        assert torch.allclose(loaded[k], source[k].sum(1, keepdim=True))
    same = [k for k in source if k not in reads_image and not k.startswith("final.")]
    assert same and all(torch.equal(loaded[k], source[k]) for k in same)
    assert np.isfinite(model(torch.zeros(1, 1, 16, 16)).detach().numpy()).all()
