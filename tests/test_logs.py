"""Job logs: what a job prints is kept in its log file, and reaches the console when the log cannot be written."""

from __future__ import annotations

import subprocess
import sys

import pytest

JOB = """
import sys
from tempcreativity.logs import log_to
log_to(sys.argv[1], keep_console=sys.argv[2] == "echo")
print("working")
raise RuntimeError("the job failed: No space left on device")
"""


@pytest.mark.parametrize("echo", ["echo", "quiet"])
def test_a_job_error_is_in_its_log(tmp_path, echo):
    log = tmp_path / "logs" / "job.log"
    completed = subprocess.run([sys.executable, "-c", JOB, str(log), echo], capture_output=True, text=True)
    assert completed.returncode == 1
    assert "working" in log.read_text() and "RuntimeError: the job failed" in log.read_text()
    assert ("RuntimeError" in completed.stderr) == (echo == "echo")


@pytest.mark.parametrize("echo", ["echo", "quiet"])
def test_a_full_disk_sends_the_jobs_messages_to_the_console(echo):
    """/dev/full answers every write with ENOSPC, as a full disk does: the error must not vanish with the log."""
    completed = subprocess.run([sys.executable, "-c", JOB, "/dev/full", echo], capture_output=True, text=True)
    assert completed.returncode == 1
    console = completed.stdout + completed.stderr
    assert "cannot write the log file /dev/full" in console and "No space left on device" in console
    assert "RuntimeError: the job failed: No space left on device" in completed.stderr
    assert console.count("Traceback") == 1, console  # one clean traceback, not a cascade of logging errors
