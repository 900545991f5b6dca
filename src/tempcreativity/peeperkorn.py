"""The study's released material (Peeperkorn et al., ICCC 2024 supplement) in this pipeline's tables: its rated
stories and exemplar as a generations table, so that the same scoring runs on the study's own Llama 2 stories.

Folder layout, as released: ``exemplar.txt``, ``survey_stories/metadata.csv`` (columns id, t, type) and
``survey_stories/<id>.txt`` (``<id>_practice.txt`` for practice stories), paragraphs separated by ``<br><br>``
(lines by ``<br>``)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tempcreativity.axes import DEFAULTS
from tempcreativity.generation import GENERATIONS_SCHEMA

PROMPT_ID = "story"
EXEMPLAR_ID = f"{PROMPT_ID}:exemplar"


def _read_story(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace("<br>", "\n").strip()


def load_study_stories(folder: str | Path, include_practice: bool = False) -> pl.DataFrame:
    """The exemplar and the rated stories as rows of GENERATIONS_SCHEMA (``story_id`` = the study's id, the
    exemplar ``story:exemplar``). Token ids and log-probabilities were not released: those columns are empty."""
    folder = Path(folder)
    metadata = pl.read_csv(folder / "survey_stories" / "metadata.csv")
    if not include_practice:
        metadata = metadata.filter(pl.col("type") != "practice")
    rows = [
        {
            "story_id": EXEMPLAR_ID,
            "temperature": 0.001,
            "is_exemplar": True,
            "text": _read_story(folder / "exemplar.txt"),
        }
    ]
    for story in metadata.iter_rows(named=True):
        suffix = "_practice" if story["type"] == "practice" else ""
        rows.append(
            {
                "story_id": story["id"],
                "temperature": float(story["t"]),
                "is_exemplar": False,
                "text": _read_story(folder / "survey_stories" / f"{story['id']}{suffix}.txt"),
            }
        )
    filled = [
        {name: None for name in GENERATIONS_SCHEMA}
        | DEFAULTS  # a sampler axis the study did not set is off (its default)
        | row
        | {
            "experiment": "peeperkorn2024",
            "model": "Llama-2-70b-chat (llama.cpp, Q6_K)",
            "prompt_id": PROMPT_ID,
            "prompt_text": "[INST]Write a story.[/INST]",
            "assistant_prefix": "Here it is:\n\n",
            "prompt_format": "raw",
            "top_k": 50,
            "top_p": 1.0,
            "min_p": 0.05,
            "max_tokens": 4096,
            "repetition_penalty": 1.0,
            "truncation": "raw",
            "stop": ["user", "system"],
            "logprobs": [],
            "token_ids": [],
            "top_logprobs": [],
        }
        for row in rows
    ]
    return pl.DataFrame(filled, schema=GENERATIONS_SCHEMA)
