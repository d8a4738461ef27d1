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


# Records of this logger reach the terminal as well as the job's log: one line per finished job.
SUMMARY = "medimbalance.summary"


def job_label(path: str) -> str:
    """The job a log belongs to, from its path ``logs/<study>/<rule>/<name>.log``: ``rule
    name`` (e.g. ``train graded_lesions_longtail_ros_seed0``)."""
    parts = os.path.normpath(path).split(os.sep)
    name = os.path.splitext(parts[-1])[0]
    return f"{parts[-2]} {name}" if len(parts) >= 2 else name


class _Terminal(logging.Filter):
    """What a job prints to the terminal, where many jobs' lines interleave: warnings, errors
    and summary lines, not per-epoch progress (the job's log has everything), nor an uncaught
    error's traceback (in the log only, so that it appears once)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "uncaught", False):
            return False
        return record.levelno >= logging.WARNING or record.name == SUMMARY


def log_to_file(path: str) -> logging.Logger:
    """Send log records and warnings to ``path``, and warnings, errors and summary lines to
    stderr, each line naming the job (:func:`job_label`). An uncaught exception's traceback
    goes to ``path``, its one-line message to stderr.

    The first line gives the job's start-up time (interpreter and imports, from the start of
    the job's process), the last one its total time, so that per-job overhead can be measured
    (``benchmarks/job_overhead.py``). Returns the ``medimbalance`` logger.
    """
    terminal = logging.StreamHandler(sys.stderr)
    terminal.addFilter(_Terminal())
    handlers = [logging.FileHandler(path, mode="w"), terminal]
    label = job_label(path).replace("%", "%%")
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{label}] %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    logger = logging.getLogger("medimbalance")
    started = float(os.environ.get(STARTED_VARIABLE) or process_start_time() or time.time())
    logger.info("start-up %.2f s (interpreter and imports)", time.time() - started)
    atexit.register(lambda: logger.info("job done after %.2f s", time.time() - started))

    def log_uncaught(kind, error, trace):
        # The traceback once, in the job's log (which Snakemake prints for a failed job with
        # show-failed-logs); the terminal gets the error and where its traceback is.
        logger.error(
            "failed: %s: %s",
            kind.__name__,
            error,
            exc_info=(kind, error, trace),
            extra={"uncaught": True},
        )
        sys.stderr.write(f"[{job_label(path)}] {kind.__name__}: {error} (traceback in {path})\n")

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
