"""The survey: balanced, connected designs; stories picked per stratum with their exemplars; blinded forms; answers
back in the study's ratings format, through a real browser."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from markupsafe import escape

from conftest import REPO
from tempcreativity import cli
from tempcreativity.catalogue import CRITERIA
from tempcreativity.design import (
    DesignError,
    balanced_design,
    is_connected,
    ratings_per_story,
    unshared_pairs,
    williams_rows,
)
from tempcreativity.ratings import RATING_ITEMS, load_ratings
from tempcreativity.survey import (
    ANSWER_COLUMNS,
    RATINGS_COLUMNS,
    SurveyError,
    build_survey,
    import_answers,
    pick_stories,
    plan_survey,
    rating_design,
    render_forms,
)

STUDY_RATINGS = REPO / "resources" / "peeperkorn2024" / "survey_ratings.csv"


def generations(temperatures=(0.5, 1.0, 1.5), seeds=4, prompts=("story", "poem"), models=("m",), top_p=(1.0,)):
    """A small generations table: prompts x temperatures x seeds (x models x top-p) and one exemplar per prompt
    and model; every text distinct unless made otherwise."""
    rows = []
    for model in models:
        for prompt in prompts:
            rows.append(
                {
                    "story_id": f"{model}-{prompt}-exemplar",
                    "model_id": model,
                    "prompt_id": prompt,
                    "temperature": 0.0,
                    "seed": 0,
                    "is_exemplar": True,
                    "top_k": 50,
                    "top_p": 1.0,
                    "min_p": 0.0,
                    "text": f"The exemplar {prompt} of {model}.\nIt has two lines.",
                }
            )
            for p in top_p:
                for t in temperatures:
                    for seed in range(seeds):
                        rows.append(
                            {
                                "story_id": f"{model}-{prompt}-{t}-{p}-{seed}",
                                "model_id": model,
                                "prompt_id": prompt,
                                "temperature": t,
                                "seed": seed,
                                "is_exemplar": False,
                                "top_k": 50,
                                "top_p": p,
                                "min_p": 0.0,
                                "text": f"A {prompt} by {model} at {t}, top-p {p}, {seed} <b>x</b>.",
                            }
                        )
    return pl.DataFrame(rows)


# --- designs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("participants, per_participant", [(35, 7), (20, 10), (36, 5), (14, 14), (42, 3)])
def test_balanced_design_is_balanced_connected_and_covers_the_temperatures(participants, per_participant):
    strata = np.tile(np.arange(7), 5)  # 7 temperatures x 5 stories
    design = balanced_design(strata, participants, per_participant, seed=3)
    assert design.shape == (participants, per_participant)
    assert all(len(set(row)) == per_participant for row in design), "no participant rates a story twice"
    counts = ratings_per_story(design, strata.size)
    assert counts.sum() == participants * per_participant
    assert counts.max() - counts.min() <= 1
    if participants * per_participant % strata.size == 0:
        assert counts.min() == counts.max()
    seen = [len(set(strata[row])) for row in design]
    assert min(seen) == min(per_participant, 7), "every temperature where K >= 7, else K different ones"
    assert is_connected(design, strata.size)
    assert np.array_equal(design, balanced_design(strata, participants, per_participant, seed=3)), "seeded"


def test_blocks_of_strata_are_linked_where_k_divides_their_number():
    """2 samplers x 7 temperatures = 14 strata, 7 stories each: without rotating the cycle per round, every
    participant would see the same 7 strata as others of their block, and the two blocks would never meet."""
    strata = np.tile(np.arange(14), 3)
    design = balanced_design(strata, 18, 7, seed=0)
    assert is_connected(design, strata.size)
    assert all(len(set(strata[row] % 7)) == 7 for row in design), "every participant sees all 7 temperatures"
    assert ratings_per_story(design, strata.size).tolist() == [3] * 42


def test_positions_are_counterbalanced_by_a_williams_square():
    assert williams_rows(4) == [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    for size in (3, 4, 5, 7):
        rows = williams_rows(size)
        follows = np.zeros((size, size), dtype=int)
        for row in rows:
            assert sorted(row) == list(range(size))
            for first, second in zip(row, row[1:]):
                follows[first, second] += 1
        assert all(sorted(column) == list(range(size)) for column in zip(*rows[:size]))
        off_diagonal = follows[~np.eye(size, dtype=bool)]
        assert off_diagonal.min() == off_diagonal.max(), "each ordered pair of neighbours equally often"
    strata = np.tile(np.arange(7), 5)
    design = balanced_design(strata, 70, 7, seed=1)
    positions = np.zeros((7, 7), dtype=int)
    for row in design:
        positions[strata[row], np.arange(7)] += 1
    assert (positions == 10).all(), "every temperature 10 times at every position"
    uneven = balanced_design(strata, 42, 5, seed=1)
    positions = np.zeros((7, 5), dtype=int)
    for row in uneven:
        positions[strata[row], np.arange(5)] += 1
    assert positions.max() - positions.min() <= 2


def test_designs_share_more_story_pairs_than_the_studys():
    ratings = load_ratings(STUDY_RATINGS)
    stories = {name: index for index, name in enumerate(dict.fromkeys(ratings["story_id"].to_list()))}
    study = np.array(
        [
            [stories[s] for s in group["story_id"]]
            for _, group in ratings.group_by("participant_id", maintain_order=True)
        ]
    )
    assert study.shape == (36, 5)
    assert unshared_pairs(study, len(stories)) == (303, 465)
    strata = np.tile(np.arange(7), 5)
    ours, pairs = unshared_pairs(balanced_design(strata, 36, 5, seed=0), strata.size)
    assert pairs == 595 and ours / pairs < 303 / 465 - 0.15
    assert ours >= 595 - 36 * 10, "no design of 36 x 5 can share more pairs than 36 x C(5, 2)"


def test_designs_that_cannot_work_are_refused_with_the_argument_named():
    strata = np.tile(np.arange(7), 5)
    with pytest.raises(DesignError, match="^stories-per-participant: 36; allowed: 1 to the number of stories"):
        balanced_design(strata, 10, 36)
    with pytest.raises(DesignError, match="^participants: 1;"):
        balanced_design(strata, 1, 5)
    with pytest.raises(DesignError, match="separate groups"):
        balanced_design(strata, 7, 5)  # 35 ratings of 35 stories: every story rated once, nothing links raters


# --- stories and plans -------------------------------------------------------------------------------------------


def test_pick_stories_stratifies_spreads_prompts_and_carries_the_exemplar():
    frame = generations()
    stories, notes = pick_stories(frame, 2, seed=4)
    assert notes == []
    assert stories.group_by("temperature").len()["len"].to_list() == [2, 2, 2]
    assert (stories.group_by("temperature").agg(pl.col("prompt_id").n_unique())["prompt_id"] == 2).all()
    assert stories["exemplar_text"].to_list() == [
        f"The exemplar {prompt} of m.\nIt has two lines." for prompt in stories["prompt_id"]
    ]
    assert stories.equals(pick_stories(frame, 2, seed=4)[0])
    assert not stories.equals(pick_stories(frame, 2, seed=5)[0])


def test_pick_stories_strata_follow_models_and_samplers_and_repeats_are_noted():
    frame = generations(models=("a", "b"), top_p=(0.9, 1.0), prompts=("story",))
    stories, _ = pick_stories(frame, 3, seed=0)
    assert stories["stratum"].n_unique() == 2 * 2 * 3
    assert stories.filter(pl.col("stratum") == "a, top-p 0.9, temperature 0.5").height == 3
    assert set(stories.filter(pl.col("model_id") == "b")["exemplar_story_id"]) == {"b-story-exemplar"}
    plan = plan_survey(stories, 27, 4, seed=0)  # 12 strata, temperature fastest: any 4 in a row hold all 3
    assert plan.summary["temperatures_per_participant_min"] == 3 and plan.summary["ratings_per_story_min"] == 3
    same = generations(prompts=("story",)).with_columns(
        text=pl.when(pl.col("temperature") == 0.5).then(pl.lit("greedy text")).otherwise(pl.col("text"))
    )
    _, notes = pick_stories(same, 2, seed=0)
    assert notes == [
        "temperature 0.5: 1 of the 2 picked stories repeat the text of another (only 1 distinct texts among 4 stories)"
    ]
    with pytest.raises(SurveyError, match=r"^stories-per-temperature: 5, but temperature 0\.5 has 4 stories"):
        pick_stories(generations(prompts=("story",)), 5)
    with pytest.raises(SurveyError, match="has no exemplar"):
        pick_stories(frame.filter(~pl.col("is_exemplar") | (pl.col("model_id") == "a")), 1)


def test_plan_blinds_the_stories_and_forms_hold_no_story_id(tmp_path):
    stories, _ = pick_stories(generations(), 2, seed=1)
    plan = plan_survey(stories, 6, 3, seed=1)
    assert plan.key["code"].n_unique() == 6 and plan.key["code"].str.contains(r"^[A-Z2-9]{6}$").all()
    assert plan.summary["ratings_per_story_min"] == plan.summary["ratings_per_story_max"] == 3
    assert plan.summary["temperatures_per_participant_min"] == 3 and plan.summary["connected"]
    forms = render_forms(plan)
    assert sorted(forms) == ["P1", "P2", "P3", "P4", "P5", "P6"]
    for participant, html in forms.items():
        codes = plan.assignments.filter(pl.col("participant_id") == participant)["code"].to_list()
        assert all(f'data-code="{code}"' in html for code in codes)
        assert not any(story_id in html for story_id in plan.key["story_id"]), "no story id reaches a participant"
        assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html, "story text is escaped"
        assert "http://" not in html and "https://" not in html and "<script src" not in html, "self-contained"
        assert "HIGHER" not in html and "<em>higher</em> rating means the story is <em>harder</em>" in html
        assert all(str(escape(criterion.question)) in html for criterion in CRITERIA.values()), "every criterion"


# --- the command line -------------------------------------------------------------------------------------------


def test_survey_command_writes_key_assignments_and_forms(tmp_path, capsys):
    parquet = tmp_path / "generations.parquet"
    generations().write_parquet(parquet)
    out = tmp_path / "survey"
    arguments = [
        "survey",
        str(parquet),
        "--participants",
        "6",
        "--stories-per-participant",
        "3",
        "--stories-per-temperature",
        "2",
        "--out",
        str(out),
        "--seed",
        "7",
    ]
    assert cli.main(arguments) == 0
    printed = capsys.readouterr().out
    assert "every story is rated by 3 participants" in printed and "Every participant sees every temperature" in printed
    assert "the study's own design: 303 of 465, 65%" in printed
    key = pl.read_csv(out / "key.csv")
    assignments = pl.read_csv(out / "assignments.csv")
    assert key.columns[:4] == ["survey_id", "code", "story_id", "temperature"] and key.height == 6
    assert assignments.columns == ["participant_id", "position", "code"] and assignments.height == 18
    assert len(list((out / "forms").glob("*.html"))) == 6
    first = {path.name: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert cli.main(arguments) == 0
    assert first == {path.name: path.read_bytes() for path in out.rglob("*") if path.is_file()}, (
        "same seed, same survey"
    )


def test_build_survey_gives_the_files_the_command_writes(tmp_path, capsys):
    """The library function the command and the pipeline's plan_human_study both call: same files, same bytes."""
    parquet = tmp_path / "generations.parquet"
    generations().write_parquet(parquet)
    assert (
        cli.main(
            [
                "survey",
                str(parquet),
                "--participants",
                "6",
                "--stories-per-participant",
                "3",
                "--stories-per-temperature",
                "2",
                "--out",
                str(tmp_path / "out"),
                "--seed",
                "7",
            ]
        )
        == 0
    )
    plan, lines, files = build_survey(generations(), 6, 3, 2, seed=7)
    written = {
        path.relative_to(tmp_path / "out").as_posix(): path.read_text()
        for path in (tmp_path / "out").rglob("*")
        if path.is_file()
    }
    assert files == written and sorted(name for name in files if name.startswith("forms/"))[0] == "forms/P1.html"
    assert files["design.txt"] == "\n".join(lines) + "\n" and plan.summary["ratings"] == 18


