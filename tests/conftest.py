"""Shared test helpers: the repository root and a runner for real Snakemake invocations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's workflow; returns the completed process (text output)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(REPO / "workflow" / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_study(workdir: Path, config: Path) -> Path:
    """Run the whole workflow of ``config`` on 2 cores in ``workdir``; fails the test with
    Snakemake's error output when it does not finish. Returns ``workdir``."""
    done = run_snakemake("--cores", "2", "--configfile", str(config), "--directory", str(workdir))
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)


class FileServer:
    """A local HTTP server on 127.0.0.1 serving in-memory files, with failure modes:

    ``/<name>`` serves the file; ``/flaky/<name>`` answers 500 to its first request;
    ``/cut/<name>`` announces the full length but closes after half of the bytes.
    """

    def __init__(self):
        import http.server
        import threading

        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                mode, name = (parts[0], parts[-1]) if len(parts) > 1 else ("", parts[0])
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                if mode == "flaky" and server.requests.count(self.path) == 1:
                    self.send_error(500, "temporary failure")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if mode == "cut" else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()
