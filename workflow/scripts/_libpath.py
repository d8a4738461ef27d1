"""Make this checkout's ``src/medimbalance`` the library of every rule script, in any software
environment.

Snakemake appends ``workflow/scripts/`` to ``sys.path`` of every ``script:`` job; this module
puts the repository's ``src/`` first, always: in the project's venv (where some checkout is also
installed in editable mode, perhaps another clone than this one), under ``--sdm conda`` (where
the environment holds only the third-party dependencies) and with ``PYTHONPATH`` naming other
folders. A ``medimbalance`` imported from elsewhere before this module ran is forgotten, so one
study never mixes two checkouts' code.
"""

import os
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
sys.path[:] = [SRC, *(p for p in sys.path if p != SRC)]
_loaded = sys.modules.get("medimbalance")
if _loaded is not None and not os.path.realpath(_loaded.__file__).startswith(SRC + os.sep):
    for _name in [n for n in sys.modules if n == "medimbalance" or n.startswith("medimbalance.")]:
        del sys.modules[_name]

# During a local run the Snakefile starts a warm-start server (medimbalance.jobs.warm) that has the
# heavy modules imported; this job then runs in a fork of it and this process exits with its
# status. Without a server of this checkout (cluster jobs, conda environments) this returns and
# the job starts cold.
from medimbalance.jobs.warm import hand_off

hand_off()
