"""Fill the generated blocks of docs/results.md and README.md from a finished study's outputs.

    .venv/bin/python docs/results.py results/demo [--wall-seconds S]

Every number in a block ``<!-- generated: NAME -->`` … ``<!-- end -->`` comes from the
study's tables (``results/<study>/tables/*.csv``), its runs' ``env.json`` and
``run_config.json`` and Snakemake's log of the run (``.snakemake/log/``); the text between
blocks is written by hand and refers to them.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

DOCS = Path(__file__).parent
RESULTS_DOC, README = DOCS / "results.md", DOCS.parent / "README.md"
# The rows of the README's excerpt: the baseline, and a resampler, a loss and a sampler.
EXCERPT = ("baseline", "rus", "logit_adjusted", "weighted_sampler_aug")


def cell(row: pd.Series, metric: str, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    mean, std = row[f"{metric}_mean"] * scale, row[f"{metric}_std"] * scale
    return f"{mean:.{digits}f} ± {std:.{digits}f}{unit}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def read(tables: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(tables / f"{name}.csv", index_col=0)


def classification(tables: Path) -> str:
    balanced, longtail = (
        read(tables, "graded_lesions_balanced"),
        read(tables, "graded_lesions_longtail"),
    )
    rows = [
        [
            m,
            cell(balanced.loc[m], "balanced_accuracy"),
            cell(longtail.loc[m], "balanced_accuracy"),
            cell(longtail.loc[m], "recall[grade_4]"),
        ]
        for m in longtail.index
    ]
    header = [
        "method",
        "balanced accuracy, balanced profile (μ = 1)",
        "balanced accuracy, long tail (μ = 0.05)",
        "recall of grade 4 (rarest), long tail",
    ]
    return table(header, rows)


def multilabel(tables: Path) -> str:
    f = read(tables, "findings_natural")
    rows = [
        [
            m,
            cell(r, "auroc"),
            cell(r, "average_precision"),
            cell(r, "auroc[fibrosis]"),
            cell(r, "auroc[hernia]"),
        ]
        for m, r in f.iterrows()
    ]
    header = [
        "multi-label (14 findings)",
        "macro AUROC",
        "macro average precision",
        "AUROC of fibrosis (1.5 %)",
        "AUROC of hernia (0.2 %)",
    ]
    return table(header, rows)


def segmentation(tables: Path) -> str:
    t = read(tables, "tumours_natural")
    rows = [
        [
            m,
            cell(r, "dice"),
            cell(r, "hd95", 2),
            cell(r, "dice[edema]"),
            cell(r, "dice[non_enhancing]"),
            cell(r, "dice[enhancing]"),
        ]
        for m, r in t.iterrows()
    ]
    header = [
        "segmentation (tumour 1 % of pixels)",
        "mean foreground Dice",
        "HD95 (pixels)",
        "Dice edema",
        "Dice non-enhancing",
        "Dice enhancing",
    ]
    return table(header, rows)


def regression(tables: Path) -> str:
    u, n = read(tables, "std_regression_u1_5"), read(tables, "std_regression_normal_5_5")
    rows = [
        [
            m,
            cell(u.loc[m], "mse"),
            cell(u.loc[m], "percentage_error", 1, unit=" %"),
            cell(u.loc[m], "mae_few"),
            cell(n.loc[m], "mse"),
            cell(n.loc[m], "percentage_error", 1, unit=" %"),
        ]
        for m in u.index
    ]
    header = [
        "regression, tested on s ~ U(1, 10)",
        "MSE, trained on U(1, 5)",
        "percentage loss, U(1, 5)",
        "MAE few-shot bins, U(1, 5)",
        "MSE, trained on N(5.5, 1)",
        "percentage loss, N(5.5, 1)",
    ]
    return table(header, rows)


def calibration(tables: Path) -> str:
    frame = pd.read_csv(tables / "graded_lesions_longtail_calibration.csv")
    rows = []
    for method, part in frame.groupby("method", sort=False):
        before, after = (
            part.set_index("scaler").loc["none"],
            part.set_index("scaler").loc["temperature"],
        )
        rows.append(
            [
                method,
                cell(before, "ece"),
                cell(after, "ece"),
                cell(before, "nll"),
                cell(after, "nll"),
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


def excerpt(tables: Path) -> str:
    balanced, longtail = (
        read(tables, "graded_lesions_balanced"),
        read(tables, "graded_lesions_longtail"),
    )
    rows = [
        [m, cell(balanced.loc[m], "balanced_accuracy"), cell(longtail.loc[m], "balanced_accuracy")]
        for m in EXCERPT
    ]
    return table(["method", "balanced profile", "long tail (imbalance factor 20)"], rows)


def job_count(log_folder: Path) -> int | None:
    """Jobs of the newest Snakemake run logged in ``log_folder`` that ran any (without ``all``)."""
    for log in sorted(log_folder.glob("*.snakemake.log"), reverse=True):
        total = re.search(r"^total\s+(\d+)$", log.read_text(), flags=re.M)
        if total:
            return int(total.group(1)) - 1
    return None


def provenance(results: Path, wall_seconds: float | None) -> str:
    envs = [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/*/*/seed*/env.json"))]
    configs = [json.loads(p.read_text()) for p in results.glob("runs/*/*/*/seed*/run_config.json")]
    commits = sorted(
        {e["git"]["commit"][:7] + (" (dirty)" if e["git"]["dirty"] else "") for e in envs}
    )
    seeds = sorted({c["seed"] for c in configs})
    env = envs[0]
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if k != "medimbalance")
    jobs = job_count(DOCS.parent / ".snakemake" / "log")
    lines = [
        f"- **Study**: `{results.name}` (`config/config.yaml`), {len(envs)} training runs"
        + (f" among {jobs} jobs" if jobs else "")
        + f", seeds {', '.join(map(str, seeds))}; tables show mean ± std over seeds.",
        f"- **Commit**: {', '.join(commits)}.",
        f"- **Hardware**: {env['platform']}, device `{env['device']}`, "
        f"{env['torch_threads']} torch thread(s) per job; Python {env['python']}, {packages}.",
    ]
    if wall_seconds is not None:
        lines.append(
            f"- **Wall time**: {wall_seconds:.0f} s for the whole study and its report "
            "(`make clean && time make demo`, 2 cores)."
        )
    return "\n".join(lines)


BLOCKS = {
    "classification": classification,
    "multilabel": multilabel,
    "segmentation": segmentation,
    "regression": regression,
    "calibration": calibration,
    "estimation": estimation,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the study's folder, e.g. results/demo")
    parser.add_argument("--wall-seconds", type=float, help="measured wall time of the study")
    args = parser.parse_args()
    tables = args.results / "tables"
    filled = {name: block(tables) for name, block in BLOCKS.items()}
    filled["provenance"] = provenance(args.results, args.wall_seconds)
    fill(RESULTS_DOC, filled)
    fill(README, {"excerpt": excerpt(tables) + "\n\n" + filled["provenance"]})


def fill(doc: Path, blocks: dict[str, str]) -> None:
    """Replace the body of each named generated block of ``doc``."""
    text = doc.read_text()
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(\n<!-- end -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{doc}: no block <!-- generated: {name} --> … <!-- end -->")
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    doc.write_text(text)
    print(f"filled {len(blocks)} block(s) of {doc}")


if __name__ == "__main__":
    main()
