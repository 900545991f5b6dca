"""A human evaluation of a run's stories, and its answers back in the study's ratings format.

1. ``pick_stories``: stories from a run's generations, the same number from every stratum (temperature, and model and
   sampler where the run has several), seeded; within a stratum spread over the prompts and distinct texts first.
   Each story carries the exemplar of its prompt and model (not rated; shown beside it for novelty and typicality,
   as in the study).
2. ``plan_survey``: who rates which story (design.balanced_design: every participant sees every temperature where
   K >= their number, every story rated equally often, a connected rater-story graph with overlapping story
   pairs, counterbalanced positions), and blinded story codes (random, the key kept for the researcher).
3. ``render_forms``: one self-contained HTML form per participant (no network, no external script): instructions
   with the study's definitions, continuous 1-5 sliders, the exemplar beside the story; on submit the browser saves
   the answers as a CSV (a Blob download), shown as text too.
4. ``import_answers``: those CSVs and the key in, the study's ratings format out (what ``tempcreativity ratings``
   reads)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from tempcreativity.axes import AXIS_LABELS, SAMPLER_AXES
from tempcreativity.catalogue import CRITERIA
from tempcreativity.cells import swept_axes, value_text
from tempcreativity.design import balanced_design, is_connected, ratings_per_story, unshared_pairs
from tempcreativity.ratings import RATING_ITEMS, RatingsError, validate_ratings

BACKGROUND = {
    "genai_familiarity": "How familiar are you with generative AI (for example ChatGPT)? 1 = not at all, 5 = very",
    "genai_comfort": "How comfortable are you with generative AI being used to write stories? 1 = not at all, 5 = very",
}
ANSWER_COLUMNS = ("survey_id", "participant_id", "code", "position", *RATING_ITEMS, *BACKGROUND)
RATINGS_COLUMNS = ("story_id", "temperature", "evaluation_index", "participant_id", *RATING_ITEMS, *BACKGROUND)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are read and typed by people
STUDY_UNSHARED = (303, 465)  # the study's own design: story pairs no participant rated both of


class SurveyError(ValueError):
    """A survey that cannot be built or answers that cannot be imported; the message names the argument or file,
    what was found and what is allowed."""


def strata_keys(generations: pl.DataFrame) -> list[str]:
    """The columns that make a stratum: the model where the run has several, the swept sampler settings, then
    temperature (last: the design's cycle runs through temperatures first).

    Args:
        generations: a run's generations (exemplars included or not).

    Returns:
        The column names.
    """
    stories = generations.filter(~pl.col("is_exemplar"))
    models = ["model_id"] if "model_id" in stories.columns and stories["model_id"].n_unique() > 1 else []
    return models + swept_axes(stories) + ["temperature"]


def stratum_label(row: dict, keys: list[str]) -> str:
    """A stratum as words: 'model-a, top-p 0.9, temperature 1'."""
    return ", ".join(
        row[key] if key == "model_id" else f"{AXIS_LABELS.get(key, key)} {value_text(row[key])}" for key in keys
    )


def pick_stories(generations: pl.DataFrame, per_stratum: int, seed: int = 0) -> tuple[pl.DataFrame, list[str]]:
    """``per_stratum`` stories from every stratum, each with its exemplar.

    Within a stratum the stories are taken in a seeded random order that goes round the prompts (so prompts are
    spread evenly) and takes distinct texts before repeats of a text already taken (near-greedy temperatures can
    give the same story for every seed).

    Args:
        generations: a run's generations.parquet (story_id, temperature, is_exemplar, text, prompt_id, model_id, the
            sampler columns).
        per_stratum: stories per stratum.
        seed: the random seed.

    Returns:
        The picked stories (story_id, stratum, stratum_index, strata columns, prompt_id, model_id, text,
        exemplar_story_id, exemplar_text) in stratum order, and notes (repeated texts) for the researcher.
    """
    missing = [
        name
        for name in ("story_id", "temperature", "is_exemplar", "text", "prompt_id")
        if name not in generations.columns
    ]
    if missing:
        raise SurveyError(f"generations: missing column(s) {', '.join(missing)}; expected a run's generations.parquet")
    frame = generations if "model_id" in generations.columns else generations.with_columns(model_id=pl.lit(""))
    exemplars = frame.filter(pl.col("is_exemplar")).unique(["model_id", "prompt_id"], keep="first", maintain_order=True)
    stories = frame.filter(~pl.col("is_exemplar"))
    if stories.height == 0:
        raise SurveyError("generations: no stories (every row is an exemplar); expected a run's generations.parquet")
    without = stories.join(exemplars, on=["model_id", "prompt_id"], how="anti")
    if without.height:
        first = without.row(0, named=True)
        raise SurveyError(
            f"generations: prompt {first['prompt_id']!r} of model {first['model_id']!r} has no exemplar (is_exemplar "
            "true); every prompt and model needs one to show beside its stories"
        )
    keys = strata_keys(frame)
    stories = stories.join(
        exemplars.select(
            "model_id",
            "prompt_id",
            pl.col("story_id").alias("exemplar_story_id"),
            pl.col("text").alias("exemplar_text"),
        ),
        on=["model_id", "prompt_id"],
        how="left",
    )
    rng = np.random.default_rng(seed)
    picked, notes = [], []
    groups = sorted(stories.group_by(keys), key=lambda item: tuple(item[0]))
    for index, (values, group) in enumerate(groups):
        row = dict(zip(keys, values))
        label = stratum_label(row, keys)
        if group.height < per_stratum:
            raise SurveyError(
                f"stories-per-temperature: {per_stratum}, but {label} has {group.height} stories; "
                f"allowed: at most {group.height} (or generate more seeds)"
            )
        group = group.sort("story_id").with_columns(_draw=pl.Series(rng.random(group.height)))
        group = group.sort("_draw").with_columns(
            _round=pl.int_range(pl.len()).over("prompt_id"),
            _repeat=pl.col("text").is_duplicated() & (pl.int_range(pl.len()).over("text") > 0),
        )
        chosen = group.sort("_repeat", "_round", "_draw").head(per_stratum)
        repeats = int(chosen["_repeat"].sum())
        if repeats:
            notes.append(
                f"{label}: {repeats} of the {per_stratum} picked stories repeat the text of another "
                f"(only {group['text'].n_unique()} distinct texts among {group.height} stories)"
            )
        picked.append(
            chosen.drop("_draw", "_round", "_repeat").with_columns(stratum=pl.lit(label), stratum_index=pl.lit(index))
        )
    columns = [
        "story_id",
        "stratum",
        "stratum_index",
        *[k for k in keys if k != "temperature"],
        "temperature",
        "prompt_id",
        "model_id",
        "text",
        "exemplar_story_id",
        "exemplar_text",
    ]
    return pl.concat(picked).select(list(dict.fromkeys(columns))), notes


def blind_codes(count: int, rng: np.random.Generator, length: int = 6) -> list[str]:
    """``count`` distinct random codes of ``length`` characters from CODE_ALPHABET.

    Args:
        count: how many.
        rng: the random generator.
        length: characters per code.

    Returns:
        The codes.
    """
    codes: dict[str, None] = {}
    while len(codes) < count:
        codes["".join(CODE_ALPHABET[i] for i in rng.integers(len(CODE_ALPHABET), size=length))] = None
    return list(codes)


@dataclass(frozen=True)
class SurveyPlan:
    """A survey: its id, the key (code -> story), the assignments (participant, position, code) and a summary."""

    survey_id: str
    key: pl.DataFrame
    assignments: pl.DataFrame
    stories: pl.DataFrame
    summary: dict


def plan_survey(stories: pl.DataFrame, participants: int, per_participant: int, seed: int = 0) -> SurveyPlan:
    """Assign picked stories to participants (design.balanced_design) under blinded codes.

    Args:
        stories: pick_stories' frame.
        participants: the number of participants.
        per_participant: stories each participant rates.
        seed: the random seed.

    Returns:
        The SurveyPlan; its summary holds the design's numbers (ratings per story, unshared story pairs, whether
        every participant sees every temperature, connectivity).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    assignment = balanced_design(
        stories["stratum_index"].to_numpy(), participants, per_participant, seed=int(rng.integers(2**32))
    )
    codes = blind_codes(stories.height, rng)
    survey_id = "".join(CODE_ALPHABET[i] for i in rng.integers(len(CODE_ALPHABET), size=8))
    stories = stories.with_columns(code=pl.Series(codes))
    width = len(str(participants))
    names = [f"P{index + 1:0{width}d}" for index in range(participants)]
    assignments = pl.DataFrame(
        {
            "participant_id": np.repeat(names, per_participant),
            "position": np.tile(np.arange(1, per_participant + 1), participants),
            "code": [codes[index] for index in assignment.ravel()],
        }
    )
    key_columns = ["code", "story_id", "temperature", "stratum", "prompt_id", "model_id", "exemplar_story_id"]
    sampler_columns = [column for column in stories.columns if column in SAMPLER_AXES]
    key = stories.select(pl.lit(survey_id).alias("survey_id"), *key_columns, *sampler_columns)
    per_story = ratings_per_story(assignment, stories.height)
    unshared, pairs = unshared_pairs(assignment, stories.height)
    temperatures = stories["temperature"].to_numpy()
    n_temperatures = np.unique(temperatures).size
    seen = [np.unique(temperatures[row]).size for row in assignment]
    summary = {
        "survey_id": survey_id,
        "participants": participants,
        "stories_per_participant": per_participant,
        "stories": stories.height,
        "strata": int(stories["stratum_index"].n_unique()),
        "stories_per_stratum": int(stories.group_by("stratum_index").len()["len"].max()),
        "temperatures": n_temperatures,
        "ratings": participants * per_participant,
        "ratings_per_story_min": int(per_story.min()),
        "ratings_per_story_max": int(per_story.max()),
        "temperatures_per_participant_min": int(min(seen)),
        "unshared_pairs": unshared,
        "pairs": pairs,
        "connected": bool(is_connected(assignment, stories.height)),
        "seed": seed,
    }
    return SurveyPlan(survey_id, key, assignments, stories, summary)


