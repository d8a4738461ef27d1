"""Warm start for local rule scripts: a fork server that has torch, MONAI and the library loaded.

Every ``script:`` job is a new Python process, and importing torch, MONAI and scikit-learn costs
about 3.5 CPU-seconds before a job does anything: more than many small jobs' own work. During a
local run the Snakefile starts one server (:func:`start_server`) that imports those modules once.
A rule script's first import, ``_libpath``, calls :func:`hand_off`: when a server is listening,
the job's process sends it the script's path, working folder, environment and its stdin, stdout
and stderr, and the server forks a child that runs the script exactly as the job's process
would have, with the modules already loaded. The job's process waits and exits with the child's
exit status, so Snakemake sees a normal job.

The child is an ordinary forked copy of a process that only imported modules: nothing was seeded,
no thread pool started, no CUDA context created. It reseeds Python's and NumPy's global random
states from the OS as a fresh process would. Results equal a cold start's (the SLURM test compares
a warm local run with cold cluster jobs).

Whenever anything does not fit, the job simply starts cold: no server yet (still importing),
a machine with a CUDA GPU (the server then serves nothing: CUDA and fork do not mix), another
interpreter (a conda environment), a job of another checkout (the server serves only scripts
whose library is the one it imported), thread settings other than the server's, library files
changed since the server imported them (it then stops), ``MEDIMBALANCE_WARM_START=0``.
If the job's process is killed, its child kills itself; signals sent to the job are passed on,
and a child killed by a signal ends the job's process by the same signal, so Snakemake reports
the job as killed (by SIGKILL, SIGSEGV, …) as it would for a cold start.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .logs import STARTED_VARIABLE, process_start_time

SOCKET_VARIABLE = "MEDIMBALANCE_WARM_SOCKET"
SWITCH_VARIABLE = "MEDIMBALANCE_WARM_START"  # "0" turns warm starts off
CHILD_VARIABLE = "MEDIMBALANCE_WARM_CHILD"  # set inside a served child
# Thread settings read once when the numerical libraries load: served jobs must match the server.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
SERVER_THREADS = "1"
SRC = str(Path(__file__).resolve().parents[2])  # the library's source folder (watched)


def enabled(environ: dict[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return environ.get(SWITCH_VARIABLE, "1").lower() not in {"0", "off", "false", "no"}


# ---------------------------------------------------------------------------------------------
# Client: the job's own process


def hand_off() -> None:
    """Run this job in the warm server's child and exit with its status; return to start cold.

    Called by ``_libpath`` at the top of every rule script, before any heavy import.
    """
    path = os.environ.get(SOCKET_VARIABLE)
    if not path or os.environ.get(CHILD_VARIABLE) or not enabled():
        return
    request = {
        "script": os.path.abspath(sys.argv[0]),
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "python": sys.executable,
        "library": SRC,
        "started": process_start_time(),
    }
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        return  # no server (yet): start cold
    with conn:
        reader = conn.makefile("r")
        payload = json.dumps(request).encode() + b"\n"
        try:
            sent = socket.send_fds(conn, [payload], [0, 1, 2])
            conn.sendall(payload[sent:])  # a large environment may not fit in one message
            answer = reader.readline().split()
        except OSError:
            return
        if len(answer) != 2 or answer[0] != "PID":
            return  # refused ("COLD <reason>"): start cold
        child = int(answer[1])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda number, frame: _forward(child, number))
        status = reader.readline().split()
    sys.stdout.flush()
    sys.stderr.flush()
    if len(status) == 2 and status[0] == "EXIT":
        os._exit(int(status[1]))
    # The child died without reporting: its server (the parent) sends how, e.g. "SIGNAL 9".
    if len(status) == 2 and status[0] == "SIGNAL":
        number = int(status[1])
        print(f"warm-started job killed by {signal.Signals(number).name}", file=sys.stderr)
        sys.stderr.flush()
        if number != signal.SIGKILL:  # the only one whose handler cannot be set
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(1)


def _forward(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------------------------
# Server


def serve(path: str, parent: int | None = None, scripts: str | None = None) -> None:
    """Import what the rule scripts in ``scripts`` import (:func:`.imports.preload_modules`;
    this checkout's scripts by default), then serve jobs on the unix socket ``path`` until the
    parent exits."""
    from .imports import SCRIPTS, preload_modules

    # The thread settings that jobs are served with, read by the libraries as they load.
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, SERVER_THREADS))
    # Ask NVML whether there are GPUs instead of initialising CUDA (which would poison forks).
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    for name in preload_modules(scripts or SCRIPTS):
        try:
            importlib.import_module(name)
        except ImportError:  # a function or class of a module, not a module itself
            pass
    torch = sys.modules.get("torch")
    if torch is not None and (torch.cuda.is_initialized() or torch.cuda.is_available()):
        # CUDA cannot be used in a fork of a process that initialised it, and a GPU job's run
        # time dwarfs its imports: on a GPU machine every job starts cold.
        return
    library = {
        m.__file__: os.stat(m.__file__).st_mtime_ns
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and m.__file__.startswith(SRC)
    }
    children: dict[int, socket.socket] = {}  # served child -> its job's connection
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    os.replace(path + ".new", path)  # clients see the socket only once the imports are done
    listener.listen(64)
    listener.settimeout(0.2)
    sys.stdout.flush()
    sys.stderr.flush()
    while parent is None or os.getppid() == parent:
        _reap(children)
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(30)
        try:
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            while not message.endswith(b"\n"):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("request cut short")
                message += chunk
            request = json.loads(message)
        except (OSError, ValueError, ConnectionError):
            conn.close()
            continue
        reason = _refusal(request, library)
        if reason:
            conn.sendall(f"COLD {reason}\n".encode())
            conn.close()
            for fd in fds:
                os.close(fd)
            if reason == "stale":
                break
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            for other in children.values():  # other jobs' connections are not this child's
                other.close()
            _run_child(conn, fds, request)  # never returns
        children[pid] = conn
        for fd in fds:
            os.close(fd)
    listener.close()
    if os.path.exists(path):
        os.unlink(path)


def _reap(children: dict[int, socket.socket]) -> None:
    """Collect ended children; tell the job of one killed by a signal which signal (a child
    that ends normally has already reported its exit status itself)."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        if os.WIFSIGNALED(status):
            try:
                conn.sendall(f"SIGNAL {os.WTERMSIG(status)}\n".encode())
            except OSError:
                pass
        conn.close()


def _refusal(request: dict, library: dict[str, int]) -> str | None:
    if request.get("python") != sys.executable:
        return "other-interpreter"
    if request.get("library") != SRC:
        return "other-checkout"  # another clone's scripts: they start cold with their own
    env = request.get("env", {})
    if any(env.get(name, SERVER_THREADS) != SERVER_THREADS for name in THREAD_VARIABLES):
        return "threads"
    for file, mtime in library.items():
        try:
            if os.stat(file).st_mtime_ns != mtime:
                return "stale"
        except OSError:
            return "stale"
    return None


def _run_child(conn: socket.socket, fds: list[int], request: dict) -> None:
    """In the forked child: become the job's process, run the script, report its exit status."""
    code = 1
    try:
        conn.settimeout(None)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[CHILD_VARIABLE] = "1"
        if request.get("started"):
            os.environ[STARTED_VARIABLE] = repr(request["started"])
        tempfile.tempdir = None  # the job's TMPDIR
        sys.argv = list(request["argv"])
        _reseed()
        conn.sendall(f"PID {os.getpid()}\n".encode())
        _watch(conn)
        code = _run_script(request["script"])
    finally:
        try:
            conn.sendall(f"EXIT {code}\n".encode())
        except OSError:
            pass
        os._exit(code)


def _reseed() -> None:
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def _watch(conn: socket.socket) -> None:
    """Kill this child when the job's process goes away (its end of the socket closes)."""
    import threading

    def wait_for_close() -> None:
        try:
            while conn.recv(1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_for_close, daemon=True).start()


def _run_script(script: str) -> int:
    import atexit
    import runpy

    code = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as done:
        code = _exit_code(done.code)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------------------------
# Starting and stopping, from the Snakefile


def start_server(
    folder: str | None = None, scripts: str | os.PathLike | None = None
) -> tuple[subprocess.Popen, str]:
    """Start a server in the background for this process's jobs, preloading what the rule
    scripts in ``scripts`` import; returns it and its socket.

    The socket appears once its imports are done (a few seconds); jobs before that start cold.
    The caller exports the socket as ``MEDIMBALANCE_WARM_SOCKET`` and calls :func:`stop_server`.
    """
    folder = folder or tempfile.mkdtemp(prefix="medimbalance-warm-")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "server.sock")
    env = {k: v for k, v in os.environ.items() if k != SOCKET_VARIABLE}  # serve() sets threads
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "medimbalance.jobs.warm", path, str(os.getpid())]
    if scripts is not None:
        command.append(str(scripts))
    quiet = subprocess.DEVNULL
    server = subprocess.Popen(command, env=env, stdin=quiet, stdout=quiet, stderr=quiet)
    return server, path


def stop_server(server: subprocess.Popen, path: str) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    for leftover in (path, path + ".new"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


def wait_until_ready(server: subprocess.Popen, path: str, timeout: float = 60.0) -> bool:
    """Whether the server's socket appeared within ``timeout`` seconds (False if it exited)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and server.poll() is None:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


if __name__ == "__main__":  # python -m medimbalance.jobs.warm SOCKET [PARENT_PID [SCRIPTS]]
    serve(
        sys.argv[1],
        int(sys.argv[2]) if len(sys.argv) > 2 else None,
        sys.argv[3] if len(sys.argv) > 3 else None,
    )
