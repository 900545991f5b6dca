"""Logging for Snakemake scripts: everything a job prints goes to its log file. If the log cannot be written
(a full disk), what the job prints goes to the console instead, with one line saying why, so that the job's
error still reaches Snakemake's output rather than vanishing with the log. The log's last line is the job's peak
resident memory (PEAK_MEMORY_LINE), what its ``mem_mb`` resource must cover (benchmarks/bench_memory.py reads it)."""

from __future__ import annotations

import atexit
import resource
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


PEAK_MEMORY_LINE = "peak resident memory: {self_mib} MiB (this process), {children_mib} MiB (its largest child)"


def peak_memory_mib() -> tuple[int, int]:
    """The peak resident memory (MiB) of this process and of its largest finished child process (an engine core that
    ran in a child process of its own, on GPUs). This process's is Linux's VmHWM, which starts afresh at exec;
    getrusage's, the fallback elsewhere, also counts the process that started it (Snakemake) before the exec."""
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.is_file() else []
    hwm = [int(line.split()[1]) for line in lines if line.startswith("VmHWM:")]  # KiB
    scale = 1 if sys.platform == "darwin" else 1024  # getrusage counts KiB on Linux, bytes on macOS
    self_bytes = hwm[0] * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children_bytes = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return round(self_bytes / 2**20), round(children_bytes / 2**20)


def logged_peak_memory_mib(log_text: str) -> tuple[int, int] | None:
    """The peak memory a job's log ends with (PEAK_MEMORY_LINE: this process's MiB, its largest child's), or None
    where its last line is not that (a job that died, or one that does not log through log_to)."""
    import re

    pattern = re.escape(PEAK_MEMORY_LINE).replace(r"\{self_mib\}", r"(\d+)").replace(r"\{children_mib\}", r"(\d+)")
    lines = log_text.splitlines()
    found = re.fullmatch(pattern, lines[-1]) if lines else None
    return (int(found.group(1)), int(found.group(2))) if found else None


def _print_peak_memory() -> None:
    self_mib, children_mib = peak_memory_mib()
    print(PEAK_MEMORY_LINE.format(self_mib=self_mib, children_mib=children_mib), file=sys.stderr)


def log_to(path: str | Path, keep_console: bool = False) -> None:
    """Send this process's stderr (and stdout) to ``path``; with ``keep_console`` also to the terminal, so that
    long jobs (vLLM's progress bar) can be watched live and read afterwards. At exit, the log gets the process's
    peak memory."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    log = open(path, "w", buffering=1)
    sys.stderr = _Log(sys.__stderr__, log, echo=keep_console)
    sys.stdout = _Log(sys.__stdout__, log, echo=keep_console)
    atexit.register(_print_peak_memory)