def summary_lines(summary: dict, notes: list[str] = ()) -> list[str]:
    """The plan's summary as sentences, with the study's own design for comparison.

    Args:
        summary: SurveyPlan.summary.
        notes: pick_stories' notes.

    Returns:
        The lines.
    """
    low, high = summary["ratings_per_story_min"], summary["ratings_per_story_max"]
    balance = (
        f"every story is rated by {low} participants"
        if low == high
        else f"stories are rated by {low} or {high} participants (the {summary['ratings']} ratings are not a "
        f"multiple of the {summary['stories']} stories)"
    )
    every = summary["temperatures_per_participant_min"] == summary["temperatures"]
    study_share = STUDY_UNSHARED[0] / STUDY_UNSHARED[1]
    return [
        f"Survey {summary['survey_id']}: {summary['participants']} participants x {summary['stories_per_participant']} "
        f"stories = {summary['ratings']} ratings of {summary['stories']} stories ({summary['stories_per_stratum']} "
        f"from each of {summary['strata']} strata); {balance}.",
        (
            "Every participant sees every temperature."
            if every
            else f"Each participant sees {summary['temperatures_per_participant_min']} or more of the "
            f"{summary['temperatures']} temperatures (fewer stories each than temperatures)."
        ),
        f"Story pairs no participant rated both of: {summary['unshared_pairs']} of {summary['pairs']} "
        f"({summary['unshared_pairs'] / summary['pairs']:.0%}; the study's own design: {STUDY_UNSHARED[0]} of "
        f"{STUDY_UNSHARED[1]}, {study_share:.0%}); the rater-story graph is "
        f"{'connected' if summary['connected'] else 'NOT connected'}.",
        *notes,
    ]


