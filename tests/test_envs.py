"""workflow/envs/*.yaml: exact pins that agree with pyproject.toml; every rule has an env."""

import re
import tomllib

import pytest
import yaml
from conftest import REPO

from medimbalance.jobs import imports
from medimbalance.jobs.imports import script_imports

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


# ---- Every rule's environment provides every package its script imports ---------------------

# Import name → distribution name, where they differ.
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "imblearn": "imbalanced-learn",
    "yaml": "pyyaml",
    "SimpleITK": "simpleitk",
}


def third_party(script):
    """Distributions a workflow script needs, following the library's imports
    (medimbalance.jobs.imports: lazy imports count, type-checking ones do not)."""
    names = script_imports(script)
    return {DISTRIBUTIONS.get(top, top).lower() for top in imports.third_party(names)}


def rules_with_envs():
    """(rule, env file, script) for every rule, the torch env resolved to both variants."""
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for name, body in re.findall(
            r"^rule (\w+):(.*?)(?=^rule |\Z)", smk.read_text(), flags=re.M | re.S
        ):
            env = re.search(r"conda:\s*\n\s*(\S+)", body).group(1).strip('"')
            script = re.search(r"script:\s*\n\s*\"\.\./scripts/(\w+\.py)\"", body)
            if script is None:
                continue
            envs = (
                ["torch-cpu.yaml", "torch-cuda.yaml"]
                if env == "TORCH_ENV"
                else [env.rpartition("/")[2]]
            )
            for env_file in envs:
                yield name, env_file, REPO / "workflow" / "scripts" / script.group(1)


@pytest.mark.parametrize(
    "rule, env, script", list(rules_with_envs()), ids=lambda v: getattr(v, "name", str(v))
)
def test_each_rule_env_names_every_package_its_script_imports(rule, env, script):
    spec = yaml.safe_load((REPO / "workflow" / "envs" / env).read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    provided = set(pins(pip))
    missing = third_party(script) - provided
    assert not missing, f"rule {rule} runs {script.name} in {env}, which lacks {sorted(missing)}"


def test_the_import_scan_sees_lazy_and_transitive_imports():
    train = third_party(REPO / "workflow" / "scripts" / "train.py")
    assert {"torch", "monai", "numpy", "scikit-learn"} <= train
    resample = third_party(REPO / "workflow" / "scripts" / "resample.py")
    assert {"imbalanced-learn", "scikit-learn", "pandas"} <= resample  # imported in functions
    assert "torch" not in resample


def test_the_licence_file_and_the_supported_pythons_agree_with_pyproject():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    # every pinned dependency has wheels for 3.11 to 3.13; the conda envs use 3.11, as CI does
    assert PYPROJECT["project"]["requires-python"] == ">=3.11,<3.14"


def test_the_workflow_catalog_file_describes_the_standard_usage():
    catalog = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = catalog["usage"]
    assert usage["software-stack-deployment"]["conda"] is True and usage["report"] is True
    assert "--cores" in usage["mandatory-flags"]["flags"]
    # the catalog's standardized usage also needs these two files in these places
    assert (REPO / "workflow" / "Snakefile").is_file() and (REPO / "config" / "README.md").is_file()
