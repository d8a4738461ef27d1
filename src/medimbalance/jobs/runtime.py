"""Device, threads, seeds and provenance (``env.json``) for training jobs."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

# torch.use_deterministic_algorithms (configure) imports this on its first call, which costs
# about 1.5 s of every job; imported here, the warm-start server (jobs.warm) imports it once.
import torch._inductor.config

from .gpus import SCHEDULER_VARIABLES, claim_device
from .warm import CHILD_VARIABLE

# Versions recorded in env.json, by distribution name.
TRACKED_PACKAGES = ("medimbalance", "torch", "monai", "numpy", "scikit-learn", "imbalanced-learn")


def select_device() -> torch.device:
    """CUDA when present, else CPU. With several local GPUs, a device that no other job holds
    (:mod:`medimbalance.jobs.gpus`); under a cluster scheduler, the device it assigned."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    index = claim_device(torch.cuda.device_count())
    device = torch.device("cuda", 0 if index is None else index)
    torch.cuda.set_device(device)  # implicit allocations go to the claimed device too
    return device


DETERMINISTIC_VARIABLE = "MEDIMBALANCE_DETERMINISTIC"  # "off": let CUDA pick faster kernels
# What cuBLAS needs for reproducible matrix products under deterministic algorithms (CUDA ≥
# 10.2): a fixed workspace (PyTorch's reproducibility notes).
CUBLAS_WORKSPACE = ":4096:8"


def deterministic_setting(environ: dict[str, str] | None = None) -> bool:
    """Whether runs use deterministic kernels: yes unless ``$MEDIMBALANCE_DETERMINISTIC`` is
    ``off`` (or ``0``, ``false``, ``no``). On the CPU that costs nothing; on CUDA some kernels
    (scatter-add, some convolution backward passes) are slower or only warn."""
    environ = os.environ if environ is None else environ
    value = environ.get(DETERMINISTIC_VARIABLE, "on").strip().lower()
    if value in {"on", "1", "true", "yes", ""}:
        return True
    if value in {"off", "0", "false", "no"}:
        return False
    raise ValueError(f"{DETERMINISTIC_VARIABLE} must be on or off, got {value!r}")


def configure(seed: int, threads: int) -> None:
    """Seed Python, NumPy and torch; use exactly ``threads`` CPU threads; deterministic kernels
    unless ``$MEDIMBALANCE_DETERMINISTIC=off`` (:func:`deterministic_setting`), with the cuBLAS
    workspace that CUDA's deterministic matrix products need (set before CUDA starts, unless
    the user set one)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - libraries (MONAI transforms) draw from the global state
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, int(threads)))
    deterministic = deterministic_setting()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic  # autotuning picks kernels by timing


def environment_info(device: torch.device) -> dict:
    """Versions, device and source commit of this run (written as ``env.json``)."""
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in TRACKED_PACKAGES},
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "git": git_state(Path(__file__).resolve().parent),
        # the cluster scheduler's job id, when it ran under one
        "scheduler_job": {k: os.environ[k] for k in SCHEDULER_VARIABLES if k in os.environ},
        # run in a fork of the warm-start server (jobs.warm) rather than in a fresh process
        "warm_start": os.environ.get(CHILD_VARIABLE) == "1",
        # deterministic kernels (MEDIMBALANCE_DETERMINISTIC) and what CUDA was given for them
        "deterministic": {
            "algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        },
    }
    if device.type == "cuda":
        info["cuda"] = {"name": torch.cuda.get_device_name(device), "version": torch.version.cuda}
    return info


def git_state(path: Path) -> dict:
    """Commit and dirty flag of the git checkout holding ``path``; ``None`` values outside one."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(path), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
