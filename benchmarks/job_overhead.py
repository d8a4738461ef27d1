"""Benchmark: per-job start-up overhead against each job's own work, cold and warm.

Runs one study twice in fresh folders: cold (``MEDIMBALANCE_WARM_START=0``: every job a new
Python process that imports what it needs, the baseline) and warm (the default: jobs run in
forks of the warm-start server, ``medimbalance.jobs.warm``). Every rule script's log starts with
``start-up X s`` (from the start of the job's process to the end of its imports) and ends with
``job done after Y s`` (``medimbalance.jobs.logs``); the benchmark sums these per rule and reports
the share of job time spent starting up, and the wall time of both runs.

    .venv/bin/python benchmarks/job_overhead.py                     # tests/configs/tiny.yaml
    .venv/bin/python benchmarks/job_overhead.py --config config/config.yaml   # the demo
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
STARTUP = re.compile(r"start-up ([0-9.]+) s")
DONE = re.compile(r"job done after ([0-9.]+) s")


def run(config: Path, workdir: Path, cores: int, warm: bool) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIMBALANCE_WARM")}
    if not warm:
        env["MEDIMBALANCE_WARM_START"] = "0"
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "workflow/Snakefile"),
        "--cores",
        str(cores),
        "--configfile",
        str(config),
        "--directory",
        str(workdir),
        "--quiet",
        "all",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"snakemake failed ({'warm' if warm else 'cold'}):\n{done.stderr[-3000:]}")
    return wall


# Rules whose logs are shared between studies (logs/<folder>/..., not logs/<study>/<rule>/...).
SHARED_LOGS = {
    "download": "download",
    "extract": "extract_archive",
    "synthetic": "synthesize",
    "convert": "convert_source",
}


def job_seconds(logs: Path, study: str) -> list[dict]:
    """Every finished job under ``logs`` (a run's ``logs/`` folder): its rule, name, seconds and
    start-up seconds (jobs of other studies are left out; a log without its last line is a job
    that did not finish)."""
    jobs = []
    for log in sorted(logs.rglob("*.log")):
        text = log.read_text(errors="replace")
        done = DONE.search(text)
        if not done:
            continue
        parts = log.relative_to(logs).parts
        if parts[0] == study and len(parts) >= 3:
            rule = parts[1]
        elif parts[0] in SHARED_LOGS:
            rule = SHARED_LOGS[parts[0]]
        else:
            continue
        startup = STARTUP.search(text)
        jobs.append(
            {
                "rule": rule,
                "name": log.stem,
                "seconds": float(done.group(1)),
                "startup": float(startup.group(1)) if startup else 0.0,
            }
        )
    return jobs


def job_times(workdir: Path, study: str) -> dict[str, list[tuple[float, float]]]:
    """(start-up, total) seconds of every job, by rule."""
    times = defaultdict(list)
    for job in job_seconds(workdir / "logs", study):
        times[job["rule"]].append((job["startup"], job["seconds"]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "tests/configs/tiny.yaml")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    study = yaml.safe_load(args.config.read_text())["study"]
    results = {}
    with tempfile.TemporaryDirectory(prefix="medimbalance-overhead-") as tmp:
        for warm in (False, True):
            workdir = Path(tmp) / ("warm" if warm else "cold")
            wall = run(args.config.resolve(), workdir, args.cores, warm)
            results[warm] = (wall, job_times(workdir, study))
    (cold_wall, cold), (warm_wall, warm) = results[False], results[True]
    print(f"study {args.config}, {args.cores} cores\n")
    print(
        "| rule | jobs | start-up cold (s, median) | start-up warm | job total cold | "
        "job total warm | start-up share cold | start-up share warm |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    totals = {False: [0.0, 0.0], True: [0.0, 0.0]}
    for rule in sorted(cold):
        row = [rule, str(len(cold[rule]))]
        shares = []
        for mode, times in ((False, cold[rule]), (True, warm.get(rule, []))):
            startup = sum(s for s, _ in times)
            total = sum(t for _, t in times)
            totals[mode][0] += startup
            totals[mode][1] += total
            shares.append(f"{startup / total:.0%}" if total else "–")
        medians = [
            statistics.median(x) if x else float("nan")
            for x in (
                [s for s, _ in cold[rule]],
                [s for s, _ in warm.get(rule, [])],
                [t for _, t in cold[rule]],
                [t for _, t in warm.get(rule, [])],
            )
        ]
        row += [f"{m:.2f}" for m in medians] + shares
        print("| " + " | ".join(row) + " |")
    for mode, label in ((False, "cold"), (True, "warm")):
        startup, total = totals[mode]
        print(
            f"\n{label}: jobs' start-up {startup:.0f} s of {total:.0f} job-seconds "
            f"({startup / total:.0%})",
            end="",
        )
    print(
        f"\n\nwall time: cold {cold_wall:.1f} s, warm {warm_wall:.1f} s "
        f"(warm/cold = {warm_wall / cold_wall:.2f})"
    )


if __name__ == "__main__":
    main()
