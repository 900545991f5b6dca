"""Power from the study's variance components: the fast crossed fit against statsmodels, the simulator against
its own parameters and against the test's level, the grid and the command."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from conftest import REPO
from tempcreativity import cli
from tempcreativity.crossed import CrossedModel
from tempcreativity.power import (
    TABLE_COLUMNS,
    Components,
    design_from_ratings,
    estimate_components,
    grid_design,
    power_analysis,
    power_grid,
    power_sentences,
    simulate_power,
    simulate_ratings,
    smallest_design,
)
from tempcreativity.ratings import load_ratings

STUDY_RATINGS = REPO / "resources" / "peeperkorn2024" / "survey_ratings.csv"
TEMPERATURES = [0.001, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0]


def _model(frame) -> CrossedModel:
    codes = [frame[name].astype("category").cat.codes.to_numpy() for name in ("participant_id", "story_id")]
    return CrossedModel(*codes, frame["temperature"].to_numpy())


@pytest.fixture(scope="module")
def study():
    ratings = load_ratings(STUDY_RATINGS)
    return ratings, {found.criterion: found for found in estimate_components(ratings)}


def test_components_are_the_crossed_models_of_the_ratings_table(study):
    _, components = study
    # docs/statistics.md: the crossed model's temperature betas on the study's ratings
    assert [round(components[name].beta, 4) for name in ("novelty", "typicality", "cohesion", "coherence")] == [
        0.3078,
        -0.0918,
        -0.1559,
        0.2298,
    ]
    assert components["novelty"].var_story < 1e-4 < components["coherence"].var_story  # novelty's on the boundary


def test_fast_fit_gives_statsmodels_estimates_on_the_study_ratings(study):
    ratings, components = study
    frame = ratings.to_pandas()
    model = _model(frame)
    for name, expected in components.items():
        fitted = model.fit(frame[name].to_numpy())
        assert fitted.beta == pytest.approx(expected.beta, abs=1e-4)
        assert fitted.intercept == pytest.approx(expected.intercept, abs=1e-4)
        assert fitted.var_participant == pytest.approx(expected.var_participant, abs=1e-4)
        assert fitted.var_story == pytest.approx(expected.var_story, abs=1e-4)
        assert fitted.var_residual == pytest.approx(expected.var_residual, abs=1e-4)
    # lme4's model-based SE, at most 1% below statsmodels' (docs/statistics.md: novelty .1376, coherence .1337)
    assert model.fit(frame["novelty"].to_numpy()).se == pytest.approx(0.1376, rel=0.01)
    assert model.fit(frame["coherence"].to_numpy()).se == pytest.approx(0.1337, rel=0.015)


def test_fast_fit_reaches_the_boundary_where_a_gradient_method_stops(study):
    """Coherence's story variance is small: a gradient fit started at theta = 0 stays there (the deviance's slope
    vanishes at 0); Nelder-Mead leaves it and finds statsmodels' .0326 from any start."""
    ratings, components = study
    frame = ratings.to_pandas()
    model = _model(frame)
    for start in ((1.0, 1.0), (0.5, 0.0), (2.0, 0.01)):
        assert model.fit(frame["coherence"].to_numpy(), start).var_story == pytest.approx(0.03263, abs=1e-4)


def test_simulated_data_refitted_recover_the_generating_parameters():
    """300 replicates on 40 raters x 7 of 35 stories; tolerances are about 4 Monte-Carlo standard errors (and the
    story variance's allows REML's truncation at 0, which biases a small variance upwards)."""
    design, _ = grid_design(TEMPERATURES, 40, 7, 5, seed=1)
    truth = Components("x", intercept=3.0, beta=0.3, var_participant=0.4, var_story=0.15, var_residual=0.8)
    model = CrossedModel(design.participant, design.story, design.temperature)
    rng = np.random.default_rng(11)
    fits = [model.fit(simulate_ratings(design, truth, rng)) for _ in range(300)]
    beta = np.array([fit.beta for fit in fits])
    assert beta.mean() == pytest.approx(0.3, abs=4 * beta.std() / np.sqrt(300))
    assert np.mean([fit.intercept for fit in fits]) == pytest.approx(3.0, abs=0.04)
    assert np.mean([fit.var_participant for fit in fits]) == pytest.approx(0.4, rel=0.08)
    assert np.mean([fit.var_story for fit in fits]) == pytest.approx(0.15, rel=0.15)
    assert np.mean([fit.var_residual for fit in fits]) == pytest.approx(0.8, rel=0.02)
    # the model-based SE is the spread of the estimates
    assert np.mean([fit.se for fit in fits]) == pytest.approx(beta.std(), rel=0.15)


def test_rejection_rate_at_beta_zero_is_alpha():
    """400 replicates at beta = 0: the rejection rate within the 99% binomial range of .05 (.022 to .078)."""
    design, _ = grid_design(TEMPERATURES, 30, 7, 5, seed=2)
    null = Components("x", intercept=3.0, beta=0.0, var_participant=0.3, var_story=0.1, var_residual=0.8)
    found = simulate_power(design, null, 400, np.random.default_rng(5))
    assert found["failed"] == 0
    assert 0.022 <= found["power"] <= 0.078, found
    assert found["power_low"] < 0.05 < found["power_high"]


