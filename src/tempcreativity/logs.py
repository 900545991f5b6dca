"""Logging for Snakemake scripts: everything a job prints goes to its log file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO


class _Tee:
    """A text stream that writes to the console and to a log file."""

    def __init__(self, console: TextIO, log: TextIO):
        self.console, self.log = console, log

    def write(self, text: str) -> int:
        self.console.write(text)
        self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.console.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()


def log_to(path: str | Path, keep_console: bool = False) -> None:
    """Send this process's stderr (and stdout) to ``path``; with ``keep_console`` also to the terminal, so that
    long jobs (vLLM's progress bar) can be watched live and read afterwards."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "w", buffering=1)
    if keep_console:
        sys.stderr = _Tee(sys.__stderr__, log)
        sys.stdout = _Tee(sys.__stdout__, log)
    else:
        sys.stderr = sys.stdout = log
