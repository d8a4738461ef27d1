"""Benchmark: how long Snakemake takes to build (dry-run) the DAG of large studies.

Writes studies of one synthetic dataset under two profiles with M copies of the baseline
method and S seeds (about 2·M·S training and evaluation jobs), and times
``snakemake -n --quiet`` on each in a fresh folder; the smallest study is the baseline the
others are compared with (seconds per 1,000 jobs).

    .venv/bin/python benchmarks/dag_build.py --jobs 200 2000 10000
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def study(methods: int, seeds: int) -> dict:
    """A config with ``methods`` baseline copies × ``seeds`` seeds × 2 profiles."""
    names = [f"m{i:04d}" for i in range(methods)]
    return {
        "study": "dag",
        "datasets": {
            "lesions": {
                "source": "synthetic_graded_lesions",
                "generator": {"n_per_class": 20, "image_size": 16},
                "split": {"val": 0.2, "test": 0.2},
                "profiles": ["balanced", "longtail"],
            }
        },
        "profiles": {
            "balanced": {"kind": "exponential", "mu": 1.0},
            "longtail": {"kind": "exponential", "mu": 0.1},
        },
        "methods": {n: {"resample": "none", "loss": "ce", "model": "small_cnn"} for n in names},
        "training": {"epochs": 1, "batch_size": 16, "lr": 0.001},
        "seeds": list(range(seeds)),
    }


def time_dry_run(config: dict) -> tuple[int, float]:
    """(jobs in the DAG, seconds) of ``snakemake -n`` on ``config``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--snakefile",
            str(REPO / "workflow" / "Snakefile"),
            "--directory",
            folder,
            "--configfile",
            str(path),
        ]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    total = re.search(r"^total\s+(\d+)", done.stdout, flags=re.M)
    return int(total.group(1)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs",
        type=int,
        nargs="+",
        default=[200, 2000, 10000],
        help="approximate job counts; the first is the baseline",
    )
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for target in args.jobs:
        methods = max(1, round(target / (4 * args.seeds)))  # train + evaluate per run
        jobs, seconds = time_dry_run(study(methods, args.seeds))
        rows.append((jobs, seconds))
        print(
            f"{methods} methods × {args.seeds} seeds × 2 profiles: {jobs} jobs, "
            f"DAG in {seconds:.1f} s",
            flush=True,
        )
    base_jobs, base_seconds = rows[0]
    print("| jobs | seconds | seconds per 1,000 jobs | ratio to the baseline's |")
    print("| --- | --- | --- | --- |")
    for jobs, seconds in rows:
        per = 1000 * seconds / jobs
        print(
            f"| {jobs:,} | {seconds:.1f} | {per:.2f} | "
            f"{per / (1000 * base_seconds / base_jobs):.2f} |"
        )


if __name__ == "__main__":
    main()
