"""benchmarks/demo_time.py: job-seconds per rule and per dataset from a run's logs."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from demo_time import job_seconds, summarise  # noqa: E402


def write_log(path: Path, seconds: float | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["... medimbalance: start-up 0.12 s (interpreter and imports)"]
    if seconds is not None:
        lines.append(f"... medimbalance: job done after {seconds:.2f} s")
    path.write_text("\n".join(lines) + "\n")


def fake_run(root: Path) -> Path:
    logs = root / "logs"
    write_log(logs / "demo/train/lesions_balanced_baseline_seed0.log", 4.0)
    write_log(logs / "demo/train/lesions_extra_longtail_ros_seed1.log", 6.0)  # longer name wins
    write_log(logs / "demo/train/lesions_longtail_ros_seed0.log", 2.5)
    write_log(logs / "demo/train/lesions_longtail_rus_seed0.log", None)  # killed: not counted
    write_log(logs / "demo/evaluate/lesions_balanced_baseline_seed0.log", 0.5)
    write_log(logs / "synthetic/graded_lesions/abc123.log", 1.0)  # shared between studies
    write_log(logs / "other/train/lesions_balanced_baseline_seed0.log", 99.0)  # another study
    return root


def test_jobs_are_summed_by_rule_and_training_by_dataset(tmp_path):
    jobs = job_seconds(fake_run(tmp_path) / "logs", "demo")
    assert sorted((j["rule"], j["seconds"]) for j in jobs) == [
        ("evaluate", 0.5), ("synthesize", 1.0), ("train", 2.5), ("train", 4.0), ("train", 6.0)
    ]  # fmt: skip
    s = summarise(jobs, ["lesions", "lesions_extra"])
    assert s["jobs"] == 5 and s["job_seconds"] == 14.0
    assert list(s["rules"]) == ["train", "synthesize", "evaluate"]  # largest first
    assert s["rules"]["train"] == {
        "jobs": 3, "seconds": 12.5, "share": 12.5 / 14, "median": 4.0, "max": 6.0
    }  # fmt: skip
    assert s["training_by_dataset"] == {
        "lesions": {"jobs": 2, "seconds": 6.5},
        "lesions_extra": {"jobs": 1, "seconds": 6.0},
    }
    assert s["longest_jobs"][0] == {
        "rule": "train", "name": "lesions_extra_longtail_ros_seed1", "seconds": 6.0
    }  # fmt: skip


def test_the_logs_of_an_earlier_run_are_reported_without_running_it(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"study": "demo", "datasets": {"lesions": {}}}))
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "demo_time.py"), "--config", str(config),
         "--logs", str(fake_run(tmp_path)), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| train | 3 | 12.5 | 89.3% | 4.00 | 6.0 |" in done.stdout
    assert "wall time" not in done.stdout  # nothing ran: no wall time, no scaling
    summary = json.loads(out.read_text())["summary"]
    assert summary["training_by_dataset"] == {"lesions": {"jobs": 3, "seconds": 12.5}}
