"""Fault injection through real Snakemake: a killed job whose study then changed (the same
names, other data) starts afresh instead of resuming, for training, the GAN and the
autoencoders; a garbled intermediate fails naming itself, and after it is deleted the next run
trains what is missing instead of reporting "Nothing to be done"; a diverging run fails."""

import copy
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import yaml
from conftest import REPO, SNAKEMAKE, run_snakemake

pytestmark = pytest.mark.workflow

RUN = "results/faults/runs/lesions/tail/{method}/seed0"
STUDY = {
    "study": "faults",
    "datasets": {
        "lesions": {
            "source": "synthetic_graded_lesions",
            "generator": {"n_per_class": 60, "image_size": 28, "seed": 1},
            "split": {"val": 0.2, "test": 0.2, "seed": 0},
            "profiles": ["tail"],
            "methods": ["baseline", "one_class_ae", "gan"],
        }
    },
    "profiles": {"tail": {"kind": "exponential", "mu": 0.5}},
    "methods": {
        "baseline": {"resample": "none", "loss": "ce", "model": "small_cnn"},
        "one_class_ae": {"resample": "none", "model": "small_cnn", "schedule": "one_class"},
        "gan": {
            "resample": "cdcgan",
            "resample_args": {
                "gan": {"epochs": 12, "width": 8, "latent_dim": 8, "batch_size": 8},
            },
            "loss": "ce",
            "model": "small_cnn",
        },
    },
    "training": {"epochs": 8, "batch_size": 8, "lr": 0.001},
    "feature_extractor": {"training": {"epochs": 1}},
    "seeds": [0],
}


def write_study(folder, edit=None):
    config = copy.deepcopy(STUDY)
    if edit:
        edit(config)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.yaml").write_text(yaml.safe_dump(config))
    return folder / "study.yaml"


def study_args(folder, *targets):
    return [
        "--cores",
        "2",
        "--configfile",
        str(folder / "study.yaml"),
        "--directory",
        str(folder),
        *targets,
    ]


def snakemake(folder, *targets, check=True):
    done = run_snakemake(*study_args(folder, *targets))
    if check:
        assert done.returncode == 0, done.stderr[-4000:]
    return done


def kill_when_checkpointed(folder, target, checkpoint_folder, timeout=300):
    """Run Snakemake for ``target`` and SIGKILL it (and its jobs) as soon as the first training
    state appears in ``checkpoint_folder``: a job killed mid-training, as by a cluster limit."""
    command = [*SNAKEMAKE, "--snakefile", str(REPO / "workflow" / "Snakefile")]
    command += study_args(folder, target)
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end and process.poll() is None:
            if list(checkpoint_folder.glob(".checkpoint_*.pt")):
                break
            time.sleep(0.005)
        assert process.poll() is None, "the job ended before it was killed"
        assert list(checkpoint_folder.glob(".checkpoint_*.pt")), "no checkpoint appeared"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    time.sleep(0.5)  # a served job notices its job process is gone and ends itself
    unlock = run_snakemake(
        "--unlock", "--configfile", str(folder / "study.yaml"), "--directory", str(folder)
    )
    assert unlock.returncode == 0, unlock.stderr[-2000:]


def set_mu(config):
    config["profiles"]["tail"]["mu"] = 0.3


def set_generator_seed(config):
    config["datasets"]["lesions"]["generator"]["seed"] = 2


def set_split_seed(config):
    config["datasets"]["lesions"]["split"]["seed"] = 1


CASES = {
    # what trains, the file it writes, where its checkpoints are, what changes in between
    "training, other profile mu": ("baseline", RUN + "/predictions.npz", RUN, set_mu),
    "GAN, other generator seed": (
        "gan",
        "results/faults/gans/lesions/tail/gan/generator.pt",
        "results/faults/gans/lesions/tail/gan",
        set_generator_seed,
    ),
    "autoencoders, other split seed": (
        "one_class_ae",
        RUN + "/predictions.npz",
        RUN,
        set_split_seed,
    ),
}


