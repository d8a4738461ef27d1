"""Checksummed downloads: a temporary name, renamed only when the transfer is complete and its
MD5 matches; an error says how to place the file by hand on an offline machine.

Transient failures (a server error, an unreachable host, a transfer cut short) are retried with
a growing pause; a wrong MD5 or a missing file (HTTP 4xx) is not: downloading the same bytes
again would not change them, and the archives run to tens of gigabytes."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)
CHUNK = 1 << 20  # bytes read per step


class DownloadError(RuntimeError):
    """A download failed, was cut short, or does not match its MD5."""


class PermanentDownloadError(DownloadError):
    """A download that another attempt would not fix: a wrong MD5, a missing file."""


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in chunks (bounded memory)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def by_hand(url: str, dest: str | os.PathLike, md5: str) -> str:
    return (
        f"To install it by hand (e.g. on an offline machine), download {url} elsewhere and copy "
        f"it to {dest} (MD5 {md5}); the workflow then uses it without downloading."
    )


def verify(path: str | os.PathLike, md5: str, url: str) -> None:
    """Raise ``DownloadError`` naming the file, the URL and both MD5s when ``path`` differs."""
    actual = md5sum(path)
    if actual != md5:
        raise DownloadError(
            f"{path} has MD5 {actual}, expected {md5} (source {url}). The file is corrupt, "
            f"incomplete or another version: delete it and rerun. {by_hand(url, path, md5)}"
        )


def fetch(
    url: str,
    dest: str | os.PathLike,
    md5: str,
    timeout: float = 60.0,
    attempts: int = 4,
    pause: float = 2.0,
) -> bool:
    """Download ``url`` to ``dest`` unless a file with the right MD5 is already there.

    Returns ``True`` when it downloaded, ``False`` when ``dest`` was already valid. A server
    error, an unreachable host or a transfer cut short is retried up to ``attempts`` times in
    all (pausing ``pause``, then twice as long, …); a wrong MD5 or an HTTP 4xx answer raises
    :class:`PermanentDownloadError` at once. Every failure leaves neither ``dest`` nor a partial
    file behind.
    """
    dest = Path(dest)
    if dest.exists() and md5sum(dest) == md5:
        log.info("%s is present with the right MD5; not downloading", dest)
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        try:
            return _fetch_once(url, dest, md5, timeout)
        except PermanentDownloadError:
            raise
        except DownloadError as error:
            if attempt == attempts:
                raise
            wait = pause * 2 ** (attempt - 1)
            log.warning(
                "attempt %d of %d failed (%s); retrying in %g s", attempt, attempts, error, wait
            )
            time.sleep(wait)
    raise AssertionError("unreachable")


def _fetch_once(url: str, dest: Path, md5: str, timeout: float) -> bool:
    part = dest.with_name(dest.name + ".part")
    digest, received = hashlib.md5(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            expected = response.headers.get("Content-Length")
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                digest.update(block)
                received += len(block)
        if expected is not None and received != int(expected):
            raise DownloadError(
                f"transfer of {url} was cut short: {received} of {expected} bytes. "
                f"{by_hand(url, dest, md5)}"
            )
        if digest.hexdigest() != md5:
            raise PermanentDownloadError(
                f"{url} gave a file with MD5 {digest.hexdigest()}, expected {md5}. "
                f"{by_hand(url, dest, md5)}"
            )
        os.replace(part, dest)
    except urllib.error.HTTPError as error:
        kind = PermanentDownloadError if 400 <= error.code < 500 else DownloadError
        raise kind(f"cannot download {url}: {error}. {by_hand(url, dest, md5)}") from error
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        raise DownloadError(f"cannot download {url}: {error}. {by_hand(url, dest, md5)}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    log.info("downloaded %s (%d bytes, MD5 %s)", url, received, md5)
    return True
