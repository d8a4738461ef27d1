"""Make ``src/medimbalance`` importable from rule scripts in any software environment.

Snakemake puts ``workflow/scripts/`` on ``sys.path`` of every ``script:`` job; this module puts
the repository's ``src/`` in front of it, so the scripts use this checkout's library both in the
project's venv (where it is also installed in editable mode) and under ``--sdm conda`` (where
the environment holds only the third-party dependencies).
"""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

# During a local run the Snakefile starts a warm-start server (medimbalance.jobs.warm) that has the
# heavy modules imported; this job then runs in a fork of it and this process exits with its
# status. Without a server (cluster jobs, conda environments) this returns and the job starts cold.
from medimbalance.jobs.warm import hand_off

hand_off()
