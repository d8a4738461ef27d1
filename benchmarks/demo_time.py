"""Benchmark: where a study's time goes (the demo by default), and how fast the machine is.

Runs the study from scratch in a fresh folder with ``--cores`` cores, as ``make demo`` does
(jobs start warm), and times a bare PyTorch loop before and after it (``small_cnn`` on 28×28
images, one thread, batch 64: the bare loop of ``benchmarks/train_throughput.py``), so that a
wall time measured here can be set against another machine's. Reports the jobs and
job-seconds of every rule (each job's log ends with ``job done after Y s``,
``medimbalance.jobs.logs``; read as ``benchmarks/job_overhead.py`` reads them), the training
job-seconds of every dataset, the longest jobs, how busy the cores were (job-seconds / (wall
time × cores)), the wall time, and the wall time scaled to a machine whose bare loop runs at
``--reference`` images/s.

    .venv/bin/python benchmarks/demo_time.py                     # the demo on 2 cores
    .venv/bin/python benchmarks/demo_time.py --out demo_time.json
    .venv/bin/python benchmarks/demo_time.py --logs .            # an earlier run's logs only

With ``--logs FOLDER`` nothing runs: the table sums the logs under ``FOLDER/logs`` (e.g. the
checkout after ``make demo``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from job_overhead import job_seconds, run  # noqa: E402  (the logs' parser, the study's run)

# The bare loop of a 2-core machine slower than the one docs/benchmarks.md was measured on
# (images/s, small_cnn at 1 thread): the machine the demo's 10-minute target is set for.
REFERENCE_SPEED = 2286.0


def summarise(jobs: list[dict], datasets: list[str]) -> dict:
    """Job-seconds per rule (largest first) and training job-seconds per dataset."""
    rules = defaultdict(list)
    for job in jobs:
        rules[job["rule"]].append(job["seconds"])
    total = sum(job["seconds"] for job in jobs)
    per_rule = {
        rule: {
            "jobs": len(seconds),
            "seconds": sum(seconds),
            "share": sum(seconds) / total if total else 0.0,
            "median": statistics.median(seconds),
            "max": max(seconds),
        }
        for rule, seconds in sorted(rules.items(), key=lambda item: -sum(item[1]))
    }
    per_dataset = defaultdict(lambda: {"jobs": 0, "seconds": 0.0})
    for job in jobs:
        if job["rule"] != "train":
            continue
        # the longest dataset name the run's name starts with (names may share a prefix)
        owners = [d for d in datasets if job["name"].startswith(d + "_")]
        owner = max(owners, key=len) if owners else "?"
        per_dataset[owner]["jobs"] += 1
        per_dataset[owner]["seconds"] += job["seconds"]
    longest = [
        {k: job[k] for k in ("rule", "name", "seconds")}
        for job in sorted(jobs, key=lambda job: -job["seconds"])[:8]
    ]
    return {
        "jobs": len(jobs),
        "job_seconds": total,
        "rules": per_rule,
        "training_by_dataset": dict(sorted(per_dataset.items(), key=lambda i: -i[1]["seconds"])),
        "longest_jobs": longest,
    }


def bare_loop_speed(images: int = 5000, repeats: int = 3) -> float:
    """Images/s of the bare PyTorch loop (``small_cnn``, 28×28, one thread, batch 64, on the
    CPU), best of ``repeats`` epochs."""
    import numpy as np
    import torch

    sys.path.insert(0, str(REPO / "src"))
    from train_throughput import bare_epoch

    from medimbalance.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((images, 1, 28, 28), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 5, images))
    model = build_model("small_cnn", 1, 5, (28, 28))
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        bare_epoch(model, optimizer, x, y, 64, generator)
        best = min(best, time.perf_counter() - start)
    return images / best


def report(result: dict) -> str:
    """The summary as Markdown."""
    s = result["summary"]
    lines = [
        f"study `{result['study']}` ({result['config']})"
        + (f", {result['cores']} cores" if "cores" in result else "")
        + f": {s['jobs']} jobs, {s['job_seconds']:.0f} job-seconds",
        "",
        "| rule | jobs | job-seconds | share | median (s) | longest (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rule, r in s["rules"].items():
        lines.append(
            f"| {rule} | {r['jobs']} | {r['seconds']:.1f} | {r['share']:.1%} | "
            f"{r['median']:.2f} | {r['max']:.1f} |"
        )
    lines += ["", "| training runs of | jobs | job-seconds |", "|---|---:|---:|"]
    for dataset, r in s["training_by_dataset"].items():
        lines.append(f"| {dataset} | {r['jobs']} | {r['seconds']:.1f} |")
    lines += ["", "longest jobs: " + ", ".join(
        f"{j['rule']} {j['name']} {j['seconds']:.1f} s" for j in s["longest_jobs"]
    )]  # fmt: skip
    if "wall_seconds" in result:
        wall, speed = result["wall_seconds"], result["bare_loop_images_per_s"]
        lines += [
            "",
            f"wall time {wall:.0f} s; cores busy {result['utilisation']:.0%} "
            f"(job-seconds / (wall × cores))",
            f"bare loop (small_cnn, 1 thread): {speed['before']:,.0f} images/s before the "
            f"study, {speed['after']:,.0f} after",
            f"scaled to a machine whose bare loop runs at {result['reference_speed']:,.0f} "
            f"images/s: {result['scaled_wall_seconds']:.0f} s",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config/config.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--reference",
        type=float,
        default=REFERENCE_SPEED,
        help="bare-loop images/s of the machine to scale the wall time to",
    )
    parser.add_argument("--logs", type=Path, help="sum this folder's logs/ instead of running")
    parser.add_argument("--keep", type=Path, help="run in this (new) folder and keep it")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    study, datasets = config["study"], list(config.get("datasets", {}))
    result = {"study": study, "config": str(args.config)}
    if args.logs is not None:
        result["summary"] = summarise(job_seconds(args.logs / "logs", study), datasets)
    else:
        before = bare_loop_speed()
        with tempfile.TemporaryDirectory(prefix="medimbalance-demo-time-") as tmp:
            workdir = args.keep or Path(tmp) / "run"
            if workdir.exists():
                sys.exit(f"--keep {workdir}: the folder exists; name a new one")
            wall = run(args.config.resolve(), workdir, args.cores, warm=True)
            summary = summarise(job_seconds(workdir / "logs", study), datasets)
        after = bare_loop_speed()
        speed = (before + after) / 2
        result.update(
            summary=summary,
            cores=args.cores,
            wall_seconds=wall,
            utilisation=summary["job_seconds"] / (wall * args.cores),
            bare_loop_images_per_s={"before": before, "after": after},
            reference_speed=args.reference,
            scaled_wall_seconds=wall * speed / args.reference,
        )
    print(report(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
