"""Warm starts (medimbalance.jobs.warm): a job handed to the fork server behaves like a fresh
process, falls back to a cold start whenever the server cannot serve it, and gives the same
results."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import REPO, run_snakemake

from medimbalance.jobs import warm
from medimbalance.jobs.imports import preload_modules

JOB = textwrap.dedent(
    f"""
    import os, sys
    sys.path.insert(0, os.environ.get("SCRIPTS", {str(REPO / "workflow" / "scripts")!r}))
    import _libpath
    import json, time
    import medimbalance
    state = {{"pid": os.getpid(), "child": os.environ.get("{warm.CHILD_VARIABLE}"),
             "cwd": os.getcwd(), "argv": sys.argv, "x": os.environ.get("X"),
             "torch_loaded": "torch" in sys.modules, "library": medimbalance.__file__}}
    print(json.dumps(state), flush=True)
    print("to stderr", file=sys.stderr)
    if os.environ.get("SLEEP"):
        open(os.environ["PIDFILE"], "w").write(str(os.getpid()))
        time.sleep(float(os.environ["SLEEP"]))
    if os.environ.get("FAIL"):
        raise RuntimeError("job failed on purpose")
    sys.exit(int(os.environ.get("CODE", "0")))
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm")
    process, path = warm.start_server(str(folder))
    assert warm.wait_until_ready(process, path, timeout=120), "the warm-start server never came up"
    yield process, path
    warm.stop_server(process, path)
    assert process.poll() is not None and not os.path.exists(path)


def start_job(tmp_path, socket_path, *args, **env):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MEDIMBALANCE_WARM")}
    environ.update({warm.SOCKET_VARIABLE: socket_path, "OMP_NUM_THREADS": "1", **env})
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_job(tmp_path, socket_path, *args, **env):
    job = start_job(tmp_path, socket_path, *args, **env)
    out, err = job.communicate(timeout=120)
    return job, json.loads(out.splitlines()[0]), err


def test_a_served_job_runs_in_a_preloaded_child_with_its_own_cwd_env_and_streams(server, tmp_path):
    job, state, err = run_job(tmp_path, server[1], "a", "b", X="42", CODE="3")
    assert state["child"] == "1" and state["torch_loaded"]  # torch was imported by the server
    assert state["pid"] != job.pid
    assert state["cwd"] == str(tmp_path) and state["argv"][1:] == ["a", "b"] and state["x"] == "42"
    assert "to stderr" in err
    assert job.returncode == 3  # the child's exit status is the job's


def test_a_large_environment_reaches_the_child(server, tmp_path):
    big = {f"BIG{i}": str(i) * 100_000 for i in range(3)}  # 300 kB: more than one message
    job, state, _ = run_job(tmp_path, server[1], X="y", **big)
    assert job.returncode == 0 and state["child"] == "1" and state["x"] == "y"


def test_an_exception_in_a_served_job_fails_it_with_the_traceback(server, tmp_path):
    job, state, err = run_job(tmp_path, server[1], FAIL="1")
    assert state["child"] == "1"
    assert job.returncode == 1 and "RuntimeError: job failed on purpose" in err


@pytest.mark.parametrize(
    "env",
    [{"OMP_NUM_THREADS": "4"}, {warm.SWITCH_VARIABLE: "0"}, {warm.SOCKET_VARIABLE: "/nonexistent"}],
)
def test_jobs_start_cold_when_the_server_cannot_serve_them(server, tmp_path, env):
    job, state, _ = run_job(tmp_path, server[1], CODE="0", **env)
    assert job.returncode == 0
    assert state["child"] is None and not state["torch_loaded"] and state["pid"] == job.pid


def wait_for_pid(pidfile):
    for _ in range(600):
        if pidfile.exists() and pidfile.read_text():
            return int(pidfile.read_text())
        time.sleep(0.05)
    raise AssertionError("the job never started")


def served_sleeper(tmp_path, socket_path):
    """A served job that sleeps: its process and its child's pid."""
    pidfile = tmp_path / "child.pid"
    job = start_job(tmp_path, socket_path, SLEEP="60", PIDFILE=str(pidfile))
    child = wait_for_pid(pidfile)
    assert child != job.pid
    return job, child


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGTERM])
def test_the_child_does_not_outlive_its_job(server, tmp_path, kill):
    job, child = served_sleeper(tmp_path, server[1])
    job.send_signal(kill)  # SIGKILL: the child notices the closed socket; SIGTERM: passed on
    job.wait(timeout=30)
    assert job.returncode != 0
    for _ in range(100):
        if not os.path.exists(f"/proc/{child}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}")


