"""What a job writes to its log and to the terminal (medimbalance.jobs.logs)."""

import subprocess
import sys

from conftest import REPO

from medimbalance.jobs.logs import job_label

SCRIPT = """
import logging, sys
sys.path.insert(0, {src!r})
from medimbalance.jobs.logs import SUMMARY, log_to_file
log = log_to_file({log!r})
log.info("epoch 1/3 progress")
log.warning("something to see")
logging.getLogger(SUMMARY).info("test balanced_accuracy 0.8125")
raise ValueError("bad row 7")
"""


def test_the_terminal_gets_warnings_summaries_and_the_error_once_the_log_everything(tmp_path):
    log = tmp_path / "logs" / "study" / "train" / "lesions_tail_ros_seed0.log"
    log.parent.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(src=str(REPO / "src"), log=str(log))],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    terminal, text = done.stderr, log.read_text()
    assert "[train lesions_tail_ros_seed0]" in terminal
    assert "something to see" in terminal and "test balanced_accuracy 0.8125" in terminal
    assert "epoch 1/3 progress" not in terminal and "epoch 1/3 progress" in text
    # the traceback once, in the log; the terminal names the error and the log
    assert "Traceback" not in terminal and text.count("Traceback") == 1
    assert f"ValueError: bad row 7 (traceback in {log})" in terminal
    assert "start-up" in text.splitlines()[0] and "job done after" in text.splitlines()[-1]


def test_a_jobs_label_is_its_rule_and_name():
    assert job_label("logs/demo/evaluate/lesions_tail_rus_seed1.log") == (
        "evaluate lesions_tail_rus_seed1"
    )
