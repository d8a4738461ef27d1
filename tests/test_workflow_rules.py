"""The workflow's own Python: what common.smk imports, and the named partial targets."""

import re

import pytest
from conftest import REPO, run_snakemake

from medimbalance.jobs import imports

COMMON = REPO / "workflow" / "rules" / "common.smk"


def test_common_smk_needs_only_the_standard_library_and_pyyaml(tmp_path):
    lines = re.findall(r"^(?:from|import) .*$", COMMON.read_text(), flags=re.M)
    assert any("medimbalance" in line for line in lines)
    header = tmp_path / "common_imports.py"
    header.write_text("\n".join(lines) + "\n")
    assert imports.third_party(imports.script_imports(header)) == {"yaml"}


def test_the_import_scan_follows_the_library_and_skips_type_checking_imports(tmp_path):
    script = tmp_path / "job.py"
    script.write_text("from medimbalance.balancing import resample\n")
    names = imports.script_imports(script)
    assert "medimbalance.losses.weights" in names  # through balancing
    assert "imblearn.over_sampling" in names  # imported inside a function
    assert "torch" not in imports.third_party(names)  # only under TYPE_CHECKING there


@pytest.mark.parametrize(
    "target, rules",
    [
        ("data", {"prepare_dataset", "impose_profile", "synthesize"}),
        ("tables", {"results_table", "calibration_table", "train", "evaluate"}),
    ],
)
def test_partial_targets(target, rules, tmp_path):
    config = str(REPO / "config" / "config.yaml")
    done = run_snakemake("-n", "--configfile", config, "--directory", str(tmp_path), target)
    assert done.returncode == 0, done.stderr[-3000:]
    scheduled = set(re.findall(r"^rule (\w+):", done.stdout, flags=re.M))
    assert rules <= scheduled
    if target == "data":
        assert not scheduled & {"train", "evaluate", "results_table"}


STAGE2 = ("crt", "tau_norm", "lws", "ncm", "disalign")


def test_five_stage2_methods_share_one_stage1_training_job(tmp_path):
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    lesions = config["datasets"]["graded_lesions"]
    lesions.update(profiles=["longtail"], methods=["baseline", *STAGE2])
    config["datasets"] = {"graded_lesions": lesions}
    for name in STAGE2:
        config["methods"][name] = {"schedule": "decoupled", "stage1": "baseline", "stage2": name}
    config.update(seeds=[0], tables={}, figures={}, evaluation={})
    path = tmp_path / "decoupled.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_snakemake("-n", "--configfile", str(path), "--directory", str(tmp_path), "tables")
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = re.split(r"\n(?=rule \w+:)", done.stdout)
    train = [j for j in jobs if j.startswith("rule train:")]
    assert len(train) == 1 + len(STAGE2)  # one stage-1 job, not one per stage-2 method
    stage1 = "results/demo/runs/graded_lesions/longtail/baseline/seed0/model.pt"
    for name in STAGE2:
        (job,) = [j for j in train if f"/longtail/{name}/seed0/model.pt" in j]
        assert stage1 in job.split("output:")[0]  # the shared stage-1 network is an input
