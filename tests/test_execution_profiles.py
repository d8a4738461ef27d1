"""The execution profiles (profiles/*): every GPU rule is routed, every group names real rules,
and Snakemake accepts each profile (dry run with its executor plugin installed)."""

import re

import pytest
import yaml
from conftest import REPO, run_snakemake

PROFILES = REPO / "profiles"
STUDY = REPO / "tests" / "configs" / "slurm.yaml"
RULES = "".join(p.read_text() for p in sorted((REPO / "workflow" / "rules").glob("*.smk")))
RULE_BLOCKS = dict(re.findall(r"^rule (\w+):\n(.*?)(?=^rule |^use rule |\Z)", RULES, re.M | re.S))
# rules made from others (`use rule evaluate as evaluate_external with:`), by their new name
DERIVED = dict(re.findall(r"^use rule (\w+) as (\w+) with:", RULES, re.M))
DERIVED = {new: old for old, new in DERIVED.items()}
GPU_RULES = sorted(name for name, body in RULE_BLOCKS.items() if re.search(r"\bgpu=1,", body))
CLUSTER = {"slurm": ("slurm_partition", "<gpu-partition>"), "lsf": ("lsf_queue", "<gpu-queue>")}


def profile(name):
    return yaml.safe_load((PROFILES / name / "profile.yaml").read_text())


def test_gpu_rules_are_the_training_rules():
    assert GPU_RULES == [
        "estimate_shift",
        "predict_external",
        "train",
        "train_extractor",
        "train_gan",
    ]


@pytest.mark.parametrize("name", sorted(CLUSTER))
def test_cluster_profiles_send_every_gpu_rule_to_the_gpu_queue(name):
    settings = profile(name)
    key, gpu_queue = CLUSTER[name]
    assert settings["executor"] == name
    assert settings["default-resources"][key] != gpu_queue
    for rule in GPU_RULES:
        resources = settings["set-resources"][rule]
        assert resources[key] == gpu_queue and resources["runtime"] > 0
    for rule, group in (g.split("=") for g in settings["groups"]):
        assert rule in RULE_BLOCKS or rule in DERIVED
        assert rule not in GPU_RULES and DERIVED.get(rule) not in GPU_RULES
        assert any(c.startswith(f"{group}=") for c in settings["group-components"])
    assert settings["config"] == {"torch_env": "cuda"}


@pytest.mark.parametrize(
    "args, train_resources",
    [
        (
            ["--workflow-profile", "profiles/slurm"],
            ["slurm_partition=<gpu-partition>", "gpu=1", "cpus_per_gpu=4"],
        ),
        (["--workflow-profile", "profiles/lsf"], ["lsf_queue=<gpu-queue>", "lsf_extra=-gpu num=1"]),
        (["--profile", "profiles/gpu", "--cores", "8"], ["gpu=1"]),
    ],
)
def test_snakemake_accepts_each_profile(tmp_path, args, train_resources):
    done = run_snakemake("-n", *args, "--configfile", str(STUDY), "--directory", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    train = re.findall(r"rule train:\n(?:.*\n)*?\s+resources: (.*)", done.stdout)
    assert len(train) == 2
    for resources in train:
        assert set(train_resources) <= set(resources.split(", "))


def test_local_gpu_profile_caps_gpu_jobs():
    settings = profile("gpu")
    assert "executor" not in settings  # local: profiles/default still applies
    assert settings["resources"] == ["gpu=1"]
    threads = dict(t.split("=") for t in settings["set-threads"])
    assert set(threads) == set(GPU_RULES)
