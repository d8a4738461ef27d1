"""A lock-file pool that gives concurrent local GPU jobs distinct devices.

Snakemake counts GPUs (``--resources gpu=N`` caps how many GPU jobs run at once) but does not
say which device a job should use. Each GPU job therefore claims one: it takes an exclusive
``flock`` on ``gpu-<id>.lock`` in a folder shared by every job on the machine and holds it until
the process ends. The kernel drops the lock when the process exits, even on ``kill -9``, so no
stale lock outlives its job. When every device is taken the job waits for one to free.

A device can take several jobs at once: with ``MEDIMBALANCE_JOBS_PER_GPU=k`` it has ``k``
slots (``gpu-<id>.slot<j>.lock``), each a job's claim; jobs fill the first slot of every device
before a second one, so they spread over the devices. ``--resources gpu=N·k`` then lets
``N·k`` GPU jobs run. Worth it for many small runs (a small CNN on 28×28 images keeps a modern
GPU mostly idle); not for runs that fill a device's memory or compute on their own.

Under a cluster scheduler (SLURM, LSF) the scheduler assigns devices, so the pool stays out of
the way. No torch import here: the device count is passed in (tests use fake counts).
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Set by the scheduler inside a cluster job: that job's devices are already its own.
SCHEDULER_VARIABLES = ("SLURM_JOB_ID", "LSB_JOBID")
LOCK_DIR_VARIABLE = "MEDIMBALANCE_GPU_LOCK_DIR"
POOL_VARIABLE = "MEDIMBALANCE_GPU_POOL"  # "off" disables the pool
SLOTS_VARIABLE = "MEDIMBALANCE_JOBS_PER_GPU"  # jobs a device takes at once (default 1)

# The device this process claimed (torch index → lock descriptor, kept open until exit): a
# second call returns it again.
_held: dict[int, int] = {}


def pool_enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether this process should claim a device from the pool (not under a scheduler)."""
    environ = os.environ if environ is None else environ
    if environ.get(POOL_VARIABLE, "").lower() in {"off", "0", "false", "no"}:
        return False
    return not any(environ.get(name) for name in SCHEDULER_VARIABLES)


def lock_dir(environ: dict[str, str] | None = None) -> Path:
    """The pool's folder: ``$MEDIMBALANCE_GPU_LOCK_DIR`` or one per user in the temp folder."""
    environ = os.environ if environ is None else environ
    if environ.get(LOCK_DIR_VARIABLE):
        return Path(environ[LOCK_DIR_VARIABLE])
    return Path(tempfile.gettempdir()) / f"medimbalance-gpus-{os.getuid()}"


def jobs_per_device(environ: dict[str, str] | None = None) -> int:
    """How many jobs a device takes at once: ``$MEDIMBALANCE_JOBS_PER_GPU`` (default 1)."""
    environ = os.environ if environ is None else environ
    value = environ.get(SLOTS_VARIABLE, "").strip() or "1"
    try:
        slots = int(value)
    except ValueError:
        slots = 0
    if slots < 1:
        raise ValueError(f"{SLOTS_VARIABLE} must be a whole number ≥ 1, got {value!r}")
    return slots


def slot_locks(names: list[str], slots: int) -> list[tuple[int, str]]:
    """The pool's lock files in the order jobs try them, as (torch index, file name): the first
    slot of every device, then the second, ... (one slot: ``gpu-<id>.lock``)."""
    if slots == 1:
        return [(index, f"gpu-{name}.lock") for index, name in enumerate(names)]
    return [
        (index, f"gpu-{name}.slot{slot}.lock")
        for slot in range(slots)
        for index, name in enumerate(names)
    ]


def device_names(n_devices: int, environ: dict[str, str] | None = None) -> list[str]:
    """Machine-wide names of the ``n_devices`` visible devices, in torch's index order.

    With ``CUDA_VISIBLE_DEVICES=2,3`` torch's ``cuda:0`` is physical device 2: its lock must be
    the one that a job seeing all devices takes for ``cuda:2``.
    """
    environ = os.environ if environ is None else environ
    visible = [v.strip() for v in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible:
        if len(visible) < n_devices:
            raise ValueError(
                f"CUDA_VISIBLE_DEVICES={environ['CUDA_VISIBLE_DEVICES']!r} names "
                f"{len(visible)} device(s) but {n_devices} are visible"
            )
        return visible[:n_devices]
    return [str(i) for i in range(n_devices)]


def claim_device(
    n_devices: int,
    *,
    folder: Path | None = None,
    timeout: float | None = None,
    poll: float = 1.0,
    environ: dict[str, str] | None = None,
) -> int | None:
    """Claim a free device among ``n_devices`` (a free slot of one, with several jobs per
    device: :func:`jobs_per_device`); returns its torch index.

    Returns ``None`` when there is nothing to claim: no devices, or the pool is off (under a
    scheduler, or ``MEDIMBALANCE_GPU_POOL=off``); the caller then uses the default device.
    Waits while every device is held by another job; after ``timeout`` seconds (``None``:
    forever) raises ``TimeoutError`` naming the lock folder.
    """
    if n_devices < 1 or not pool_enabled(environ):
        return None
    if _held:
        return next(iter(_held))
    names = device_names(n_devices, environ)
    slots = jobs_per_device(environ)
    locks = slot_locks(names, slots)
    folder = lock_dir(environ) if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waiting = False
    while True:
        for index, name in locks:
            fd = _try_lock(folder / name)
            if fd is not None:
                _held[index] = fd
                log.info("GPU pool: claimed cuda:%d (%s in %s)", index, name, folder)
                return index
        if timeout is not None and time.monotonic() - start >= timeout:
            held = f"{slots} job(s) each" if slots > 1 else "other jobs"
            raise TimeoutError(
                f"all {n_devices} GPU(s) stayed in use by {held} for {timeout:g} s "
                f"(locks in {folder}); cap concurrent GPU jobs with --resources "
                f"gpu={n_devices * slots}"
            )
        if not waiting:
            log.info("GPU pool: all %d slot(s) in use; waiting for one to free", len(locks))
            waiting = True
        time.sleep(poll)


def _try_lock(path: Path) -> int | None:
    """The descriptor of ``path`` locked by this process, or ``None`` if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a curious user
    return fd


def release_all() -> None:
    """Release every device this process claimed (process exit does this too)."""
    while _held:
        _, fd = _held.popitem()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
