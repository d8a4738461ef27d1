"""A small study through ``profiles/slurm`` on a real single-node SLURM, against a local run.

Run by ``make test-slurm`` (as root: ``cluster.sh`` installs Debian's slurm-wlm, munge, slurmdbd
and MariaDB and starts them on loopback). Elsewhere it is skipped with the reason.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, SNAKEMAKE, run_snakemake

CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
STUDY = REPO / "tests" / "configs" / "slurm.yaml"
GPU_RULES = ("train", "train_extractor", "train_gan", "estimate_shift")

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(
        os.environ.get("MEDIMBALANCE_SLURM_TEST") != "1",
        reason="needs root and a throw-away SLURM: run `make test-slurm`",
    ),
]


@pytest.fixture(scope="module")
def cluster():
    # Not under pytest's private (0700) temporary folder: munged and MariaDB's user must reach it.
    state = Path(tempfile.mkdtemp(prefix="medimbalance-slurm-"))
    started = subprocess.run(
        [str(CLUSTER), "start", str(state)], capture_output=True, text=True, timeout=600
    )
    pids = {}
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        pids = {p.name: int(p.read_text()) for p in state.glob("**/*.pid")}
        assert {"munged.pid", "mariadbd.pid", "slurmdbd.pid", "slurmctld.pid", "slurmd.pid"} <= set(
            pids
        )
        yield state, {**os.environ, "SLURM_CONF": str(state / "conf" / "slurm.conf")}
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], timeout=120, check=False)
    # Every daemon it started is gone, and so is its configuration link.
    assert [name for name, pid in pids.items() if _alive(pid)] == []
    assert not os.path.lexists("/run/slurm/conf")
    shutil.rmtree(state)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"  # a zombie has exited


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same study run locally and through the SLURM profile."""
    state, env = cluster
    local = tmp_path_factory.mktemp("local")
    done = run_snakemake("--cores", "2", "--configfile", str(STUDY), "--directory", str(local))
    assert done.returncode == 0, done.stderr[-4000:]

    remote = tmp_path_factory.mktemp("remote")
    # The profile's placeholders become this cluster's partition and account; the GPU rules
    # ask for no GPU on this GPU-less node (a gpu request would fail at submission).
    overrides = [
        f"{rule}:{key}"
        for rule in GPU_RULES
        for key in ("slurm_partition=debug", "gpu=0", "cpus_per_gpu=0")
    ]
    command = [
        "timeout",
        "-s",
        "INT",
        "900",  # snakemake ignores SIGTERM while it waits on jobs
        *SNAKEMAKE,
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
        "--workflow-profile",
        str(REPO / "profiles" / "slurm"),
        "--configfile",
        str(STUDY),
        "--directory",
        str(remote),
        "--jobs",
        "2",
        "--default-resources",
        "slurm_partition=debug",
        "slurm_account=root",
        "runtime=10",
        "mem_mb=1000",
        "--set-resources",
        *overrides,
        "--slurm-init-seconds-before-status-checks",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    return state, env, local, remote


def sacct_jobs(env):
    out = subprocess.run(
        ["sacct", "-X", "--parsable2", "--noheader", "--format=JobIdRaw,State"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in out.splitlines())


def test_jobs_ran_through_sbatch_and_are_accounted(runs):
    state, env, _, remote = runs
    jobs = sacct_jobs(env)
    assert jobs and set(jobs.values()) == {"COMPLETED"}, jobs
    controller = (state / "log" / "slurmctld.log").read_text()
    env_files = sorted(remote.glob("results/cluster/runs/*/*/*/seed*/env.json"))
    assert len(env_files) == 2
    for path in env_files:
        job = json.loads(path.read_text())["scheduler_job"]["SLURM_JOB_ID"]
        assert jobs[job] == "COMPLETED"
        # Started by the main scheduler or by the backfill scheduler, whichever ran first.
        started = rf"(sched: Allocate|sched/backfill: _start_job: Started) JobId={job} "
        assert re.search(started, controller), [
            line for line in controller.splitlines() if f"JobId={job} " in line
        ]
    # Every job went through SLURM: one SLURM log per submission, naming the rules it ran. The
    # two evaluate jobs shared one submission (the profile's `evaluation` group).
    logs = sorted((remote / "logs" / "slurm").glob("**/*.log"))
    assert sorted(p.stem for p in logs) == sorted(jobs)
    ran = [rule for p in logs for rule in re.findall(r"^localrule (\w+):", p.read_text(), re.M)]
    assert ran.count("evaluate") == 2 and ran.count("train") == 2 and len(ran) == 12
    grouped = [p for p in logs if p.parent.name.startswith("group_evaluation")]
    assert len(grouped) == 1 and grouped[0].read_text().count("localrule evaluate:") == 2
    assert len(jobs) < len(ran)


def test_results_equal_a_local_run(runs):
    _, _, local, remote = runs
    tables = sorted(p.relative_to(local) for p in local.glob("results/cluster/tables/*.csv"))
    assert tables
    for table in tables:
        pd.testing.assert_frame_equal(pd.read_csv(local / table), pd.read_csv(remote / table))
    metrics = sorted(
        p.relative_to(local) for p in local.glob("results/cluster/runs/**/metrics.json")
    )
    assert len(metrics) == 2
    for path in metrics:
        assert json.loads((remote / path).read_text()) == json.loads((local / path).read_text())
    local_env = json.loads(next(local.glob("results/cluster/runs/**/env.json")).read_text())
    assert local_env["scheduler_job"] == {}
