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


ALLOCATING_JOB = """
import sys
from tempcreativity.logs import log_to
log_to(sys.argv[1])
block = bytearray(int(sys.argv[2]) * 2**20)  # zero-filled, so resident
block[::4096] = b"x" * len(block[::4096])
"""


def test_a_jobs_log_ends_with_its_peak_memory(tmp_path):
    """The last line of a job's log is its peak resident memory, which must cover what it allocated (400 MiB here)
    and be read as such by the memory benchmark."""
    from tempcreativity.logs import logged_peak_memory_mib

    peaks = {}
    for mib in (0, 400):
        log = tmp_path / f"job-{mib}.log"
        subprocess.run([sys.executable, "-c", ALLOCATING_JOB, str(log), str(mib)], check=True)
        peaks[mib] = logged_peak_memory_mib(log.read_text())[0]
    assert peaks[0] < 400 <= peaks[400], peaks