def test_a_planned_survey_is_simulated_beside_the_power_grid(tmp_path):
    """The survey's own design (who rates which story, at which temperature) as power.py's RatingDesign: its row
    in the table, its part of each sentence and its diamond in the figure, the grid's numbers unchanged by it."""
    from tempcreativity.figures import save
    from tempcreativity.power import Components, design_temperatures, power_figure, power_grid, power_sentences

    plan, _, _ = build_survey(generations(), 6, 3, 2, seed=1)
    design = rating_design(plan)
    temperature = dict(zip(plan.key["code"], plan.key["temperature"]))
    expected = [temperature[code] for code in plan.assignments["code"]]
    assert design.temperature.tolist() == expected and design.participant.tolist() == [i // 3 for i in range(18)]
    assert design_temperatures(design) == ([0.5, 1.0, 1.5], 2)
    components = [Components(name, 3.0, 0.6, 0.3, 0.05, 0.8) for name in RATING_ITEMS[:2]]
    table = power_grid(components, [0.5, 1.0, 1.5], (4, 8), (3,), (2,), replicates=12, seed=1, planned=design)
    planned = table.filter(pl.col("design") == "planned")
    assert planned.height == 2 and planned.select(
        "participants", "stories_per_participant", "stories", "ratings", "stories_per_temperature"
    ).unique().rows() == [(6, 3, 6, 18, 2)]
    alone = power_grid(components, [0.5, 1.0, 1.5], (4, 8), (3,), (2,), replicates=12, seed=1)
    assert table.filter(pl.col("design") == "balanced").equals(alone), "the grid's cells are seeded on their own"
    sentence = power_sentences(table, 0.8, "pilot.csv's")[0]
    assert sentence.startswith("With pilot.csv's variance components, detecting novelty's temperature effect")
    assert "; on the planned survey (6 raters rating 3 stories each, 18 ratings of 6 stories) power is " in sentence
    save(power_figure(table), tmp_path / "power.png", tmp_path / "power.svg")
    assert "the planned survey" in (tmp_path / "power.svg").read_text()


def test_the_report_section_plans_the_survey_with_its_power_and_commands(tmp_path):
    """human_study_section in the report as build_report passes it: the sentences, the planned survey's power per
    criterion, the figure embedded, the design and the three commands."""
    from conftest import SCHEMA
    from tempcreativity.config import validate_config
    from tempcreativity.figures import save
    from tempcreativity.power import Components, design_temperatures, power_figure, power_grid, power_sentences
    from tempcreativity.report import human_study_section, render_report
    from tempcreativity.scoring import score_stories
    from tempcreativity.statistics import summarise, trends

    frame = generations().with_columns(
        seed=pl.when(pl.col("is_exemplar")).then(None).otherwise(pl.col("seed")),
        sampling_seed=pl.lit(1),
        repetition_penalty=pl.lit(1.0),
        truncation=pl.lit("scaled"),
        token_ids=pl.lit([1, 2, 3]),
        logprobs=pl.lit([-1.0, -0.5, -2.0]),
        top_logprobs=pl.lit([-0.5, -0.5, -1.0]),
        num_tokens=pl.lit(3),
        finish_reason=pl.lit("length"),
    )
    plan, lines, _ = build_survey(frame, 6, 3, 2, seed=1)
    temperatures, per_temperature = design_temperatures(rating_design(plan))
    components = [Components(name, 3.0, 0.6, 0.3, 0.05, 0.8) for name in RATING_ITEMS]
    table = power_grid(
        components, temperatures, (4, 8), (3,), (per_temperature,), replicates=5, seed=1, planned=rating_design(plan)
    )
    save(power_figure(table), tmp_path / "power.png", tmp_path / "power.svg")
    config = validate_config(
        {
            "experiment": "x",
            "model": {"path": "embedded"},
            "temperatures": [0.5, 1.0, 1.5],
            "seeds": 4,
            "prompts": [{"id": "story", "text": "x"}, {"id": "poem", "text": "y"}],
            "survey": {
                "enabled": True,
                "participants": 6,
                "stories_per_participant": 3,
                "stories_per_temperature": 2,
                "title": "Rate 'these' stories",
                "power": {"participants": [4, 8], "stories_per_participant": [3]},
            },
        },
        SCHEMA,
    )
    paths = {
        "source": "pilot.csv's",
        "pilot": "my pilot.csv",
        "generations": "results/x/generations.parquet",
        "folder": "results/x/survey/",
        "key": "results/x/survey/key.csv",
    }
    section = human_study_section(
        table,
        power_sentences(table, 0.8, "pilot.csv's"),
        lines,
        tmp_path / "power.png",
        config["survey"],
        paths,
        temperatures,
    )
    assert [row["criterion"] for row in section["rows"]] == list(RATING_ITEMS) and not section["observed"]
    assert section["commands"] == [
        "tempcreativity power --ratings 'my pilot.csv' --temperatures 0.5,1,1.5 --participants 4,8 "
        "--stories-per-participant 3 --stories-per-temperature 2 --replicates 200 --seed 0 --alpha 0.05 --target 0.8 "
        "--out power/",
        "tempcreativity survey results/x/generations.parquet --participants 6 --stories-per-participant 3 "
        "--stories-per-temperature 2 --seed 0 --title 'Rate '\"'\"'these'\"'\"' stories' --out survey/",
        "tempcreativity survey-import answers/ --key results/x/survey/key.csv --out ratings.csv",
    ]
    vectors = np.random.default_rng(0).normal(size=(frame.height, 4))
    scores = score_stories(frame, {"minilm": vectors})
    png = tmp_path / "power.png"
    html = render_report(
        config=config,
        manifest={"model": "M", "sha256": "abc", "folder": "/m", "config_path": "embedded"},
        generations=frame,
        scores=scores,
        summary=summarise(scores, frame["text"], vectors, 100),
        trend_table=trends(scores, 100),
        figures={name: png for name in ("boxplots", "pca", "diversity", "trends")},
        files={},
        provenance={"git": {"commit": "abc", "dirty": False}, "packages": {}},
        human_study=section,
    )
    part = html.split("<h2>Planning a human evaluation</h2>", 1)[1].split("<h2>", 1)[0]
    assert "With pilot.csv&#39;s variance components, detecting novelty&#39;s temperature effect" in part
    assert part.count("on the planned survey (6 raters rating 3 stories each") == 4
    assert "6 participants, each rating 3 of\n6 stories" in part and "of the story pairs share no rater" in part
    assert 'src="data:image/png;base64,' in part and "Story pairs no participant rated both of" in part
    assert "tempcreativity survey-import answers/ --key results/x/survey/key.csv" in part
    assert "tempcreativity power --ratings &#39;my pilot.csv&#39;" in part
    without = render_report(
        config=config,
        manifest={"model": "M", "sha256": "abc", "folder": "/m", "config_path": "embedded"},
        generations=frame,
        scores=scores,
        summary=summarise(scores, frame["text"], vectors, 100),
        trend_table=trends(scores, 100),
        figures={name: png for name in ("boxplots", "pca", "diversity", "trends")},
        files={},
        provenance={"git": {"commit": "abc", "dirty": False}, "packages": {}},
    )
    assert "Planning a human evaluation" not in without


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "--participants and --stories-per-participant: missing and missing; allowed: both given"),
        (
            ["--participants", "6", "--stories-per-participant", "x"],
            "--stories-per-participant: 'x' is not a whole number; allowed: whole number >= 1",
        ),
        (
            ["--participants", "6", "--stories-per-participant", "3", "--stories-per-temperature", "9"],
            "stories-per-temperature: 9, but temperature 0.5 has 8 stories; allowed: at most 8",
        ),
        (["--participants", "2", "--stories-per-participant", "30"], "stories-per-participant: 30; allowed: 1 to"),
        (["--target-power", "0.8", "--participants", "6"], "--target-power: given with --participants"),
        (["--target-power", "1.5"], "--target-power: '1.5' has 1.5; allowed: number from 0.01 to 0.999"),
    ],
)
def test_survey_command_errors_name_the_argument(tmp_path, capsys, extra, message):
    parquet = tmp_path / "generations.parquet"
    generations().write_parquet(parquet)
    assert cli.main(["survey", str(parquet), "--out", str(tmp_path / "out"), *extra]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("tempcreativity survey: ") and message in error, error
    assert not (tmp_path / "out").exists()


def test_target_power_picks_the_smallest_design_of_a_power_table(tmp_path, capsys):
    parquet = tmp_path / "generations.parquet"
    generations(temperatures=(0.5, 1.0, 1.5, 2.0), seeds=6).write_parquet(parquet)
    rows = [
        {
            "criterion": criterion,
            "design": "balanced",
            "participants": p,
            "stories_per_participant": k,
            "stories_per_temperature": 3,
            "ratings": p * k,
            "power": power,
        }
        for criterion, scale in (("novelty", 1.0), ("coherence", 0.6))
        for p, k in ((8, 4), (12, 4), (8, 8), (16, 8))
        for power in [min(0.99, scale * p * k / 80)]
    ]
    table = tmp_path / "power.csv"
    pl.DataFrame(rows).write_csv(table)
    base = ["survey", str(parquet), "--out", str(tmp_path / "out"), "--power", str(table)]
    assert cli.main([*base, "--target-power", "0.8", "--criterion", "novelty"]) == 0
    assert "8 participants x 8 stories, 3 per temperature" in capsys.readouterr().out  # 64 ratings: .8
    assert pl.read_csv(tmp_path / "out" / "assignments.csv").height == 64
    assert cli.main([*base, "--target-power", "0.8"]) == 0  # every criterion: coherence needs 16 x 8
    assert "16 participants x 8 stories" in capsys.readouterr().out
    assert cli.main([*base, "--target-power", "0.995"]) == 2
    assert "reached by no design in the power grid" in capsys.readouterr().err


# --- answers back ----------------------------------------------------------------------------------------------


def _answers(plan, participant, value=2.5):
    rows = plan.assignments.filter(pl.col("participant_id") == participant)
    return pl.DataFrame(
        {
            "survey_id": plan.survey_id,
            "participant_id": participant,
            "code": rows["code"],
            "position": rows["position"],
            **dict.fromkeys(RATING_ITEMS, value),
            "genai_familiarity": 3,
            "genai_comfort": 4,
        }
    ).select(ANSWER_COLUMNS)


def test_import_answers_gives_the_studys_format_and_refuses_foreign_answers():
    stories, _ = pick_stories(generations(), 2, seed=1)
    plan = plan_survey(stories, 4, 3, seed=1)
    ratings = import_answers(
        [(f"{p}.csv", _answers(plan, p, 1 + index)) for index, p in enumerate(["P1", "P2"])], plan.key
    )
    assert ratings.columns == list(RATINGS_COLUMNS) and ratings.height == 6
    first = plan.assignments.filter(pl.col("participant_id") == "P1").sort("position")
    expected = first.join(plan.key, on="code").sort("position")
    assert ratings.filter(pl.col("participant_id") == "P1")["story_id"].to_list() == expected["story_id"].to_list()
    assert ratings.filter(pl.col("participant_id") == "P2")["novelty"].to_list() == [2.0, 2.0, 2.0]
    other = plan_survey(stories, 4, 3, seed=2)
    with pytest.raises(SurveyError, match=r"^answers: x\.csv is from survey \w+, the key from survey"):
        import_answers([("x.csv", _answers(other, "P1"))], plan.key)
    with pytest.raises(SurveyError, match="not in the key"):
        import_answers([("x.csv", _answers(plan, "P1").with_columns(code=pl.lit("ZZZZZZ")))], plan.key)
    with pytest.raises(SurveyError, match="lacks column"):
        import_answers([("x.csv", _answers(plan, "P1").drop("coherence"))], plan.key)
    with pytest.raises(SurveyError, match="^answers: column novelty has values outside"):
        import_answers([("x.csv", _answers(plan, "P1", 7.0))], plan.key)
    with pytest.raises(SurveyError, match="rated more than once"):
        import_answers([("a.csv", _answers(plan, "P1")), ("b.csv", _answers(plan, "P1"))], plan.key)


def test_survey_import_command_errors_are_one_line(tmp_path, capsys):
    assert (
        cli.main(
            [
                "survey-import",
                str(tmp_path / "none"),
                "--key",
                str(tmp_path / "key.csv"),
                "--out",
                str(tmp_path / "r.csv"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    expected = f"answers: {tmp_path / 'none'} does not exist; allowed: answer CSV files or folders holding them"
    assert error == f"tempcreativity survey-import: {expected}\n"


def test_forms_round_trip_through_a_real_browser_into_the_ratings_command(tmp_path, chromium, capsys):
    from survey_browser import fill_forms

    parquet = tmp_path / "generations.parquet"
    generations().write_parquet(parquet)
    out = tmp_path / "survey"
    assert (
        cli.main(
            [
                "survey",
                str(parquet),
                "--participants",
                "2",
                "--stories-per-participant",
                "3",
                "--stories-per-temperature",
                "1",
                "--out",
                str(out),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    answers = tmp_path / "answers"
    results = fill_forms(
        [(out / "forms" / "P1.html", answers / "P1"), (out / "forms" / "P2.html", answers / "P2")],
        seed=1,
        submit_first=True,
    )
    filled = dict(zip(["P1", "P2"], results))
    assert filled["P1"]["problems_before"].startswith("14 answer(s) missing"), "12 sliders and 2 questions unset"
    for participant, result in filled.items():
        assert result["problems_after"] == ""
        assert result["saved"] is not None, f"{participant}: no CSV was downloaded"
        assert result["saved"].read_text() == result["text_on_page"]
        assert len(result["shown"]) == 12 and "not rated" not in result["shown"].values()
    assert (
        cli.main(
            [
                "survey-import",
                str(answers / "P1"),
                str(filled["P2"]["saved"]),
                "--key",
                str(out / "key.csv"),
                "--out",
                str(tmp_path / "ratings.csv"),
            ]
        )
        == 0
    )
    ratings = load_ratings(tmp_path / "ratings.csv")
    assert ratings.height == 6 and ratings["story_id"].n_unique() == 3
    key = pl.read_csv(out / "key.csv", schema_overrides={"story_id": pl.String})
    codes = dict(zip(key["story_id"], key["code"]))
    for row in ratings.iter_rows(named=True):
        shown = filled[row["participant_id"]]["shown"]
        for criterion in ("novelty", "typicality", "cohesion", "coherence"):
            assert f"{row[criterion]:.3f}" == shown[f"{codes[row['story_id']]}-{criterion}"]
        background = filled[row["participant_id"]]["background"]
        assert (row["genai_familiarity"], row["genai_comfort"]) == (
            int(background["genai_familiarity"]),
            int(background["genai_comfort"]),
        )
    values = np.array([float(v) for result in results for v in result["shown"].values()])
    assert values.min() < 2 and values.max() > 4 and np.unique(values).size > 12, "clicks land all over the scale"
    capsys.readouterr()
    assert cli.main(["ratings", str(tmp_path / "ratings.csv"), "--out", str(tmp_path / "tables")]) == 0
    lme = pl.read_csv(tmp_path / "tables" / "ratings_lme.csv")
    assert set(lme["random_effects"]) == {"participant", "crossed"}, "each story rated by both participants"
    assert (lme["n_obs"] == 6).all() and (lme["n_groups"] == 2).all()