def render_forms(plan: SurveyPlan, title: str = "Rate short stories") -> dict[str, str]:
    """One self-contained HTML form per participant (templates/survey_form.html.j2).

    Args:
        plan: the SurveyPlan.
        title: the page's title.

    Returns:
        participant_id -> HTML text.
    """
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("tempcreativity", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = environment.get_template("survey_form.html.j2")
    by_code = {row["code"]: row for row in plan.stories.iter_rows(named=True)}
    forms = {}
    for (participant,), rows in plan.assignments.group_by("participant_id", maintain_order=True):
        items = [
            {
                "code": code,
                "position": position,
                "text": by_code[code]["text"],
                "exemplar": by_code[code]["exemplar_text"],
            }
            for code, position in rows.sort("position").select("code", "position").iter_rows()
        ]
        forms[participant] = template.render(
            title=title,
            survey_id=plan.survey_id,
            participant_id=participant,
            items=items,
            criteria=CRITERIA,
            background=BACKGROUND,
            columns=list(ANSWER_COLUMNS),
        )
    return forms


def build_survey(
    generations: pl.DataFrame,
    participants: int,
    per_participant: int,
    per_stratum: int = 5,
    seed: int = 0,
    title: str = "Rate short stories",
) -> tuple[SurveyPlan, list[str], dict[str, str]]:
    """What `tempcreativity survey` and the pipeline's plan_human_study build from a run's generations: the stories
    (pick_stories), who rates which (plan_survey), the summary (summary_lines) and the forms (render_forms).

    Args:
        generations: a run's generations.parquet.
        participants: the number of participants.
        per_participant: stories each participant rates.
        per_stratum: stories picked per stratum (temperature, and model and sampler where the run has several).
        seed: the random seed (same seed, same survey).
        title: the forms' title.

    Returns:
        The SurveyPlan, the summary's lines, and the files' texts by name relative to the survey's folder:
        key.csv, assignments.csv, design.txt and forms/<participant>.html.
    """
    stories, notes = pick_stories(generations, per_stratum, seed)
    plan = plan_survey(stories, participants, per_participant, seed)
    lines = summary_lines(plan.summary, notes)
    files = {
        "key.csv": plan.key.write_csv(),
        "assignments.csv": plan.assignments.write_csv(),
        "design.txt": "\n".join(lines) + "\n",
    }
    files |= {f"forms/{participant}.html": html for participant, html in render_forms(plan, title).items()}
    return plan, lines, files


def rating_design(plan: SurveyPlan):
    """A planned survey as power.py's RatingDesign (who rates which story, each story's temperature), so that its
    power can be simulated.

    Args:
        plan: the SurveyPlan.

    Returns:
        The power.RatingDesign, stories in the order of plan.stories.
    """
    from tempcreativity.power import design_from_assignment

    index = {code: position for position, code in enumerate(plan.stories["code"].to_list())}
    assignment = np.array([index[code] for code in plan.assignments["code"].to_list()]).reshape(
        plan.summary["participants"], plan.summary["stories_per_participant"]
    )
    return design_from_assignment(assignment, plan.stories["temperature"].to_numpy())


def import_answers(answers: list[tuple[str, pl.DataFrame]], key: pl.DataFrame) -> pl.DataFrame:
    """Participants' answer CSVs and the survey's key, as ratings in the study's format.

    Args:
        answers: (name, frame) per answers file, as the forms wrote them (ANSWER_COLUMNS).
        key: the survey's key.csv (survey_id, code, story_id, temperature, ...).

    Returns:
        The ratings (RATINGS_COLUMNS), checked with ratings.validate_ratings.
    """
    needed = ("survey_id", "code", "story_id", "temperature")
    missing = [name for name in needed if name not in key.columns]
    if missing:
        raise SurveyError(
            f"--key: missing column(s) {', '.join(missing)}; expected the key.csv that `tempcreativity survey` wrote"
        )
    if not answers:
        raise SurveyError("answers: no CSV files found; expected the files the participants' forms saved")
    key = key.with_columns(pl.col("survey_id", "code", "story_id").cast(pl.String))
    survey_ids = set(key["survey_id"])
    frames = []
    for name, frame in answers:
        absent = [column for column in ANSWER_COLUMNS if column not in frame.columns]
        if absent:
            raise SurveyError(
                f"answers: {name} lacks column(s) {', '.join(absent)}; expected a file saved by a survey form"
            )
        frame = frame.select(ANSWER_COLUMNS).with_columns(pl.col("survey_id", "participant_id", "code").cast(pl.String))
        other = set(frame["survey_id"]) - survey_ids
        if other:
            raise SurveyError(
                f"answers: {name} is from survey {', '.join(sorted(other))}, the key from survey "
                f"{', '.join(sorted(survey_ids))}; allowed: answers of the key's survey"
            )
        unknown = sorted(set(frame["code"]) - set(key["code"]))
        if unknown:
            raise SurveyError(
                f"answers: {name} has story code(s) {', '.join(unknown[:5])} not in the key; allowed: the key's codes"
            )
        frames.append(frame)
    joined = pl.concat(frames, how="vertical_relaxed")
    for column in BACKGROUND:
        values = joined.with_row_index("row").filter(
            ~pl.col(column).cast(pl.Float64, strict=False).is_in([1.0, 2.0, 3.0, 4.0, 5.0])
        )
        if values.height:
            raise SurveyError(
                f"answers: column {column} holds {values[column][0]!r} (participant "
                f"{values['participant_id'][0]}); allowed: whole numbers 1-5"
            )
    joined = joined.join(key.select("code", "story_id", "temperature"), on="code", how="left")
    ratings = joined.select(
        "story_id",
        pl.col("temperature").cast(pl.Float64),
        pl.col("position").alias("evaluation_index"),
        "participant_id",
        *RATING_ITEMS,
        *BACKGROUND,
    ).sort("participant_id", "evaluation_index")
    try:
        return validate_ratings(ratings, min_participants=1).select(RATINGS_COLUMNS)
    except RatingsError as error:
        raise SurveyError(f"answers: {str(error).removeprefix('ratings: ')}") from None
