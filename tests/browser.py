"""Open a Snakemake HTML report in headless Chromium and click through it.

A script injected into a copy of the report visits every menu entry (categories,
subcategories, results) depth first, returning home between paths, and records the console
errors, uncaught exceptions and pages left blank; ``--dump-dom`` hands its record back.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

CRAWL = "<script>\n" + (Path(__file__).with_name("report_crawl.js")).read_text() + "</script>\n"


def crawl_report(report: Path, workdir: Path, timeout: float = 300) -> dict:
    """``{"errors": [...], "visited": [...]}`` of a click-through of ``report``."""
    page = workdir / "crawled_report.html"
    text = report.read_text()
    end = text.rindex("</body>")  # the last: the report's scripts hold the string too
    page.write_text(text[:end] + CRAWL + text[end:])
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=900000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    match = re.search(r'<pre id="crawl-record">(.*?)</pre>', done.stdout, re.S)
    if match is None:
        raise AssertionError(f"the crawl did not finish; chromium said: {done.stderr[-2000:]}")
    record = html.unescape(match.group(1))
    return json.loads(record)
