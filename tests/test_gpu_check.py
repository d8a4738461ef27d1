"""benchmarks/gpu_check.py, the one-command check of the CUDA path: on a machine without CUDA
it refuses unless told to run on the CPU, and its CPU smoke run trains every case, resumes a
killed run to the uninterrupted result and writes its report as JSON."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def gpu_check(*args: str) -> subprocess.CompletedProcess:
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_without_cuda_it_refuses_unless_told_to_use_the_cpu():
    out = gpu_check()
    assert out.returncode == 2
    assert "no CUDA device" in out.stdout and "--allow-cpu" in out.stdout


def test_the_cpu_smoke_run_trains_each_case_and_resumes_a_killed_run_exactly(tmp_path):
    report_path = tmp_path / "gpu_check.json"
    out = gpu_check(
        "--allow-cpu", "--quick", "--skip", "throughput", "jobs_per_gpu", "options",
        "--out", str(report_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(report_path.read_text())
    cases = report["cases"]
    assert set(cases) == {"classification", "sampler + augmentation", "two-phase", "3D U-Net",
                          "cDCGAN"}  # fmt: skip
    assert all(case["device"] == "cpu" for case in cases.values())
    assert cases["two-phase"]["epochs"] == 4  # both phases' epochs
    assert report["resume"] == {
        "killed_after_checkpoints": 1,
        "max_abs_output_difference": 0.0,
        "identical": True,
    }
    assert set(report["streaming"]["ratio"]) == set(report["streaming"]["batches_per_s"])
    assert report["errors"] == {}
    assert "| 3D U-Net | cpu | float32 |" in report["markdown"]
    assert report["environment"]["deterministic"]["algorithms"] is True