def test_power_on_the_studys_own_design(study):
    """The study's design (who rated which story) with its own components: novelty's power about .55 (docs)."""
    ratings, components = study
    found = simulate_power(design_from_ratings(ratings), components["novelty"], 300, np.random.default_rng(0))
    assert found["power_low"] < 0.55 < found["power_high"], found
    assert 0.45 < found["power"] < 0.68


def test_power_grid_is_seeded_per_cell_and_describes_its_designs(study):
    _, components = study
    picked = [components["novelty"]]
    table = power_grid(picked, TEMPERATURES, (20, 60), (7,), (5,), replicates=30, seed=4)
    assert table.columns == list(TABLE_COLUMNS)
    assert table["ratings"].to_list() == [140, 420]
    assert table["ratings_per_story_min"].to_list() == [4, 12] == table["ratings_per_story_max"].to_list()
    # one story per temperature each: only the 7 x C(5, 2) = 70 same-temperature pairs go unshared at 60 raters
    assert table["unshared_pair_share"][1] == pytest.approx(70 / 595) and table["power"][1] > table["power"][0]
    again = power_grid(picked, TEMPERATURES, (60,), (7,), (5,), replicates=30, seed=4)
    assert again.row(0) == table.row(1), "a cell's numbers do not depend on the rest of the grid"
    other = power_grid(picked, TEMPERATURES, (60,), (7,), (5,), replicates=30, seed=5)
    assert other["power"][0] != again["power"][0] or other["mean_beta"][0] != again["mean_beta"][0]
    impossible = power_grid(picked, TEMPERATURES, (4,), (40,), (5,), replicates=5)
    assert np.isnan(impossible["power"][0]) and impossible["note"][0].startswith("stories-per-participant: 40")


def test_sentences_name_the_smallest_design_reaching_the_target():
    rows = [
        {
            "criterion": c,
            "design": "balanced",
            "participants": p,
            "stories_per_participant": k,
            "stories_per_temperature": 5,
            "ratings": p * k,
            "power": pw,
            "power_low": pw - 0.05,
            "power_high": pw + 0.05,
            "true_beta": 0.3,
        }
        for c, grid in (
            ("novelty", {(20, 5): 0.5, (40, 5): 0.82, (20, 10): 0.81, (40, 10): 0.95}),
            ("coherence", {(20, 5): 0.2, (40, 5): 0.4, (20, 10): 0.3, (40, 10): 0.6}),
        )
        for (p, k), pw in grid.items()
    ]
    table = pl.DataFrame(rows)
    novelty, coherence = power_sentences(table, 0.8)
    assert novelty.startswith("With the study's variance components, detecting novelty's temperature effect")
    assert (
        "takes about 20 raters rating 10 stories each (5 per temperature, 200 ratings; power .81 [.76, .86])" in novelty
    )
    assert "is not reached within the grid (at most .60 with 40 raters rating 10 stories each" in coherence
    assert smallest_design(table, 0.8) is None and smallest_design(table, 0.55)["ratings"] == 400


def test_power_command_writes_a_seeded_table_figure_and_sentences(tmp_path, capsys):
    arguments = [
        "power",
        "--participants",
        "20",
        "--stories-per-participant",
        "7",
        "--replicates",
        "10",
        "--seed",
        "3",
        "--no-progress",
    ]
    assert cli.main([*arguments, "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert printed.count("With the study's variance components") == 4
    assert "on the ratings' own design (36 raters, 180 ratings)" in printed
    table = pl.read_csv(tmp_path / "a" / "power.csv")
    assert table.height == 4 * 2 and set(table["design"]) == {"observed", "balanced"}
    assert (tmp_path / "a" / "power.png").stat().st_size > 10_000
    assert (tmp_path / "a" / "power.svg").read_text().count("<svg") == 1
    assert cli.main([*arguments, "--out", str(tmp_path / "b")]) == 0
    for name in ("power.csv", "power.txt", "power.svg"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # the library function the command and the pipeline's plan_human_study both call
    table, sentences = power_analysis(load_ratings(STUDY_RATINGS), None, (20,), (7,), (5,), replicates=10, seed=3)
    assert table.write_csv(float_precision=6) == (tmp_path / "a" / "power.csv").read_text()
    assert "\n".join(sentences) + "\n" == (tmp_path / "a" / "power.txt").read_text()


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--participants", "20,x"],
            "--participants: '20,x' is not a list of whole numbers; allowed: comma-separated whole numbers >= 2",
        ),
        (["--participants", "1,20"], "--participants: '1,20' has 1; allowed: comma-separated whole numbers >= 2"),
        (["--replicates", "0"], "--replicates: '0' has 0; allowed: whole number >= 1"),
        (["--fit", "lme4"], "--fit: 'lme4'; allowed: fast, statsmodels"),
        (["--ratings", "missing.csv"], "--ratings: missing.csv does not exist"),
    ],
)
def test_power_command_errors_name_the_argument(tmp_path, capsys, extra, message):
    assert cli.main(["power", "--out", str(tmp_path / "out"), *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("tempcreativity power: ") and message in error, error
    assert not (tmp_path / "out").exists()