def arrays(path):
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return {k: archive[k] for k in archive.files}
    import torch

    return {k: v.numpy() for k, v in torch.load(path, weights_only=True)["state_dict"].items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_killed_job_of_a_changed_study_starts_afresh(tmp_path, case):
    method, output, checkpoints, change = CASES[case]
    output, checkpoints = output.format(method=method), checkpoints.format(method=method)
    killed = tmp_path / "killed"
    write_study(killed)
    kill_when_checkpointed(killed, output, killed / checkpoints)
    write_study(killed, change)  # the same names, other data
    snakemake(killed, output)
    log = "\n".join(p.read_text() for p in (killed / "logs").rglob("*.log"))
    assert "discarding" in log and "other settings, data or library code" in log
    assert "resumed" not in log
    clean = tmp_path / "clean"
    write_study(clean, change)
    snakemake(clean, output)
    got, expected = arrays(killed / output), arrays(clean / output)
    assert got.keys() == expected.keys()
    assert all(np.array_equal(got[k], expected[k]) for k in expected)


def test_an_unchanged_killed_job_resumes_to_the_uninterrupted_result(tmp_path):
    output = RUN.format(method="baseline") + "/predictions.npz"
    killed = tmp_path / "killed"
    write_study(killed)
    kill_when_checkpointed(killed, output, killed / RUN.format(method="baseline"))
    snakemake(killed, output)
    log = "\n".join(p.read_text() for p in (killed / "logs").rglob("*.log"))
    assert "resumed train from" in log
    clean = tmp_path / "clean"
    write_study(clean)
    snakemake(clean, output)
    got, expected = arrays(killed / output), arrays(clean / output)
    assert all(np.array_equal(got[k], expected[k]) for k in expected)


def baseline_only(config):
    config["datasets"]["lesions"]["methods"] = ["baseline"]
    config["training"]["epochs"] = 2


def test_a_garbled_intermediate_is_named_and_a_deleted_run_is_trained_again(tmp_path):
    write_study(tmp_path, baseline_only)
    snakemake(tmp_path)
    run = tmp_path / RUN.format(method="baseline")
    table = tmp_path / "results/faults/tables/lesions_tail.csv"
    before = table.read_text()
    (run / "predictions.npz").write_bytes(b"garbage" * 100)  # e.g. a disk error
    failed = snakemake(tmp_path, check=False)
    assert failed.returncode != 0
    log = tmp_path / "logs/faults/evaluate/lesions_tail_baseline_seed0.log"
    text = failed.stderr + (log.read_text() if log.exists() else "")
    assert f"cannot read {RUN.format(method='baseline')}/predictions.npz: " in text
    assert "not a NumPy .npy or .npz file" in text and "delete it and rerun snakemake" in text
    (run / "predictions.npz").unlink()  # as the message says
    (run / "model.pt").unlink(missing_ok=True)
    plan = run_snakemake(
        "-n", "--configfile", str(tmp_path / "study.yaml"), "--directory", str(tmp_path)
    )
    assert "Nothing to be done" not in plan.stdout + plan.stderr
    assert "rule train:" in plan.stdout
    snakemake(tmp_path)
    assert table.read_text() == before  # the same run again: the same table


def test_a_diverging_run_fails_and_leaves_no_metrics(tmp_path):
    def diverge(config):
        baseline_only(config)
        config["training"].update(lr=1e6, epochs=3)

    write_study(tmp_path, diverge)
    failed = snakemake(tmp_path, check=False)
    assert failed.returncode != 0
    log = (tmp_path / "logs/faults/train/lesions_tail_baseline_seed0.log").read_text()
    assert "training diverged" in log
    run = tmp_path / RUN.format(method="baseline")
    assert not (run / "metrics.json").exists() and not (run / "model.pt").exists()
    assert not (tmp_path / "results/faults/tables/lesions_tail.csv").exists()
