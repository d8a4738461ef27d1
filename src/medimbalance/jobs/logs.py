"""Logging for workflow scripts: everything, uncaught errors included, goes to the rule's log."""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import warnings

# Set by the warm-start server's child (medimbalance.jobs.warm): when the job's own process started.
STARTED_VARIABLE = "MEDIMBALANCE_JOB_STARTED"


def log_to_file(path: str) -> logging.Logger:
    """Send log records and warnings to ``path`` (and stderr); log uncaught exceptions there too.

    The first line gives the job's start-up time (interpreter and imports, from the start of
    the job's process), the last one its total time, so that per-job overhead can be measured
    (``benchmarks/job_overhead.py``). Returns the ``medimbalance`` logger.
    """
    handlers = [logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    logger = logging.getLogger("medimbalance")
    started = float(os.environ.get(STARTED_VARIABLE) or process_start_time() or time.time())
    logger.info("start-up %.2f s (interpreter and imports)", time.time() - started)
    atexit.register(lambda: logger.info("job done after %.2f s", time.time() - started))
    previous_hook = sys.excepthook

    def log_uncaught(kind, error, trace):
        logger.error("failed: %s: %s", kind.__name__, error, exc_info=(kind, error, trace))
        previous_hook(kind, error, trace)

    sys.excepthook = log_uncaught
    return logger


def process_start_time(pid: int | None = None) -> float | None:
    """When a process started (seconds since the epoch; 10-ms resolution), on Linux; else None."""
    try:
        with open(f"/proc/{pid or os.getpid()}/stat") as stat, open("/proc/uptime") as uptime:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22: start, in ticks
            since_boot = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - (since_boot - ticks / os.sysconf("SC_CLK_TCK"))
