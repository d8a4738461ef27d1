#!/usr/bin/env bash
# The pure-Python wheels benchmarks/gpu_check.py needs on a GPU machine that has PyTorch with
# CUDA, NumPy, scikit-learn and pandas but no MONAI and no package registry: downloaded here
# (no dependencies, versions as pinned in pyproject.toml) into the git-ignored .gpu-wheels/,
# which travels with the checkout; gpu_check.py unpacks them on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
pip="${PIP:-.venv/bin/pip}"
pins=$(grep -oE '"(monai|einops|imbalanced-learn|PyYAML)==[^"]+"' pyproject.toml | tr -d '"')
[ "$(echo "$pins" | wc -l)" -eq 4 ] || {
    echo "gpu_wheels.sh: expected pins of monai, einops, imbalanced-learn and PyYAML in pyproject.toml, found: $pins" >&2
    exit 1
}
# shellcheck disable=SC2086
"$pip" download --no-deps --only-binary=:all: --dest .gpu-wheels $pins
ls -l .gpu-wheels
