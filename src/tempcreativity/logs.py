"""Logging for Snakemake scripts: everything a job prints goes to its log file. If the log cannot be written
(a full disk), what the job prints goes to the console instead, with one line saying why, so that the job's
error still reaches Snakemake's output rather than vanishing with the log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO


class _Log:
    """A text stream that writes to a log file and, with ``echo``, to the console too. When the log fails, the
    console gets everything from then on."""

    def __init__(self, console: TextIO, log: TextIO, echo: bool):
        self.console, self.log, self.echo, self.log_failed = console, log, echo, False

    def write(self, text: str) -> int:
        if self.echo or self.log_failed:
            self.console.write(text)
        if not self.log_failed:
            try:
                self.log.write(text)
                self.log.flush()
            except OSError as error:
                self.log_failed = True
                self.console.write(
                    f"\nwarning: cannot write the log file {self.log.name} ({error}); "
                    f"messages go to the console\n{'' if self.echo else text}"
                )
        return len(text)

    def flush(self) -> None:
        self.console.flush()

    def isatty(self) -> bool:
        return self.echo and self.console.isatty()

    def fileno(self) -> int:
        return (self.console if self.echo else self.log).fileno()


def log_to(path: str | Path, keep_console: bool = False) -> None:
    """Send this process's stderr (and stdout) to ``path``; with ``keep_console`` also to the terminal, so that
    long jobs (vLLM's progress bar) can be watched live and read afterwards."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "w", buffering=1)
    sys.stderr = _Log(sys.__stderr__, log, echo=keep_console)
    sys.stdout = _Log(sys.__stdout__, log, echo=keep_console)
