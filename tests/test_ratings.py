"""The human-evaluation analysis: Cronbach's alpha and the mixed models on hand-checkable and synthetic
ratings, bad input files, and the study's own released ratings (resources/peeperkorn2024/)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from conftest import REPO
from tempcreativity.cli import main as cli
from tempcreativity.ratings import (
    RATING_ITEMS,
    RatingsError,
    cronbach_alpha,
    descriptives,
    krippendorff_alpha,
    load_ratings,
    mixed_models,
    resolve_random_effects,
    single_rating_icc,
)

STUDY_RATINGS = REPO / "resources" / "peeperkorn2024" / "survey_ratings.csv"  # the study's released ratings


def long_ratings(matrix: np.ndarray, item: str = "novelty") -> pl.DataFrame:
    """Participants (rows) x stories (columns) as one row per rating; other items copy the same values."""
    rows = [
        {
            "story_id": f"s{j}",
            "temperature": 1.0,
            "participant_id": f"p{i}",
            **dict.fromkeys(RATING_ITEMS, float(value)),
        }
        for i, row in enumerate(matrix)
        for j, value in enumerate(row)
        if not np.isnan(value)
    ]
    return pl.DataFrame(rows)


def test_cronbach_alpha_on_a_hand_checkable_case():
    # 3 participants x 3 stories. Item (story) variances: 1, 1, 1 (ddof=1); totals 3, 6, 9 -> variance 9.
    # alpha = k / (k - 1) * (1 - sum(item variances) / variance(totals)) = 1.5 * (1 - 3 / 9) = 1.0
    matrix = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    assert cronbach_alpha(long_ratings(matrix), "novelty") == pytest.approx(1.0)
    # totals 6, 6, 6 have no variance relative to the items -> strongly negative alpha
    anti = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 1.0], [3.0, 1.0, 2.0]])
    assert cronbach_alpha(long_ratings(anti), "novelty") < 0


def planted(beta: float, participants: int = 40, per_participant: int = 6, seed: int = 0) -> pl.DataFrame:
    """Ratings with a random intercept per participant and a planted slope on temperature."""
    rng = np.random.default_rng(seed)
    rows = []
    for participant in range(participants):
        intercept = rng.normal(0, 0.6)
        for index in range(per_participant):
            temperature = float(rng.choice([0.01, 0.5, 1.0, 1.5, 2.0]))
            value = 3.0 + intercept + beta * temperature + rng.normal(0, 0.4)
            rows.append(
                {
                    "story_id": f"s{participant}-{index}",
                    "temperature": temperature,
                    "participant_id": str(participant),
                    **dict.fromkeys(RATING_ITEMS, value),
                }
            )
    return pl.DataFrame(rows)


def test_mixed_model_recovers_a_planted_effect_within_its_ci():
    table = mixed_models(planted(beta=0.5))
    for row in table.iter_rows(named=True):
        assert row["beta"] - 1.96 * row["se"] < 0.5 < row["beta"] + 1.96 * row["se"]
        assert row["p"] < 1e-6 and row["n_obs"] == 240 and row["n_groups"] == 40
        # the random intercept explains a real share: conditional above marginal, both definitions
        assert 0 < row["r2m_nakagawa"] < row["r2c_nakagawa"] < 1 and 0 < row["r2m"] < row["r2c"] < 1


def test_no_effect_gives_a_ci_covering_zero():
    row = mixed_models(planted(beta=0.0, seed=1)).row(0, named=True)
    assert row["beta"] - 1.96 * row["se"] < 0 < row["beta"] + 1.96 * row["se"]


def test_constant_ratings_are_reported_as_not_estimable():
    table = planted(beta=0.5).with_columns(pl.lit(1.0).alias("typicality"))
    row = mixed_models(table).filter(pl.col("rating") == "typicality").row(0, named=True)
    assert math.isnan(row["beta"]) and row["n_obs"] == 240


def test_no_participant_variance_fits_at_the_boundary():
    # every participant rates alike: the random-intercept variance is estimated at 0 (a singular fit)
    ratings = planted(beta=0.5, seed=2).with_columns((pl.col("temperature") * 0.5 + 2).alias("novelty"))
    ratings = ratings.with_columns(
        pl.col("novelty") + pl.Series(np.random.default_rng(3).normal(0, 0.3, ratings.height))
    )
    row = mixed_models(ratings).filter(pl.col("rating") == "novelty").row(0, named=True)
    assert row["beta"] == pytest.approx(0.5, abs=0.1)
    assert row["r2c"] == pytest.approx(row["r2m"], abs=0.05) and not math.isnan(row["r2m_nakagawa"])


def test_score_predictors_are_joined_on_story_id():
    ratings = planted(beta=0.5)
    scores = ratings.select(
        "story_id", (pl.col("temperature") * 10).alias("perplexity"), pl.lit(0.5).alias("cosine_similarity")
    )
    table = mixed_models(ratings, scores)
    assert sorted(set(table["predictor"])) == ["cosine_similarity", "perplexity", "temperature"]
    assert table.filter(pl.col("predictor") == "cosine_similarity")["beta"].is_nan().all(), "constant: not estimable"
    perplexity = table.filter((pl.col("predictor") == "perplexity") & (pl.col("rating") == "novelty")).row(
        0, named=True
    )
    assert perplexity["beta"] == pytest.approx(0.05, abs=0.02)


HEADER = "story_id,temperature,participant_id,novelty,typicality,cohesion,coherence\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "story_id,temperature,participant_id,novelty,typicality,cohesion\na,1,p,1,2,3\n",
            ["missing column", "coherence"],
        ),
        (
            "story_id,temperature,participant_id,novelty,typicality,cohesion,coherence\na,1,p,1,2,3,6\n",
            ["coherence", "outside [1, 5]", "6", "row(s) 1", "numbers from 1 to 5"],
        ),
        (
            "story_id,temperature,participant_id,novelty,typicality,cohesion,coherence\na,1,p,1,2,3,4\nb,1,p,0.5,2,3,4\n",
            ["novelty", "0.5", "row(s) 2"],
        ),
        (
            "story_id,temperature,participant_id,novelty,typicality,cohesion,coherence\na,1,p,high,2,3,4\n",
            ["novelty", "numbers"],
        ),
        (
            "story_id,temperature,participant_id,novelty,typicality,cohesion,coherence\na,1,p,,2,3,4\n",
            ["novelty", "missing values", "row(s) 1"],
        ),
        (HEADER + "a,-50,p,1,2,3,4\na,1,q,1,2,3,4\n", ["temperature", "-50", "row(s) 1", "from 0 to 2"]),
        (HEADER + "a,nan,p,1,2,3,4\na,1,q,1,2,3,4\n", ["temperature", "nan", "row(s) 1", "finite"]),
        (HEADER + "a,inf,p,1,2,3,4\na,1,q,1,2,3,4\n", ["temperature", "inf", "row(s) 1"]),
        (HEADER + "a,1,p,1,2,3,4\nb,1,p,1,2,3,4\n", ["at least 2 participants", "found 1"]),
        (
            HEADER + "a,1,p,1,2,3,4\nb,1,q,1,2,3,4\na,1,p,2,2,3,4\n",
            ["1 (story, participant) pair(s) rated more than once", "story a by participant p in data rows 1, 3"],
        ),
        (HEADER, ["header but no rating rows"]),
        ("", ["is empty", "a header and one row per rating"]),
        (HEADER.replace(",", ";") + "a;1;p;1;2;3;4\n", ["separated by ';'", "comma-separated"]),
    ],
)
def test_bad_ratings_files_name_the_problem(tmp_path, content, expected):
    """Every problem is a RatingsError naming what is wrong (the command line prints it), never a traceback."""
    path = tmp_path / "ratings.csv"
    path.write_text(content)
    with pytest.raises(RatingsError) as raised:
        load_ratings(path)
    for fragment in expected:
        assert fragment in str(raised.value)


def test_command_line_reports_bad_input_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "ratings.csv"
    path.write_text("story_id,temperature\na,1\n")
    assert cli(["ratings", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "missing column" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_binary_file_is_named_not_a_text_file(tmp_path):
    path = tmp_path / "ratings.xlsx"
    path.write_bytes(b"PK\x03\x04\x00\x00binary\x00\xff\xfe" * 20)
    with pytest.raises(RatingsError, match="not a text file"):
        load_ratings(path)


def test_tables_are_written_as_a_set_only_after_every_computation(tmp_path, monkeypatch):
    """A failing computation leaves the earlier tables as they were: none new, none half-written."""
    import tempcreativity.ratings as ratings_module

    out = tmp_path / "out"
    ratings_module.write_tables(planted(beta=0.5), out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def failing(*_):
        raise RuntimeError("the mixed models failed")

    monkeypatch.setattr(ratings_module, "mixed_models", failing)
    with pytest.raises(RuntimeError):
        ratings_module.write_tables(planted(beta=-0.5), out)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before


def test_duplicated_study_ratings_are_refused(tmp_path):
    doubled = tmp_path / "doubled.csv"
    doubled.write_text(STUDY_RATINGS.read_text() + "".join(STUDY_RATINGS.read_text().splitlines(True)[1:]))
    with pytest.raises(RatingsError, match=r"180 \(story, participant\) pair\(s\) rated more than once"):
        load_ratings(doubled)


def test_study_ratings_reproduce_the_papers_table_1():
    table = descriptives(load_ratings(STUDY_RATINGS))
    alphas = dict(zip(table["item"], table["cronbach_alpha"]))
    assert alphas["mean"] == pytest.approx(0.639, abs=0.0005)  # the study reports a mean alpha of .639
    assert table["item"].to_list() == [*RATING_ITEMS, "mean"]
    means = dict(zip(table["item"], table["mean"]))
    assert means["cohesion"] > means["coherence"]  # coherence is reversed: higher = harder to follow


def test_study_ratings_end_to_end_through_the_command_line(tmp_path):
    from tempcreativity.embedding import embed_stories
    from tempcreativity.peeperkorn import load_study_stories
    from tempcreativity.scoring import score_stories

    stories = load_study_stories(STUDY_RATINGS.parent)
    vectors, _ = embed_stories(stories["text"].to_list(), "minilm", {}, {"dtype": "bfloat16"}, tmp_path / "cache")
    score_stories(stories, {"minilm": vectors}).write_parquet(tmp_path / "scores.parquet")
    assert (
        cli(
            [
                "ratings",
                str(STUDY_RATINGS),
                "--out",
                str(tmp_path / "out"),
                "--scores",
                str(tmp_path / "scores.parquet"),
            ]
        )
        == 0
    )
    lme = pl.read_csv(tmp_path / "out" / "ratings_lme.csv")
    assert lme.columns == [
        "random_effects",
        "rating",
        "predictor",
        "beta",
        "se",
        "p",
        "r2c",
        "r2m",
        "r2c_nakagawa",
        "r2m_nakagawa",
        "n_obs",
        "n_groups",
        "n_stories",
    ]
    assert lme["random_effects"].unique(maintain_order=True).to_list() == ["participant", "crossed"]  # default: both
    lme = lme.filter(pl.col("random_effects") == "participant")
    # temperature, cosine similarity and edit distance (the study released no log-probabilities: no perplexity)
    assert sorted(set(lme["predictor"])) == ["cosine_similarity", "edit_distance", "temperature"]
    assert set(lme["n_obs"]) == {180} and set(lme["n_groups"]) == {36}
    novelty = lme.filter((pl.col("rating") == "novelty") & (pl.col("predictor") == "temperature")).row(0, named=True)
    assert novelty["beta"] > 0 and novelty["p"] < 0.05  # novelty rises with temperature in the study's data
    descriptives_table = pl.read_csv(tmp_path / "out" / "ratings_descriptives.csv")
    assert descriptives_table.height == 5 and {"krippendorff_alpha", "icc"} <= set(descriptives_table.columns)


# The acceptance values on the study's ratings: temperature's beta, SE and p with crossed random intercepts for
# participant and story (statsmodels variance components, REML), to 3 decimals.
CROSSED = {
    "novelty": (0.308, 0.138, 0.025),
    "typicality": (-0.092, 0.133, 0.491),
    "cohesion": (-0.156, 0.143, 0.275),
    "coherence": (0.230, 0.134, 0.086),
}


def test_crossed_model_on_the_study_ratings_from_the_command_line(tmp_path):
    assert cli(["ratings", str(STUDY_RATINGS), "--out", str(tmp_path), "--random-effects", "crossed"]) == 0
    lme = pl.read_csv(tmp_path / "ratings_lme.csv")
    assert set(lme["random_effects"]) == {"crossed"} and set(lme["n_stories"]) == {31}
    for row in lme.iter_rows(named=True):
        assert (round(row["beta"], 3), round(row["se"], 3), round(row["p"], 3)) == CROSSED[row["rating"]], row["rating"]
    assert cli(["ratings", str(STUDY_RATINGS), "--out", str(tmp_path / "p"), "--random-effects", "participant"]) == 0
    assert set(pl.read_csv(tmp_path / "p" / "ratings_lme.csv")["random_effects"]) == {"participant"}


def test_which_models_are_fitted_follows_the_design():
    study = load_ratings(STUDY_RATINGS)
    assert resolve_random_effects(study, None) == ["participant", "crossed"]  # stories rated 5-7 times
    assert resolve_random_effects(planted(beta=0.5), None) == ["participant"]  # every story rated once
    one_rater = planted(beta=0.5).with_columns(participant_id=pl.lit("judge"))
    assert resolve_random_effects(one_rater, "both") == ["none"]
    row = mixed_models(one_rater).row(0, named=True)
    assert row["random_effects"] == "none" and abs(row["beta"] - 0.5) < 3 * row["se"]
    with pytest.raises(RatingsError, match="rated by more than one participant.*use participant"):
        resolve_random_effects(planted(beta=0.5), "crossed")
    with pytest.raises(RatingsError, match="allowed values: participant, crossed, both"):
        resolve_random_effects(study, "story")


def test_krippendorff_alpha_on_a_hand_checkable_case():
    # two raters, three stories, opposite orders: D_o = 16/6 (pairable values 6), D_e = 48/30, alpha = 1 - D_o/D_e
    matrix = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    assert krippendorff_alpha(long_ratings(matrix), "novelty") == pytest.approx(1 - (16 / 6) / (48 / 30))
    assert krippendorff_alpha(long_ratings(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])), "novelty") == pytest.approx(
        1.0
    )


def test_icc_of_a_complete_design_matches_pingouins_icc2():
    """On a complete design the variance-component ICC is the classic ICC(2,1) = ICC(A,1), computed by pingouin."""
    import pingouin

    rng = np.random.default_rng(5)
    stories, raters = rng.normal(0, 1.0, 12), rng.normal(0, 0.5, 5)
    matrix = 3 + stories[None, :] + raters[:, None] + rng.normal(0, 0.6, (5, 12))
    ratings = long_ratings(matrix)
    classic = pingouin.intraclass_corr(
        ratings.to_pandas(), targets="story_id", raters="participant_id", ratings="novelty"
    )
    icc_a1 = float(classic.set_index("Type").loc["ICC(A,1)", "ICC"])
    assert single_rating_icc(ratings, "novelty") == pytest.approx(icc_a1, abs=0.01)
    assert math.isnan(single_rating_icc(planted(beta=0.5), "novelty"))  # no story rated twice


# --- the command line's edges: --out and the input paths are checked before anything is computed ---------------


def one_line_refusal(capsys, *fragments: str) -> None:
    """What a refused command printed: one line on stderr naming what is wrong, no traceback."""
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    for fragment in fragments:
        assert fragment in captured.err, captured.err


def test_ratings_command_refuses_a_bad_out_or_input_path_before_computing(tmp_path, capsys, monkeypatch):
    import tempcreativity.cli as cli_module

    computed = []
    monkeypatch.setattr(cli_module, "write_tables", lambda *arguments: computed.append(arguments) or {})
    a_file = tmp_path / "tables.csv"
    a_file.write_text("not a folder\n")
    cases = [
        ([str(STUDY_RATINGS), "--out", str(a_file)], [f"--out: {a_file} is a file, not a folder", "needed: a folder"]),
        ([str(STUDY_RATINGS), "--out", ""], ["--out: the path is empty", "ratings_descriptives.csv"]),
        ([str(STUDY_RATINGS), "--out", str(a_file / "tables")], [f"{a_file} is a file, not a folder"]),
        ([str(STUDY_RATINGS), "--out", "/proc/self/tables"], ["--out: /proc/self/tables cannot be written"]),
        ([str(tmp_path), "--out", str(tmp_path / "out")], [f"ratings: {tmp_path} is a folder, not a ratings file"]),
        ([str(tmp_path / "none.csv"), "--out", str(tmp_path / "out")], ["none.csv does not exist"]),
        (
            [str(STUDY_RATINGS), "--out", str(tmp_path / "out"), "--scores", str(tmp_path)],
            [f"--scores: {tmp_path} is a folder, not a scores file"],
        ),
        (
            [str(STUDY_RATINGS), "--out", str(tmp_path / "out"), "--scores", str(a_file)],
            [f"--scores: {a_file} is not a readable Parquet file"],
        ),
    ]
    for arguments, fragments in cases:
        assert cli(["ratings", *arguments]) == 2, arguments
        one_line_refusal(capsys, "tempcreativity ratings: ", *fragments)
    assert computed == [] and not (tmp_path / "out").exists()


def test_a_semicolon_file_with_decimal_commas_and_near_miss_headers_are_named(tmp_path):
    """A ';'-separated file with decimal commas (a European spreadsheet's CSV) used to get polars' parser message;
    headers with trailing spaces or capitals were reported missing without showing what the file had."""
    european = tmp_path / "european.csv"
    european.write_text(
        "story_id;temperature;participant_id;novelty;typicality;cohesion;coherence\na;1,5;p;1;2;3;4\nb;0,5;q;2;2;3;4\n"
    )
    with pytest.raises(RatingsError) as raised:
        load_ratings(european)
    for fragment in ("separated by ';'", "with decimal commas", "comma-separated", "decimal points (1.5, not 1,5)"):
        assert fragment in str(raised.value), str(raised.value)
    near = tmp_path / "near.csv"
    near.write_text("story_id,Temperature,participant_id,novelty ,typicality,Cohesion,coherence\na,1,p,1,2,3,4\n")
    with pytest.raises(RatingsError) as raised:
        load_ratings(near)
    message = str(raised.value)
    assert "missing column(s) temperature, novelty, cohesion" in message
    assert "found: 'story_id', 'Temperature', 'participant_id', 'novelty ', 'typicality', 'Cohesion'" in message
    assert "'novelty ' would be novelty once stripped and lower-cased" in message and "rename the headers" in message


# --- large inputs: the agreement statistics and the mixed models without dense participant x story matrices -----


def incomplete_ratings(participants: int, stories: int, per_participant: int, seed: int) -> pl.DataFrame:
    """Each participant rates some stories (an incomplete crossed design), ratings 1-5 with participant and story
    effects and a temperature slope."""
    rng = np.random.default_rng(seed)
    temperature = rng.choice([0.01, 0.5, 1.0, 1.5, 2.0], stories)
    story_effect, person_effect = rng.normal(0, 0.5, stories), rng.normal(0, 0.7, participants)
    rows = []
    for person in range(participants):
        for story in rng.choice(stories, per_participant, replace=False):
            value = 3 + 0.3 * temperature[story] + story_effect[story] + person_effect[person] + rng.normal(0, 0.8)
            rating = float(np.clip(np.round(value), 1, 5))
            rows.append(
                {
                    "story_id": f"s{story}",
                    "temperature": float(temperature[story]),
                    "participant_id": f"p{person}",
                    **dict.fromkeys(RATING_ITEMS, rating),
                }
            )
    return pl.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sparse_cronbach_and_closed_form_krippendorff_equal_pingouin_and_the_package(seed):
    import krippendorff
    import pingouin

    ratings = incomplete_ratings(participants=25, stories=12, per_participant=4 + seed, seed=seed)
    wide = ratings.to_pandas().pivot_table(index="participant_id", columns="story_id", values="novelty")
    assert cronbach_alpha(ratings, "novelty") == pytest.approx(float(pingouin.cronbach_alpha(data=wide)[0]), rel=1e-9)
    package = krippendorff.alpha(reliability_data=wide.to_numpy(), level_of_measurement="interval")
    assert krippendorff_alpha(ratings, "novelty") == pytest.approx(package, rel=1e-9)


@pytest.mark.parametrize(("seed", "random_effects"), [(3, "participant"), (4, "crossed"), (5, "crossed")])
def test_the_sparse_reml_fit_is_statsmodels_mixedlm(seed, random_effects):
    """The mixed models and the ICC are fitted without statsmodels' dense matrices; on random incomplete designs
    they give statsmodels' estimates, standard errors (its observed-information ones) and p-values."""
    import statsmodels.formula.api as smf

    from tempcreativity.ratings import _fit

    data = incomplete_ratings(participants=30, stories=15, per_participant=5, seed=seed).to_pandas()
    mine = _fit(data, "novelty ~ temperature", random_effects)
    if random_effects == "participant":
        reference = smf.mixedlm("novelty ~ temperature", data, groups=data["participant_id"]).fit(reml=True)
        variances = {"participant": float(np.asarray(reference.cov_re)[0, 0])}
    else:
        components = {"participant": "0 + C(participant_id)", "story": "0 + C(story_id)"}
        reference = smf.mixedlm(
            "novelty ~ temperature", data.assign(one=1), groups="one", re_formula="0", vc_formula=components
        ).fit(reml=True)
        variances = dict(zip(reference.model.exog_vc.names, reference.vcomp))
    assert mine.fe_params["temperature"] == pytest.approx(reference.fe_params["temperature"], abs=2e-5)
    assert mine.bse_fe["temperature"] == pytest.approx(reference.bse_fe["temperature"], rel=2e-4)
    assert mine.pvalues["temperature"] == pytest.approx(reference.pvalues["temperature"], abs=2e-4)
    assert mine.scale == pytest.approx(reference.scale, rel=1e-4)
    for name, value in variances.items():
        assert mine.variances[name] == pytest.approx(value, abs=2e-4), name
    assert mine.fittedvalues == pytest.approx(np.asarray(reference.fittedvalues), abs=2e-4)


def test_a_crossed_design_past_the_bound_is_refused_before_computing():
    from tempcreativity.ratings import MAX_CROSSED_LEVELS

    stories, people = MAX_CROSSED_LEVELS + 1, MAX_CROSSED_LEVELS + 2
    index = np.arange(2 * people)
    ratings = pl.DataFrame(
        {
            "story_id": (index % stories).astype(str),
            "temperature": (index % 5) / 2.0,
            "participant_id": (index // 2).astype(str),
            **{item: (1.0 + index % 5) for item in RATING_ITEMS},
        }
    )
    with pytest.raises(
        RatingsError,
        match=rf"at most {MAX_CROSSED_LEVELS:,} levels .* found 4,002 participant "
        rf"levels and 4,001 story levels.*--random-effects participant",
    ):
        single_rating_icc(ratings, "novelty")


def test_the_ratings_benchmark_measures_a_small_size_in_process():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_ratings", REPO / "benchmarks" / "bench_ratings.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.measure(rows=1000, stories=40, per_participant=5)
    assert (result["rows"], result["participants"], result["stories"]) == (1000, 200, 40)
    assert result["models"] == "participant, crossed" and result["peak_mib"] > 0
    assert 0.0 < result["novelty_beta"] < 0.6  # the planted slope is 0.3
