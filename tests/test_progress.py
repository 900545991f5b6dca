"""Progress bars: a long loop shows one on stderr (and so in its job's log), a short one and
TEMPCREATIVITY_PROGRESS=0 show none, and every long step of the analysis counts its own units."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from tempcreativity import progress
from tempcreativity.progress import bar


@pytest.fixture
def no_delay(monkeypatch):
    """Bars from the first item on, as a loop that has run longer than DELAY_SECONDS shows them."""
    monkeypatch.setattr(progress, "DELAY_SECONDS", 0.0)
    monkeypatch.delenv(progress.ENVIRONMENT, raising=False)


def test_a_long_loop_shows_what_it_counts_on_stderr(no_delay, capsys):
    assert list(bar(range(50), "Scored stories", "story")) == list(range(50))
    shown = capsys.readouterr()
    assert "Scored stories: 100%" in shown.err and "50/50" in shown.err and "story/s" in shown.err
    assert shown.out == ""


def test_a_short_loop_shows_no_bar(monkeypatch, capsys):
    monkeypatch.delenv(progress.ENVIRONMENT, raising=False)
    assert list(bar(range(50), "Scored stories", "story")) == list(range(50))  # done well within DELAY_SECONDS
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("off", ["0", "false", "off"])
def test_tempcreativity_progress_0_silences_every_bar(no_delay, monkeypatch, capsys, off):
    monkeypatch.setenv(progress.ENVIRONMENT, off)
    assert list(bar(range(50), "Scored stories", "story")) == list(range(50))
    with bar(desc="Trends fitted", unit="trend", total=3) as counter:
        counter.update(3)
    assert capsys.readouterr().err == ""


JOB = """
import sys
from tempcreativity import progress
from tempcreativity.logs import log_to
log_to(sys.argv[1])
progress.DELAY_SECONDS = 0.0
for _ in progress.bar(range(126), "Summarised cells", "cell"):
    pass
"""


@pytest.mark.parametrize("setting", [None, "1", "0"])
def test_a_jobs_bar_goes_to_its_log(tmp_path, setting):
    """A script's stderr is its log (logs.log_to); the bar is there, and not where TEMPCREATIVITY_PROGRESS=0."""
    import os

    environment = {name: value for name, value in os.environ.items() if name != progress.ENVIRONMENT}
    if setting is not None:
        environment[progress.ENVIRONMENT] = setting
    log = tmp_path / "job.log"
    completed = subprocess.run(
        [sys.executable, "-c", JOB, str(log)], capture_output=True, text=True, env=environment, check=True
    )
    assert completed.stderr == ""
    assert ("Summarised cells: 100%" in log.read_text() and "126/126" in log.read_text()) == (setting != "0")


def generations() -> tuple[pl.DataFrame, np.ndarray]:
    """One prompt: its exemplar and 8 stories at two temperatures, with log-probabilities and 2-D vectors."""
    rng = np.random.default_rng(0)
    texts = ["Once upon a time a fox slept."] + [f"A fox {'ran' if k % 2 else 'sat'} {k} times." for k in range(8)]
    frame = pl.DataFrame(
        {
            "story_id": [f"s{k}" for k in range(9)],
            "prompt_id": ["p"] * 9,
            "temperature": [0.0] + [0.5, 1.5] * 4,
            "seed": list(range(9)),
            "is_exemplar": [True] + [False] * 8,
            "text": texts,
            "logprobs": [list(-rng.exponential(1.0, 6)) for _ in texts],
            "num_tokens": [6] * 9,
        }
    )
    return frame, rng.normal(size=(9, 2))


def test_scoring_summary_trends_and_frontier_count_their_stories_cells_and_fits(no_delay, capsys):
    from tempcreativity.frontier import frontier_table
    from tempcreativity.scoring import SCORE_LABELS, score_stories
    from tempcreativity.statistics import summarise, trends

    stories, vectors = generations()
    scores = score_stories(stories, {"minilm": vectors})
    summarise(scores, stories["text"], vectors, 100)
    trends(scores, 100)
    frontier_table(scores, vectors, 100)
    shown = capsys.readouterr().err
    for counted in (
        "Scored stories: 100%|██████████| 9/9",
        "Summarised cells: 100%|██████████| 2/2",
        f"Trends fitted: 100%|██████████| {len(SCORE_LABELS)}/{len(SCORE_LABELS)}",
        "Distances within cells: 100%|██████████| 2/2",
        "Frontier cells: 100%|██████████| 2/2",
    ):
        assert counted in shown


def test_the_power_grid_counts_its_simulated_fits(no_delay, capsys):
    from tempcreativity.planning_cli import STUDY_RATINGS
    from tempcreativity.power import power_analysis
    from tempcreativity.ratings import RATING_ITEMS, load_ratings

    power_analysis(load_ratings(STUDY_RATINGS), None, (20,), (7,), (5,), replicates=2, seed=3)
    fits = 2 * len(RATING_ITEMS) * 2  # (the study's own design and one of the grid) x criteria x replicates
    assert f"Simulated fits: 100%|██████████| {fits}/{fits}" in capsys.readouterr().err
