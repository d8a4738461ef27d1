"""Fill the generated blocks of docs/results.md and README.md from a finished study's outputs.

    .venv/bin/python docs/results.py results/demo [--wall-seconds S] [--check]
    .venv/bin/python docs/results.py results/<study> --config config/studies/<study>.yaml
        [--wall-seconds S] [--validation]

A study fills ``<study>/<table>`` with each of its declared tables (``tables:`` of its config,
rendered by the workflow in ``results/<study>/tables/paper/``), ``<study>/provenance``, and
with ``--validation`` the best validation score of every run (``<study>/validation``, for a
study that chooses a recipe). The demo (``config/config.yaml``, the default) also fills its
calibration and estimation summaries and the README's excerpt (its table ``excerpt``).

Every number in a block ``<!-- generated: NAME -->`` … ``<!-- end -->`` comes from the
study's tables (``results/<study>/tables/``), its runs' ``env.json`` and ``run_config.json``,
and a dry run of its DAG; the text between blocks is written by hand and refers to them.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DOC, README = ROOT / "docs" / "results.md", ROOT / "README.md"


def tidy_cell(row: pd.Series, digits: int = 3) -> str:
    return f"{row['mean']:.{digits}f} ± {row['std']:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def calibration(tables: Path) -> str:
    frame = pd.read_csv(tables / "graded_lesions_longtail_calibration.csv")
    frame = frame.set_index(["method", "scaler", "metric"])  # tidy: one row per cell
    rows = []
    for method in dict.fromkeys(frame.index.get_level_values("method")):
        rows.append(
            [
                method,
                *(
                    tidy_cell(frame.loc[(method, scaler, metric)])
                    for metric in ("ece", "nll")
                    for scaler in ("none", "temperature")
                ),
            ]
        )
    header = [
        "method (long tail)",
        "test ECE",
        "ECE after temperature scaling",
        "test NLL",
        "NLL after temperature scaling",
    ]
    return table(header, rows)


def estimation(tables: Path) -> str:
    rows, header = [], None
    for name, label in (
        ("graded_lesions_longtail_shift", "accuracy, long tail"),
        ("tumours_natural_shift", "Dice, tumours"),
    ):
        frame = pd.read_csv(tables / f"{name}.csv")
        shifted = frame[frame["kind"] != "none"]
        for method, part in shifted.groupby("method", sort=False):
            errors = part.groupby("estimator", sort=False)["abs_error"].mean() * 100
            header = header or ["estimator", *errors.index]
            rows.append([f"{method} {label}", *(f"{e:.1f}" for e in errors)])
    return table(header, rows)


def job_count(configs: list[Path]) -> int:
    """Jobs of the study on a fresh machine (a dry run in an empty folder), without ``all``."""
    with tempfile.TemporaryDirectory() as empty:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "snakemake",
                "-n",
                "--snakefile",
                str(ROOT / "workflow/Snakefile"),
                "--configfile",
                *map(str, configs),
                "--directory",
                empty,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    return int(re.search(r"^total\s+(\d+)$", done.stdout, flags=re.M).group(1)) - 1


def provenance(
    results: Path,
    wall_seconds: float | None,
    config_files: list[Path],
    command: str = "make clean && time make demo",
) -> str:
    envs = [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/*/*/seed*/env.json"))]
    configs = [json.loads(p.read_text()) for p in results.glob("runs/*/*/*/seed*/run_config.json")]
    commits = sorted(
        {e["git"]["commit"][:7] + (" (dirty)" if e["git"]["dirty"] else "") for e in envs}
    )
    seeds = sorted({c["seed"] for c in configs})
    env = envs[0]
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if k != "medimbalance")
    jobs = job_count(config_files)
    names = " + ".join(f"`{c.resolve().relative_to(ROOT)}`" for c in config_files)
    lines = [
        f"- **Study**: `{results.name}` ({names}): {jobs} jobs on "
        "a fresh machine, "
        f"{len(envs)} of them training runs; seeds {', '.join(map(str, seeds))}; tables show "
        "mean ± std over seeds.",
        f"- **Commit**: {', '.join(commits)}.",
        f"- **Hardware**: {env['platform']}, device `{env['device']}`, "
        f"{env['torch_threads']} torch thread(s) per job; Python {env['python']}, {packages}.",
    ]
    if wall_seconds is not None:
        lines.append(
            f"- **Wall time**: {wall_seconds:.0f} s for the whole study"
            f"{' and its report' if 'make demo' in command else ''} "
            f"(`{command}`, {os.cpu_count()} CPU cores)."
        )
    return "\n".join(lines)


DEMO = ROOT / "config" / "config.yaml"
# The demo's summaries of tables that are not declared tables (several scalers, estimators).
DEMO_BLOCKS = {"calibration": calibration, "estimation": estimation}


def validation(results: Path) -> str:
    """The best epoch's validation value of every run's monitored metric (history.json)."""
    rows = []
    for path in sorted(results.glob("runs/*/*/*/seed*/history.json")):
        run = json.loads((path.parent / "run_config.json").read_text())
        monitor = run["training"]["monitor"]
        values = [r[f"val_{monitor}"] for r in json.loads(path.read_text())["epochs"]]
        best = min(values) if monitor in ("mse", "mae", "loss") else max(values)
        rows.append(
            [
                run["method"],
                run["dataset"],
                str(run["seed"]),
                f"{run['training']['lr']:g}",
                f"{best:.4f}",
                str(values.index(best) + 1),
            ]
        )
    header = ["method", "dataset", "seed", "learning rate", "best validation value", "epoch"]
    runs = pd.DataFrame(rows, columns=header)
    runs["value"] = runs["best validation value"].astype(float)
    summary = [
        [method, dataset, rate, f"{part['value'].mean():.4f}", f"{part['value'].max():.4f}"]
        for (method, dataset, rate), part in runs.groupby(
            ["method", "dataset", "learning rate"], sort=False
        )
    ]
    over_seeds = ["method", "dataset", "learning rate", "mean over seeds", "worst seed"]
    return table(header, rows) + "\n\n" + table(over_seeds, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the study's folder, e.g. results/demo")
    parser.add_argument("--wall-seconds", type=float, help="measured wall time of the study")
    parser.add_argument(
        "--config",
        type=Path,
        nargs="+",
        default=[DEMO],
        help="the study's config (the demo), and files merged into it as by --configfile",
    )
    parser.add_argument("--validation", action="store_true", help="fill <study>/validation")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a committed block's numbers differ from the outputs'",
    )
    args = parser.parse_args()
    config = {}
    for path in args.config:  # later files override top-level keys, as Snakemake merges them
        config.update(yaml.safe_load(path.read_text()))
    study = config["study"]
    tables = args.results / "tables" / "paper"
    blocks = {
        f"{study}/{name}": (tables / f"{name}.md").read_text().strip()
        for name in config.get("tables", {})
    }
    demo = [c.resolve() for c in args.config] == [DEMO]
    command = (
        "make clean && time make demo"
        if demo
        else f"snakemake --cores {os.cpu_count()} --configfile "
        + " ".join(str(c.resolve().relative_to(ROOT)) for c in args.config)
    )
    blocks[f"{study}/provenance"] = provenance(
        args.results, args.wall_seconds, args.config, command
    )
    if args.validation:
        blocks[f"{study}/validation"] = validation(args.results)
    differing = []
    if demo:
        excerpt = blocks.pop(f"{study}/excerpt")
        readme = {f"{study}/excerpt": excerpt + "\n\n" + blocks[f"{study}/provenance"]}
        differing += fill(README, readme, args.check)
        blocks.update({f"{study}/{k}": f(args.results / "tables") for k, f in DEMO_BLOCKS.items()})
    differing += fill(RESULTS_DOC, blocks, args.check)
    if differing:
        raise SystemExit(
            f"the committed numbers differ from those of {args.results}:\n" + "\n".join(differing)
        )


# Lines of a block that name the run rather than its results: not compared by --check.
PROVENANCE = re.compile(r"^- \*\*(Study|Commit|Hardware|Wall time)\*\*:.*$\n?", re.M)


def fill(doc: Path, blocks: dict[str, str], check: bool = False) -> list[str]:
    """Replace the body of each named generated block of ``doc``; with ``check``, write nothing
    and return a unified diff of each block whose results differ (provenance lines aside)."""
    text = doc.read_text()
    differing = []
    for name, body in blocks.items():
        pattern = re.compile(
            rf"(<!-- generated: {re.escape(name)} -->\n)(.*?\n)??(<!-- end -->)", re.S
        )
        found = pattern.search(text)
        if not found:
            raise SystemExit(f"{doc}: no block <!-- generated: {name} --> … <!-- end -->")
        old, new = (
            PROVENANCE.sub("", found.group(2) or "").strip(),
            PROVENANCE.sub("", body).strip(),
        )
        if check and old != new:
            lines = difflib.unified_diff(
                old.splitlines(), new.splitlines(), f"{doc.name}: {name}", "outputs", lineterm=""
            )
            differing.append("\n".join(lines))
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(3), text)
    if check:
        print(f"checked {len(blocks)} block(s) of {doc}: {len(differing)} differ")
        return differing
    doc.write_text(text)
    print(f"filled {len(blocks)} block(s) of {doc}")
    return []


if __name__ == "__main__":
    main()
