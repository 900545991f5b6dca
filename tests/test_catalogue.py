"""One source for each list: the figures and their captions (read by figures.py, the rule files, Snakemake's report
and the HTML report), and the rating criteria (the judge's rubric, the survey's questions, the rating columns)."""

from __future__ import annotations

import re

import pytest

from conftest import REPO
from tempcreativity.catalogue import CAPTION_FILES, CRITERIA, FIGURES, FRONTIER, caption, caption_file

TEMPLATE = REPO / "src" / "tempcreativity" / "templates" / "report.html.j2"


def test_every_figure_has_one_caption_file_and_no_file_is_left_over():
    assert list(CAPTION_FILES) == [*FIGURES, FRONTIER]
    assert all(caption_file(name).is_file() for name in CAPTION_FILES)
    assert sorted(path.stem for path in caption_file(FRONTIER).parent.glob("*")) == sorted(CAPTION_FILES)


@pytest.mark.parametrize("name", [*FIGURES, FRONTIER])
def test_a_caption_is_one_plain_paragraph_for_snakemake_and_the_html_report(name):
    """Snakemake renders the file as reStructuredText, the HTML report inserts its text unescaped: one paragraph,
    no markup of either kind."""
    from docutils.core import publish_parts

    text = caption(name)
    assert text and not re.search(r"[<>&*`|_\\]|\{\{|\{%", text), f"{name}: markup in {text!r}"
    body = publish_parts(text, writer="html", settings_overrides={"report_level": 1, "halt_level": 1})["body"]
    assert body.count("<p>") == 1 and body.startswith("<p>"), body
    assert " ".join(body.removeprefix("<p>").removesuffix("</p>\n").split()) == " ".join(text.split())


def test_the_report_template_and_the_rule_files_take_the_figures_and_captions_from_the_catalogue():
    template = TEMPLATE.read_text()
    for name in CAPTION_FILES:
        assert template.count(f"{{{{ captions.{name} ") == 1, f"the report shows {name}'s caption once"
    assert "<figcaption>Perplexity" not in template and "<figcaption>One point per sampler" not in template
    assert not list((REPO / "workflow" / "report").glob("[!w]*.rst")), "captions live in the catalogue's folder"
    rules = "".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    assert not re.search(r'"(boxplots|pca|diversity|trends)"', rules), "the rule files name no figure themselves"
    assert "caption_file(" in rules and "../report/" not in rules


def test_the_frontier_caption_holds_for_every_quality_measure():
    """The caption says a sampler lying below another buys diversity at less cost: every quality is lower-better."""
    from tempcreativity.frontier import QUALITY

    assert "lies below another" in caption(FRONTIER)
    assert not any(higher_is_better for _, higher_is_better in QUALITY.values())


def test_the_rating_columns_the_rubric_and_the_survey_come_from_the_criteria():
    from tempcreativity import survey
    from tempcreativity.judge import RUBRIC
    from tempcreativity.ratings import RATING_ITEMS, REQUIRED_COLUMNS

    assert RATING_ITEMS == tuple(CRITERIA) == tuple(RUBRIC) and REQUIRED_COLUMNS[-len(CRITERIA) :] == RATING_ITEMS
    assert survey.CRITERIA is CRITERIA and set(CRITERIA) <= set(survey.ANSWER_COLUMNS)
    for name, criterion in CRITERIA.items():
        # the judge compares with the example exactly where people do
        assert criterion.judge_question.startswith("Compare the STORY with the EXAMPLE") == criterion.with_example
        assert RUBRIC[name] == (criterion.judge_question, criterion.judge_scale)
