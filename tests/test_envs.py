"""workflow/envs/*.yaml: exact pins that agree with pyproject.toml; every rule has an env."""

import re
import tomllib

import pytest
import yaml
from conftest import REPO

ENVS = sorted((REPO / "workflow" / "envs").glob("*.yaml"))
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def pins(requirements):
    out = {}
    for line in requirements:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"not an exact pin: {line!r}"
        out[name.strip().lower()] = version.strip()
    return out


PROJECT_PINS = pins(PYPROJECT["project"]["dependencies"])


def test_expected_envs_exist():
    assert {p.name for p in ENVS} == {"analysis.yaml", "torch-cpu.yaml", "torch-cuda.yaml"}


@pytest.mark.parametrize("env", ENVS, ids=lambda p: p.name)
def test_env_is_exactly_pinned_and_consistent_with_pyproject(env):
    spec = yaml.safe_load(env.read_text())
    conda = [d for d in spec["dependencies"] if isinstance(d, str)]
    assert all(re.fullmatch(r"[\w.-]+=[\w.]+", d) for d in conda), conda
    assert "python=3.11" in conda
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    env_pins = pins(pip)
    assert env_pins, env.name
    for name, version in env_pins.items():
        assert name in PROJECT_PINS, f"{env.name}: {name} is not a pyproject.toml dependency"
        release = version.split("+")[0]  # torch==2.13.0+cpu is the CPU build of 2.13.0
        assert release == PROJECT_PINS[name], f"{env.name}: {name}=={version}"


def test_torch_envs_differ_only_in_the_build():
    cpu = yaml.safe_load((REPO / "workflow/envs/torch-cpu.yaml").read_text())
    cuda = yaml.safe_load((REPO / "workflow/envs/torch-cuda.yaml").read_text())
    cpu_pins = pins(next(d["pip"] for d in cpu["dependencies"] if isinstance(d, dict)))
    cuda_pins = pins(next(d["pip"] for d in cuda["dependencies"] if isinstance(d, dict)))
    assert cpu_pins.pop("torch") == "2.13.0+cpu" and cuda_pins.pop("torch") == "2.13.0"
    assert cpu_pins == cuda_pins


def test_every_rule_declares_a_conda_env_and_a_log():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        rules = re.findall(r"^rule (\w+):(.*?)(?=^rule |\Z)", smk.read_text(), flags=re.M | re.S)
        for name, body in rules:
            assert "conda:" in body and "log:" in body, f"{smk.name}: rule {name}"
