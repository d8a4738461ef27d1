"""Checkpoints: a state is restored only into the run that wrote it; model files round-trip."""

import pytest
import torch

from medimbalance.checkpoints import Checkpoints, load_model_file, save_model
from medimbalance.models import build_model


def parts(seed):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    return {
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "generator": torch.Generator().manual_seed(seed),
    }


def test_a_state_is_restored_only_for_its_identity_and_phase(tmp_path):
    saved = parts(0)
    torch.randn(5, generator=saved["generator"])  # advance the stream
    Checkpoints(tmp_path, "run-a").save("train", saved, {"epoch": 3, "history": [{"x": 1.0}]})
    assert Checkpoints(tmp_path, "run-a").path("train").name == ".checkpoint_train.pt"

    other = parts(1)
    assert Checkpoints(tmp_path, "run-a").restore("finetune", other) is None  # another phase
    assert not torch.equal(other["model"].weight, saved["model"].weight)  # nothing loaded

    state = Checkpoints(tmp_path, "run-a").restore("train", other)
    assert state == {"epoch": 3, "history": [{"x": 1.0}]}
    assert torch.equal(other["model"].weight, saved["model"].weight)
    assert torch.equal(other["generator"].get_state(), saved["generator"].get_state())


def test_a_state_of_another_run_is_discarded_with_a_log_line(tmp_path, caplog):
    caplog.set_level("INFO", logger="medimbalance.checkpoints")
    Checkpoints(tmp_path, "run-a").save("train", parts(0), {"epoch": 3})
    other = parts(1)
    before = other["model"].weight.clone()
    assert Checkpoints(tmp_path, "run-b").restore("train", other) is None
    assert torch.equal(other["model"].weight, before)  # nothing loaded
    assert not (tmp_path / ".checkpoint_train.pt").exists()
    assert "written by a run with other settings, data or library code" in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),  # disk full
        lambda path: path.write_bytes(b"garbage" * 50),
        lambda path: path.write_bytes(b""),
    ],
    ids=["truncated", "garbled", "empty"],
)
def test_an_unreadable_state_is_named_discarded_and_the_phase_starts_afresh(
    tmp_path, caplog, damage
):
    caplog.set_level("INFO", logger="medimbalance.checkpoints")
    checkpoints = Checkpoints(tmp_path, "run")
    checkpoints.save("train", parts(0), {"epoch": 3})
    damage(checkpoints.path("train"))
    assert checkpoints.restore("train", parts(1)) is None
    assert not checkpoints.path("train").exists()
    assert f"discarding {checkpoints.path('train')}" in caplog.text
    assert "cannot be read" in caplog.text


def test_an_unreadable_model_file_is_named(tmp_path):
    path = tmp_path / "model.pt"
    save_model(path, torch.nn.Linear(2, 2), {"seed": 0}, {"classes": ["a", "b"]})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"cannot read {path}: .*delete it and rerun snakemake"):
        load_model_file(path)


def test_phase_names_become_file_names_and_clear_removes_every_state(tmp_path):
    checkpoints = Checkpoints(tmp_path / "run", "id")
    checkpoints.save("autoencoder[grade 0]", parts(0), {"epoch": 1})
    checkpoints.save("train", parts(0), {"epoch": 1})
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == [".checkpoint_autoencoder_grade_0_.pt", ".checkpoint_train.pt"]
    checkpoints.clear()
    assert list((tmp_path / "run").iterdir()) == []


def test_model_file_embeds_config_and_reloads(tmp_path):
    model = build_model("small_cnn", 1, 2, (12, 12))
    path = tmp_path / "model.pt"
    save_model(path, model, {"method": "baseline"}, {"classes": ["a", "b"]})
    state = load_model_file(path)
    assert state["run_config"] == {"method": "baseline"} and state["meta"]["classes"] == ["a", "b"]
    fresh = build_model("small_cnn", 1, 2, (12, 12))
    fresh.load_state_dict(state["state_dict"])
    x = torch.randn(4, 1, 12, 12)
    assert torch.equal(fresh.eval()(x), model.eval()(x))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
