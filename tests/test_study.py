"""The study's own data in the repository (resources/peeperkorn2024/): its printed tables reproduced from its
released ratings, and its released stories scored with the pipeline's measures."""

from __future__ import annotations

import math

import polars as pl
import pytest

from conftest import REPO
from tempcreativity.cli import main as cli
from tempcreativity.study import PUBLISHED_TABLE1, PUBLISHED_TABLE2, study_tables

STUDY_DATA = REPO / "resources" / "peeperkorn2024"


def test_the_data_ships_with_its_licence_and_provenance():
    assert "BSD 3-Clause" in (STUDY_DATA / "LICENCE").read_text()
    assert "maxpeeperkorn/creativity-parameter" in (STUDY_DATA / "README.md").read_text()
    assert len(list((STUDY_DATA / "survey_stories").glob("*.txt"))) == 33  # 31 rated, 2 practice


def test_the_papers_printed_values_are_reproduced_to_their_precision():
    tables = study_tables(STUDY_DATA)
    table1 = {row["item"]: row for row in tables["table1"].iter_rows(named=True)}
    assert round(table1["mean"]["cronbach_alpha"], 3) == table1["mean"]["paper_cronbach_alpha"] == 0.639
    for item, printed in PUBLISHED_TABLE1.items():  # mean, SD and alpha of every item (Table 1: 3 decimals)
        for column, value in printed.items():
            assert round(table1[item][column], 3) == value == table1[item][f"paper_{column}"], (item, column)
    participant = tables["table2"].filter(pl.col("random_effects") == "participant")
    table2 = {row["rating"]: row for row in participant.iter_rows(named=True)}
    assert set(table2) == set(PUBLISHED_TABLE2) and set(tables["table2"]["predictor"]) == {"temperature"}
    for rating, printed in PUBLISHED_TABLE2.items():
        for column, value in printed.items():  # beta, SE, R^2c and R^2m of every item (sample variances, 4 decimals)
            assert round(table2[rating][column], 4) == value, (rating, column)
            assert table2[rating][f"paper_{column}"] == value
    assert table2["coherence"]["p"] == pytest.approx(0.049, abs=0.0005)  # "moderately correlated with incoherence"
    crossed = {
        row["rating"]: row
        for row in tables["table2"].filter(pl.col("random_effects") == "crossed").iter_rows(named=True)
    }
    assert round(crossed["coherence"]["p"], 3) == 0.086 and round(crossed["novelty"]["p"], 3) == 0.025
    assert crossed["coherence"]["paper_beta"] is None  # the paper fitted no crossed model


@pytest.mark.e2e  # embeds the study's stories with MiniLM
def test_study_command_writes_its_tables_and_scores_the_released_stories(tmp_path):
    assert (
        cli(["study", "--data", str(STUDY_DATA), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c")]) == 0
    )
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "story_scores.csv",
        "table1.csv",
        "table2.csv",
    ]
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


def test_study_command_refuses_a_bad_out_or_model_folder_before_computing(tmp_path, capsys, monkeypatch):
    import tempcreativity.study as study_module

    monkeypatch.setattr(study_module, "study_csvs", lambda *_: pytest.fail("computed despite a bad path"))
    a_file = tmp_path / "out.csv"
    a_file.write_text("x\n")
    (tmp_path / "empty-model").mkdir()
    cases = [
        (["--out", str(a_file)], [f"--out: {a_file} is a file, not a folder", "table1.csv"]),
        (["--out", ""], ["--out: the path is empty"]),
        (["--out", "/proc/self/study"], ["--out: /proc/self/study cannot be written"]),
        (["--out", str(tmp_path / "o"), "--model-dir", str(a_file)], ["--model-dir: ", "is a file, not a folder"]),
        (
            ["--out", str(tmp_path / "o"), "--model-dir", str(tmp_path / "empty-model")],
            ["--model-dir: ", "has no config.json (found nothing: it is empty)"],
        ),
    ]
    for arguments, fragments in cases:
        assert cli(["study", "--data", str(STUDY_DATA), *arguments]) == 2, arguments
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
        for fragment in ["tempcreativity study: ", *fragments]:
            assert fragment in captured.err, captured.err
