"""Content keys: the same parameters (and the same input files) give the same key.

Standard library only: the workflow names folders under ``resources/`` by :func:`config_key`
before any job runs, and every resumable training state is valid only for the
:func:`run_identity` it was written under (:mod:`medimbalance.checkpoints`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping


def config_key(values, length: int | None = 12) -> str:
    """SHA-256 of ``values`` as canonical JSON (sorted keys), the first ``length`` hex digits
    (all 64 when ``None``)."""
    text = json.dumps(values, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content (a folder: of its files' names and contents, in order)."""
    if os.path.isdir(path):
        inner = {
            os.path.relpath(os.path.join(top, name), path): file_digest(os.path.join(top, name))
            for top, _, names in sorted(os.walk(path))
            for name in sorted(names)
        }
        return config_key(inner, None)
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@functools.cache
def library_digest() -> str:
    """SHA-256 of the library's code (every ``.py`` file of the ``medimbalance`` package)."""
    package = os.path.dirname(os.path.abspath(__file__))
    sources = {
        os.path.relpath(os.path.join(top, name), package): file_digest(os.path.join(top, name))
        for top, _, names in sorted(os.walk(package))
        for name in sorted(names)
        if name.endswith(".py")
    }
    return config_key(sources, None)


def run_identity(config, inputs: Mapping[str, str | os.PathLike]) -> str:
    """What a run is: its configuration values, the content of the named input files it learns
    from, and the library code that trains it. Two runs with the same identity compute the same
    thing."""
    files = {name: file_digest(path) for name, path in sorted(inputs.items())}
    return config_key({"config": config, "inputs": files, "code": library_digest()}, None)
