"""The study's named things, each defined once: the report's figures with their captions, and the rating criteria
with how the LLM judge and people are asked about them. Light (standard library only), so that the workflow's
rule files can import it too.

A figure's caption is a one-paragraph reStructuredText file, ``captions/<name>.rst`` beside this module: Snakemake's
``report()`` reads the file (``caption_file``), the HTML report shows its text (``caption``). A criterion is also
the name of its rating column: ratings.RATING_ITEMS and the judge's rubric are derived from CRITERIA."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The figures of plot_figures, in the report's order; the frontier rule draws FRONTIER.
FIGURES = ("boxplots", "pca", "diversity", "trends")
FRONTIER = "frontier"
# Each figure's caption file, relative to the package (as provenance.source_digest names files).
CAPTION_FILES = {name: f"captions/{name}.rst" for name in (*FIGURES, FRONTIER)}


def caption_file(name: str) -> Path:
    """The caption of figure ``name`` (one of FIGURES or FRONTIER), as the file Snakemake's ``report()`` reads."""
    return Path(__file__).parent / CAPTION_FILES[name]


def caption(name: str) -> str:
    """The caption of figure ``name`` as text, its line breaks kept (the report indents them)."""
    return caption_file(name).read_text().strip()


@dataclass(frozen=True)
class Criterion:
    """A rating criterion (1 to 5): the judge's question and scale, and the participants' question, what 1 and 5
    mean to them, and whether they answer it against the example story."""

    judge_question: str
    judge_scale: str
    question: str
    low: str
    high: str
    with_example: bool


# The study's four criteria (the judge's rubric and the survey's instructions, as each asks them).
CRITERIA = {
    "novelty": Criterion(
        judge_question="Compare the STORY with the EXAMPLE story. How new or unusual is the STORY compared with the "
        "EXAMPLE?",
        judge_scale="1 = not new at all (almost the same as the example), 5 = completely new and unusual",
        question="How new or unusual is this story, compared with the example story?",
        low="not new at all: almost the same as the example",
        high="completely new and unusual",
        with_example=True,
    ),
    "typicality": Criterion(
        judge_question="Compare the STORY with the EXAMPLE story. How well does the STORY show the essential "
        "characteristics of a story, as the EXAMPLE does?",
        judge_scale="1 = hardly a story at all, 5 = shows every essential characteristic of a story",
        question="How much does this story show the essential characteristics of a story, compared with the example "
        "story?",
        low="hardly any: barely a story",
        high="all of them",
        with_example=True,
    ),
    "cohesion": Criterion(
        judge_question="Read the STORY. Are its words and sentences grammatically consistent, and are its characters, "
        "events and actions used appropriately?",
        judge_scale="1 = not at all, 5 = completely",
        question="Are the story's words and sentences grammatically consistent, and are its characters, events and "
        "actions used appropriately?",
        low="not at all",
        high="completely",
        with_example=False,
    ),
    "coherence": Criterion(
        judge_question="Read the STORY. How hard is it to follow and understand?",
        judge_scale="1 = very easy to follow, 5 = very hard to follow",
        question="How hard is this story to follow and understand?",
        low="very easy to follow",
        high="very hard to follow",
        with_example=False,
    ),
}
