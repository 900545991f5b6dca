"""Progress bars for the jobs' long loops (stories scored, cells summarised, trends fitted, MLflow runs logged):
tqdm on stderr, which a job's script sends to its log file (and, for engine jobs, the console: see logs.py).

A bar stays silent for the first ``DELAY_SECONDS`` of its loop, so a short loop prints nothing, and
``TEMPCREATIVITY_PROGRESS=0`` turns every bar off. Wrap a loop over whole units (a story, a cell, a fit), never a
tight inner loop: a bar costs well under a microsecond per item, which only such a loop would notice."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

ENVIRONMENT = "TEMPCREATIVITY_PROGRESS"  # "0" (or false, no, off): no bars
DELAY_SECONDS = 2.0  # a loop done sooner shows no bar
LOG_INTERVAL_SECONDS = 5.0  # at most one refresh per 5 s where stderr is a file, not a terminal (a log stays small)


def enabled() -> bool:
    """Whether bars are shown: unless TEMPCREATIVITY_PROGRESS is 0, false, no or off."""
    return os.environ.get(ENVIRONMENT, "1").strip().lower() not in {"0", "false", "no", "off"}


def bar(
    iterable: Iterable | None = None,
    desc: str = "",
    unit: str = "it",
    total: int | None = None,
):
    """A tqdm bar on stderr over ``iterable`` (or, with ``iterable`` None, a counter to ``update``) that says what
    it counts (``desc``, ``unit``), shown once the loop has run DELAY_SECONDS, unless bars are off (enabled).
    ``total`` is the iterable's length where it has none."""
    from tqdm import tqdm

    terminal = sys.stderr.isatty()
    return tqdm(
        iterable,
        desc=desc,
        unit=unit,
        total=total,
        delay=DELAY_SECONDS,
        disable=not enabled(),
        file=sys.stderr,
        mininterval=0.1 if terminal else LOG_INTERVAL_SECONDS,
        dynamic_ncols=terminal,
    )
