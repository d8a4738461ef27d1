"""The workflow used as a Snakemake module from another project's Snakefile (as snakedeploy
sets it up): its rules, scripts and library are found relative to the workflow's own folder."""

import json
import subprocess

import pytest
import yaml
from conftest import REPO, SNAKEMAKE

pytestmark = pytest.mark.workflow

USER_SNAKEFILE = """\
configfile: "config/config.yaml"


module medimbalance:
    snakefile:
        {snakefile!r}
    config:
        config


use rule * from medimbalance as medimbalance_*
"""


def test_a_project_that_imports_the_workflow_as_a_module_runs_a_study(tmp_path):
    (tmp_path / "config").mkdir()
    config = yaml.safe_load((REPO / "tests/configs/tiny.yaml").read_text())
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(config))
    snakefile = str(REPO / "workflow" / "Snakefile")
    (tmp_path / "Snakefile").write_text(USER_SNAKEFILE.format(snakefile=snakefile))
    target = "results/tiny/tables/std_low.md"  # one regression study's chain of jobs
    done = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    table = (tmp_path / target).read_text()
    assert "balanced_mse" in table
    metrics = json.loads(
        (tmp_path / "results/tiny/runs/std/low/balanced_mse/seed0/metrics.json").read_text()
    )
    assert metrics["task"] == "regression" and "r2" in metrics