@pytest.mark.parametrize("kill", [signal.SIGKILL, signal.SIGSEGV])
def test_a_job_whose_child_is_killed_ends_by_the_same_signal(server, tmp_path, kill):
    job, child = served_sleeper(tmp_path, server[1])
    os.kill(child, kill)  # e.g. the kernel's out-of-memory killer, or a crash in native code
    _, err = job.communicate(timeout=30)
    assert job.returncode == -kill  # what Snakemake reports for a cold job killed so
    assert f"killed by {kill.name}" in err


def test_a_job_of_another_checkout_runs_cold_with_its_own_library(server, tmp_path):
    # A second clone sharing the venv, where the first clone is installed in editable mode
    # (its src/ on the path before the second's): the second clone's jobs use its own library.
    other = tmp_path / "other"
    shutil.copytree(REPO / "src", other / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (other / "workflow" / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "workflow" / "scripts" / "_libpath.py", other / "workflow" / "scripts")
    job, state, _ = run_job(
        tmp_path,
        server[1],
        SCRIPTS=str(other / "workflow" / "scripts"),
        PYTHONPATH=str(REPO / "src"),
    )
    assert job.returncode == 0
    assert state["child"] is None and state["pid"] == job.pid  # the server refused it
    assert state["library"] == str(other / "src" / "medimbalance" / "__init__.py")
    # and this checkout's own jobs are still served, with this checkout's library
    job, state, _ = run_job(tmp_path, server[1], PYTHONPATH=str(other / "src"))
    assert state["child"] == "1" and state["library"].startswith(str(REPO / "src"))


def test_a_changed_library_file_stops_the_server(tmp_path):
    process, path = warm.start_server(str(tmp_path / "srv"))
    try:
        assert warm.wait_until_ready(process, path, timeout=120)
        library = REPO / "src" / "medimbalance" / "jobs" / "logs.py"
        before = library.stat()
        os.utime(library, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        try:
            job, state, _ = run_job(tmp_path, path, CODE="0")
        finally:
            os.utime(library, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert job.returncode == 0 and state["child"] is None  # started cold, from current code
        process.wait(timeout=30)  # and the stale server went away
    finally:
        warm.stop_server(process, path)


@pytest.mark.workflow
def test_warm_and_cold_runs_give_identical_results(server, tmp_path, monkeypatch):
    study = REPO / "tests" / "configs" / "slurm.yaml"
    runs = {}
    # Warm: every job is served by the running server (named in the environment, the Snakefile
    # starts none of its own). Cold: warm starts off, every job a fresh process.
    for mode, env in (("1", {warm.SOCKET_VARIABLE: server[1]}), ("0", {warm.SWITCH_VARIABLE: "0"})):
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            workdir = tmp_path / f"warm{mode}"
            done = run_snakemake(
                "--cores", "2", "--configfile", str(study), "--directory", str(workdir)
            )
            assert done.returncode == 0, done.stderr[-3000:]
        runs[mode] = workdir / "results" / "cluster" / "runs" / "lesions" / "longtail"
    for method in ("baseline", "ros"):
        warm_run, cold_run = (runs[m] / method / "seed0" for m in ("1", "0"))
        assert json.loads((warm_run / "env.json").read_text())["warm_start"] is True
        assert json.loads((cold_run / "env.json").read_text())["warm_start"] is False
        assert (warm_run / "metrics.json").read_text() == (cold_run / "metrics.json").read_text()
        with np.load(warm_run / "predictions.npz") as a, np.load(cold_run / "predictions.npz") as b:
            assert all(np.array_equal(a[k], b[k]) for k in b.files)


def test_no_server_on_a_machine_with_a_gpu(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    for name in warm.THREAD_VARIABLES:  # serve() sets them for the libraries it imports
        monkeypatch.setenv(name, os.environ.get(name, "1"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "job.py").write_text("import torch\n")
    warm.serve(str(tmp_path / "server.sock"), scripts=str(scripts))  # returns at once
    assert list(tmp_path.iterdir()) == [scripts]  # no socket


def test_the_server_preloads_what_the_rule_scripts_import():
    modules = preload_modules()
    # direct and transitive imports, imports inside functions, converters loaded by name
    expected = (
        "torch",
        "monai.networks.nets",
        "medimbalance.experiment",
        "medimbalance.losses",
        "nibabel",
        "imblearn.under_sampling",
        "medimbalance.data.medmnist",
    )
    assert set(expected) <= set(modules)
    assert not {"os", "json", "snakemake", "_libpath"} & set(modules)
