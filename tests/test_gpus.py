"""The lock-file GPU pool with fake device counts: concurrent jobs get distinct devices."""

import os
import signal
import subprocess
import sys

import pytest

from medimbalance.jobs import gpus

# A fake GPU job: claims one of N devices, prints "<index> <claim time>", holds it HOLD seconds.
JOB = """
import sys, time
from medimbalance.jobs.gpus import claim_device
index = claim_device(int(sys.argv[1]), folder=sys.argv[2], poll=0.05)
print(index, time.monotonic(), flush=True)
time.sleep(float(sys.argv[3]))
print(time.monotonic(), flush=True)
"""


def start_job(n_devices, folder, hold, **env):
    environ = {k: v for k, v in os.environ.items() if k not in gpus.SCHEDULER_VARIABLES}
    environ.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.Popen(
        [sys.executable, "-c", JOB, str(n_devices), str(folder), str(hold)],
        stdout=subprocess.PIPE,
        text=True,
        env={**environ, **env},
    )


@pytest.fixture
def released():
    yield
    gpus.release_all()


def test_concurrent_jobs_get_distinct_devices_and_the_extra_one_waits(tmp_path):
    jobs = [start_job(2, tmp_path, 1.5) for _ in range(3)]
    spans = []
    for job in jobs:
        out, _ = job.communicate(timeout=60)
        assert job.returncode == 0
        claim, end = out.split("\n")[:2]
        index, start = claim.split()
        spans.append((int(index), float(start), float(end)))
    assert {index for index, _, _ in spans} == {0, 1}
    for i, (index_a, start_a, end_a) in enumerate(spans):
        for index_b, start_b, end_b in spans[i + 1 :]:
            if start_a < end_b and start_b < end_a:  # held at the same time
                assert index_a != index_b
    # two devices, three jobs: one waited until another had finished
    first_end = min(end for _, _, end in spans)
    assert max(start for _, start, _ in spans) >= first_end


def test_a_killed_job_frees_its_device(tmp_path, released):
    job = start_job(1, tmp_path, 60)
    assert job.stdout.readline().split()[0] == "0"  # it holds the only device
    with pytest.raises(TimeoutError, match=r"all 1 GPU\(s\) .*--resources gpu=1"):
        gpus.claim_device(1, folder=tmp_path, timeout=0.3, poll=0.05, environ={})
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert gpus.claim_device(1, folder=tmp_path, timeout=5, poll=0.05, environ={}) == 0
    assert gpus.claim_device(1, folder=tmp_path, environ={}) == 0  # a second call: same device


def test_locks_name_physical_devices_under_cuda_visible_devices(tmp_path, released):
    job = start_job(2, tmp_path, 60, CUDA_VISIBLE_DEVICES="2,3")
    assert job.stdout.readline().split()[0] == "0"  # torch's cuda:0 here is device 2
    assert (tmp_path / "gpu-2.lock").exists()
    try:
        # a job that sees devices 2 and 3 in the same order must take cuda:1 (device 3) ...
        environ = {"CUDA_VISIBLE_DEVICES": "2,3"}
        assert gpus.claim_device(2, folder=tmp_path, timeout=5, environ=environ) == 1
        gpus.release_all()
        # ... and one that sees all four may take device 0, which nobody holds
        assert gpus.claim_device(4, folder=tmp_path, timeout=5, environ={}) == 0
    finally:
        job.kill()
        job.wait()
    with pytest.raises(ValueError, match="names 1 device"):
        gpus.device_names(2, {"CUDA_VISIBLE_DEVICES": "0"})


@pytest.mark.parametrize(
    "environ, n_devices",
    [
        ({"SLURM_JOB_ID": "7"}, 4),
        ({"LSB_JOBID": "7"}, 4),
        ({"MEDIMBALANCE_GPU_POOL": "off"}, 4),
        ({}, 0),
    ],
)
def test_no_pool_under_a_scheduler_when_off_or_without_devices(tmp_path, environ, n_devices):
    assert gpus.claim_device(n_devices, folder=tmp_path, environ=environ) is None
    assert list(tmp_path.iterdir()) == []


def test_lock_folder_is_per_user_unless_set(tmp_path):
    assert gpus.lock_dir({}).name == f"medimbalance-gpus-{os.getuid()}"
    assert gpus.lock_dir({gpus.LOCK_DIR_VARIABLE: str(tmp_path)}) == tmp_path


def test_several_jobs_per_device_share_it_up_to_its_slots_and_spread_first(tmp_path):
    # 2 devices × 2 slots, 5 jobs: at most two at once on a device; the fifth waits.
    slots = {"MEDIMBALANCE_JOBS_PER_GPU": "2"}
    jobs = [start_job(2, tmp_path, 2.0, **slots) for _ in range(5)]
    spans = []
    for job in jobs:
        out, _ = job.communicate(timeout=60)
        assert job.returncode == 0
        claim, end = out.split("\n")[:2]
        index, start = claim.split()
        spans.append((int(index), float(start), float(end)))
    for device in (0, 1):
        mine = [(s, e) for i, s, e in spans if i == device]
        # at each claim, how many of this device's jobs are running (itself included)
        assert all(sum(s <= t < e for s, e in mine) <= 2 for t, _ in mine), mine
    first_end = min(end for _, _, end in spans)
    assert sorted(start for _, start, _ in spans)[-1] >= first_end  # one job waited
    assert sorted(p.name for p in tmp_path.glob("*.lock")) == [
        "gpu-0.slot0.lock", "gpu-0.slot1.lock", "gpu-1.slot0.lock", "gpu-1.slot1.lock"
    ]  # fmt: skip


def test_slots_are_tried_device_first_and_a_killed_job_frees_its_slot(tmp_path, released):
    assert gpus.slot_locks(["0", "1"], 2) == [
        (0, "gpu-0.slot0.lock"), (1, "gpu-1.slot0.lock"),
        (0, "gpu-0.slot1.lock"), (1, "gpu-1.slot1.lock"),
    ]  # fmt: skip
    assert gpus.slot_locks(["3"], 1) == [(0, "gpu-3.lock")]  # one slot: the plain pool's file
    slots = {"MEDIMBALANCE_JOBS_PER_GPU": "2"}
    held = [start_job(1, tmp_path, 60, **slots) for _ in range(2)]
    try:
        assert [job.stdout.readline().split()[0] for job in held] == ["0", "0"]
        with pytest.raises(TimeoutError, match=r"by 2 job\(s\) each .*--resources gpu=2"):
            gpus.claim_device(1, folder=tmp_path, timeout=0.3, poll=0.05, environ=slots)
        held[0].send_signal(signal.SIGKILL)
        held[0].wait()
        assert gpus.claim_device(1, folder=tmp_path, timeout=5, poll=0.05, environ=slots) == 0
    finally:
        for job in held:
            job.kill()
            job.wait()


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_jobs_per_gpu_value_is_refused_by_name(tmp_path, value):
    with pytest.raises(
        ValueError, match=f"MEDIMBALANCE_JOBS_PER_GPU must be a whole number ≥ 1, got '{value}'"
    ):
        gpus.claim_device(2, folder=tmp_path, environ={"MEDIMBALANCE_JOBS_PER_GPU": value})
