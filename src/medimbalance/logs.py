"""Logging for workflow scripts: everything, uncaught errors included, goes to the rule's log."""

from __future__ import annotations

import logging
import sys
import warnings


def log_to_file(path: str) -> logging.Logger:
    """Send log records and warnings to ``path`` (and stderr); log uncaught exceptions there too.

    Returns the ``medimbalance`` logger.
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
    previous_hook = sys.excepthook

    def log_uncaught(kind, error, trace):
        logger.error("failed: %s: %s", kind.__name__, error, exc_info=(kind, error, trace))
        previous_hook(kind, error, trace)

    sys.excepthook = log_uncaught
    return logger
