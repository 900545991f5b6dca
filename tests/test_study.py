"""The study's own data in the repository (resources/peeperkorn2024/): its printed tables reproduced from its
released ratings, and its released stories scored with the pipeline's measures."""

from __future__ import annotations

import math

import polars as pl
import pytest

from conftest import REPO
from tempcreativity.cli import main as cli
from tempcreativity.study import PUBLISHED_TABLE2, study_tables

STUDY_DATA = REPO / "resources" / "peeperkorn2024"


def test_the_data_ships_with_its_licence_and_provenance():
    assert "BSD 3-Clause" in (STUDY_DATA / "LICENCE").read_text()
    assert "maxpeeperkorn/creativity-parameter" in (STUDY_DATA / "README.md").read_text()
    assert len(list((STUDY_DATA / "survey_stories").glob("*.txt"))) == 33  # 31 rated, 2 practice


def test_the_papers_printed_values_are_reproduced_to_their_precision():
    tables = study_tables(STUDY_DATA)
    table1 = {row["item"]: row for row in tables["table1"].iter_rows(named=True)}
    assert round(table1["mean"]["cronbach_alpha"], 3) == table1["mean"]["paper_cronbach_alpha"] == 0.639
    table2 = {row["rating"]: row for row in tables["table2"].iter_rows(named=True)}
    assert set(table2) == set(PUBLISHED_TABLE2) and set(tables["table2"]["predictor"]) == {"temperature"}
    for rating, printed in PUBLISHED_TABLE2.items():
        for column, value in printed.items():  # beta and SE of every item, novelty's R^2c (sample variances)
            assert round(table2[rating][column], 4) == value, (rating, column)
            assert table2[rating][f"paper_{column}"] == value
    assert table2["coherence"]["p"] == pytest.approx(0.049, abs=0.0005)  # "moderately correlated with incoherence"


def test_study_command_writes_its_tables_and_scores_the_released_stories(tmp_path):
    assert cli(["study", "--data", str(STUDY_DATA), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c")]) == 0
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["story_scores.csv", "table1.csv", "table2.csv"]
    scores = pl.read_csv(tmp_path / "out" / "story_scores.csv")
    assert scores.height == 32 and scores["is_exemplar"].sum() == 1
    exemplar = scores.filter(pl.col("is_exemplar")).row(0, named=True)
    assert exemplar["edit_distance"] == 0 and exemplar["cosine_minilm"] == pytest.approx(1.0, abs=1e-5)
    stories = scores.filter(~pl.col("is_exemplar"))
    assert stories["edit_distance"].is_between(0.1, 1).all() and stories["cosine_minilm"].is_between(0, 1).all()
    # the study's hottest stories are the furthest from its exemplar
    by_t = stories.group_by("temperature").agg(pl.col("edit_distance").mean()).sort("temperature")
    assert by_t["edit_distance"][-1] > by_t["edit_distance"][0]
    assert all(math.isnan(value) for value in stories["perplexity"])  # no model given: no log-probabilities
