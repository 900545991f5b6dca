"""The experiment's report: one self-contained HTML file (figures embedded) that states the question, the setup,
what was found (sentences written from the numbers), the figures and tables, example stories, and where every
underlying file is."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import polars as pl

from tempcreativity.axes import AXIS_LABELS, DEFAULTS, QUIET_DEFAULTS, SAMPLER_AXES
from tempcreativity.catalogue import CAPTION_FILES, caption
from tempcreativity.cells import cell_keys, levels_label, several_models, swept_axes, value_text
from tempcreativity.io import read_parquet_without
from tempcreativity.model import judge_is_first_model, judge_is_generator, judge_model_path, read_manifest
from tempcreativity.provenance import git_state, package_versions
from tempcreativity.scoring import SCORE_LABELS, share_below_raw_min_p

SUMMARY_COLUMNS = ("perplexity", "cosine_similarity", "edit_distance", "distinct_2", "num_tokens")


def _number(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) >= 1000 else f"{value:.{digits}f}".rstrip("0").rstrip(".") or "0"


def _estimate(row: dict, name: str) -> str:
    """``name`` of ``row`` with its interval, from the columns ``name``, ``name_ci_low`` and ``name_ci_high``."""
    return f"{_number(row[name])} [{_number(row[f'{name}_ci_low'])}, {_number(row[f'{name}_ci_high'])}]"


def _p_value(p: float) -> str:
    if math.isnan(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def trend_group(row: dict[str, Any]) -> str:
    """Where a trend was fitted, in words: its model and the other settings' levels ('' for the study's grid)."""
    return ", ".join(
        part for part in (row.get("model_id") if row.get("several_models") else "", row.get("within", "")) if part
    )


def trend_sentence(row: dict[str, Any]) -> str:
    """A sentence that states a score's association with an axis (temperature by default): direction, size, CI,
    p and n, prefixed by where it was fitted when the grid has several models or swept settings."""
    label, rho = row["label"], row["rho"]
    axis = AXIS_LABELS[row.get("axis", "temperature")]
    group = trend_group(row)
    where = f"[{group}] " if group else ""
    if math.isnan(rho):
        return (
            f"{where}{label}: no correlation with {axis} could be estimated (constant values or too few stories, "
            f"n = {row['n']})."
        )
    ci = f"95% CI [{row['rho_ci_low']:.2f}, {row['rho_ci_high']:.2f}]"
    strength = "strongly" if abs(rho) >= 0.5 else "moderately" if abs(rho) >= 0.3 else "weakly"
    if row["rho_ci_low"] > 0:
        verdict = f"{label} {strength} increases with {axis}"
    elif row["rho_ci_high"] < 0:
        verdict = f"{label} {strength} decreases with {axis}"
    else:
        verdict = f"{label} shows no clear monotonic trend with {axis} (the CI includes 0)"
    return f"{where}{verdict}: Spearman ρ = {rho:.2f}, {ci}, {_p_value(row['p_value'])}, n = {row['n']}."


def rating_sentence(row: dict[str, Any]) -> str:
    """A sentence for one mixed model: direction, beta with its 95% CI, p, and the marginal R^2."""
    from tempcreativity.ratings import beta_interval

    predictor = row["predictor"].replace("_", " ")
    if math.isnan(row["beta"]):
        return f"{row['rating'].capitalize()} ~ {predictor}: not estimable (the ratings or the predictor do not vary)."
    low, high = beta_interval(row)
    direction = "rise" if low > 0 else "fall" if high < 0 else "show no clear change"
    return (
        f"{row['rating'].capitalize()} ratings {direction} with {predictor}: β = {row['beta']:.3f}, "
        f"95% CI [{low:.3f}, {high:.3f}], {_p_value(row['p'])}; marginal R² = {row['r2m_nakagawa']:.3f} "
        f"(Nakagawa), {row['r2m']:.3f} (as in the study)."
    )


MODEL_NAMES = {
    "participant": "rating ~ predictor + (1 | participant)",
    "crossed": "rating ~ predictor + (1 | participant) + (1 | story)",
    "none": "rating ~ predictor (ordinary least squares over stories)",
}


def model_comparison(lme: pl.DataFrame) -> list[str]:
    """Where both the participant-only and the crossed model were fitted: per rating, the temperature effect under
    each, and whether a conclusion at the 5% level changes."""
    temperature = lme.filter(pl.col("predictor") == "temperature")
    if set(temperature["random_effects"]) != {"participant", "crossed"}:
        return []
    sentences = []
    for rating in dict.fromkeys(temperature["rating"]):
        rows = {
            row["random_effects"]: row for row in temperature.filter(pl.col("rating") == rating).iter_rows(named=True)
        }
        alone, crossed = rows["participant"], rows["crossed"]
        if math.isnan(alone["p"]) or math.isnan(crossed["p"]):
            continue
        changed = (alone["p"] < 0.05) != (crossed["p"] < 0.05)
        sentences.append(
            f"{rating.capitalize()}: β = {alone['beta']:.3f} (SE {alone['se']:.3f}, {_p_value(alone['p'])}) with a "
            f"random intercept per participant; β = {crossed['beta']:.3f} (SE {crossed['se']:.3f}, "
            f"{_p_value(crossed['p'])}) with participant and story"
            + (
                "; the conclusion at the 5% level changes."
                if changed
                else "; the conclusion at the 5% level is the same."
            )
        )
    return sentences


def ratings_section(
    source: str, descriptives: pl.DataFrame, lme: pl.DataFrame, forest: Path, rater: str, judge: dict | None = None
) -> dict:
    """What the report shows for one source of ratings (people's, or the LLM judge's). ``judge``: the judge's
    config with ``is_generator`` (the judge is the model that wrote the stories)."""
    if source == "human":
        who = "These ratings were given by people (the ratings file named in the config)."
    else:
        how = (
            "the expected value of its answer distribution over 1-5 (greedy, one token, from its log-probabilities)"
            if judge["method"] == "expected"
            else f"the mean of {judge['samples']} sampled answers at temperature {judge['temperature']:g}"
        )
        who = (
            f"These ratings were produced by a language model ({rater}), not by people: one rating per story and "
            f"criterion, {how}. A judge is one rater, so Table 2 is fitted on stories without random effects, and "
            "agreement between raters does not apply. Read them as a model's opinion, not as a replacement for a "
            "survey."
        )
    models = list(dict.fromkeys(lme["random_effects"]))
    return {
        "source": source,
        "title": "Ratings by people" if source == "human" else "Ratings by an LLM judge",
        "who": who,
        "warning": (
            "The judge is the model that generated the stories: it rates its own writing, and its view of what is "
            "novel or typical is shaped by the same distribution the stories were drawn from."
            if source == "judge" and judge.get("is_generator")
            else ""
        ),
        "models": [MODEL_NAMES[model] for model in models],
        "comparison": model_comparison(lme),
        "descriptives": [
            {key: (_number(value) if isinstance(value, float) else value) for key, value in row.items()}
            for row in descriptives.iter_rows(named=True)
        ],
        "lme": [
            {
                **{key: (_number(value) if isinstance(value, float) else value) for key, value in row.items()},
                "sentence": rating_sentence(row),
            }
            for row in lme.iter_rows(named=True)
        ],
        "forest": _image(forest),
    }


def judge_validation_section(table: pl.DataFrame, figure: Path) -> dict:
    """The judge against the study's people on the study's 31 stories: the table, a verdict and the figure."""
    from tempcreativity.judge_validation import verdict

    rows = [
        {
            **{key: (_number(value, 2) if isinstance(value, float) else value) for key, value in row.items()},
            "p_text": _p_value(row["p_value"]),
        }
        for row in table.iter_rows(named=True)
    ]
    return {"rows": rows, "verdict": verdict(table), "figure": _image(figure)}


def design_text(config: dict[str, Any], trend_table: pl.DataFrame) -> str:
    """In words: how the stories were seeded and which trend model and resampling unit follow from it."""
    model = trend_table["model"][0] if trend_table.height else ""
    unit = trend_table["resampled"][0] if trend_table.height and "resampled" in trend_table.columns else "stories"
    if config["seeding"] == "shared":
        seeding = (
            "Seeding is <em>shared</em>: seed s draws the same random numbers at every temperature and for every "
            "prompt, so the stories of one seed are paired across cells and are not independent."
        )
    else:
        seeding = (
            "Seeding is <em>independent</em>: every story's vLLM seed is a hash of its prompt, its cell's "
            "sampling settings and its seed index, so every story is an independent draw, as in the study."
        )
    fitted = "ordinary least squares (one prompt, independent stories)" if model == "ols" else model
    text = (
        f"{seeding} Trend models: {fitted}; a random intercept per prompt where there are several prompts (prompts "
        "differ in level), and per seed under shared seeding (the paired unit). Perplexity's slope is fitted on "
        f"log perplexity. Bootstrap CIs of Spearman's ρ resample {unit}; with several prompts or shared seeds, ρ's "
        "p-value comes from a permutation test that shuffles temperatures within prompts (and seeds)."
    )
    axes = (
        [axis for axis in dict.fromkeys(trend_table["axis"]) if axis != "temperature"]
        if "axis" in trend_table.columns
        else []
    )
    if axes or several_models(trend_table):
        text += (
            " The grid sweeps more than temperature: each trend is fitted within one model"
            + (" and one level of every other swept setting (temperature included)" if axes else "")
            + ", so that no other setting confounds it"
            + (
                f"; besides temperature, scores trend with {', '.join(AXIS_LABELS[a] for a in axes)} (top-k's 'all' "
                "is left out of its trend; truncation is a level, not an axis)"
                if axes
                else ""
            )
            + ". A trend is one association within one group: the groups' p-values are not corrected for multiple "
            "comparisons."
        )
    return text


def study_section(table1: pl.DataFrame, table2: pl.DataFrame, story_scores: pl.DataFrame) -> dict:
    """The study's own tables (ours beside the paper's printed values) and its stories' scores per temperature."""

    def formatted(frame: pl.DataFrame, digits: int = 4) -> list[dict[str, Any]]:
        return [
            {
                key: (_number(value, digits) if isinstance(value, float) else "" if value is None else value)
                for key, value in row.items()
            }
            for row in frame.iter_rows(named=True)
        ]

    per_temperature = (
        story_scores.filter(~pl.col("is_exemplar"))
        .group_by("temperature")
        .agg(pl.len().alias("n"), pl.col("edit_distance", "cosine_minilm").mean())
        .sort("temperature")
    )
    return {"table1": formatted(table1), "table2": formatted(table2), "scores": formatted(per_temperature, 3)}


def sampler_text(stories: pl.DataFrame, config: dict[str, Any]) -> str:
    """The sampler settings in words: each fixed value, or the values a setting was swept over (an axis added
    later only where it is not just its default, axes.QUIET_DEFAULTS)."""
    parts = []
    for name in SAMPLER_AXES:
        if name == "truncation":
            continue
        fixed = config.get("decoding", {}).get(name, DEFAULTS[name])  # (a table written before the axis existed)
        values = sorted(set(stories[name])) if name in stories.columns else [fixed]
        if name in QUIET_DEFAULTS and values == [QUIET_DEFAULTS[name]]:
            continue
        label = AXIS_LABELS[name]
        parts.append(
            f"{label} {value_text(values[0])}"
            if len(values) == 1
            else f"{label} swept over {', '.join(value_text(value) for value in values)}"
        )
    return ", ".join(parts)


def frontier_section(table: pl.DataFrame, figure: Path) -> dict:
    """The frontier of each sampler for the report: its sentences, its figure and its table."""
    from tempcreativity.frontier import QUALITY, frontier_sentences

    label, _ = QUALITY[table["quality_measure"][0]]
    rows = [
        {
            "model_id": row.get("model_id", ""),
            "sampler": row["sampler"],
            "temperature": f"{row['temperature']:g}",
            "n": row["n"],
            "diversity": _estimate(row, "diversity"),
            "quality": _estimate(row, "quality"),
        }
        for row in table.iter_rows(named=True)
    ]
    return {
        "sentences": frontier_sentences(table),
        "figure": _image(figure),
        "rows": rows,
        "quality": label,
        "several_models": several_models(table),
    }


def planning_commands(
    survey: dict[str, Any], temperatures: list[float], per_temperature: int, paths: dict[str, Any]
) -> list[str]:
    """The commands that recompute the report's power grid, rebuild its survey and bring the answers back.

    Args:
        survey: the config's survey section.
        temperatures: the survey's temperatures.
        per_temperature: the grid's stories at each temperature.
        paths: generations (the run's generations.parquet), key (the survey's key.csv) and pilot (the ratings file
            the components came from, or None for the study's).

    Returns:
        The command lines (shell-quoted).
    """
    from shlex import quote

    grid = survey["power"]
    pilot = f" --ratings {quote(paths['pilot'])}" if paths.get("pilot") else ""
    return [
        f"tempcreativity power{pilot} --temperatures {','.join(f'{t:g}' for t in temperatures)} "
        f"--participants {','.join(map(str, grid['participants']))} "
        f"--stories-per-participant {','.join(map(str, grid['stories_per_participant']))} "
        f"--stories-per-temperature {per_temperature} --replicates {grid['replicates']} --seed {survey['seed']} "
        f"--alpha {grid['alpha']:g} --target {grid['target']:g} --out power/",
        f"tempcreativity survey {quote(paths['generations'])} --participants {survey['participants']} "
        f"--stories-per-participant {survey['stories_per_participant']} "
        f"--stories-per-temperature {survey['stories_per_temperature']} --seed {survey['seed']} "
        f"--title {quote(survey['title'])} --out survey/",
        f"tempcreativity survey-import answers/ --key {quote(paths['key'])} --out ratings.csv",
    ]


def human_study_section(
    table: pl.DataFrame,
    sentences: list[str],
    design_lines: list[str],
    figure: Path,
    survey: dict[str, Any],
    paths: dict[str, Any],
    temperatures: list[float],
) -> dict:
    """The report's section on planning a human evaluation: one sentence per criterion, the power of the planned
    survey (and of the ratings' own design) per criterion, the figure, the survey's design and the commands.

    Args:
        table: plan_human_study's power.csv (power.power_grid's table, with a ``planned`` design).
        sentences: its power.txt, one sentence per criterion.
        design_lines: its design.txt (survey.summary_lines).
        figure: its power.png.
        survey: the config's survey section.
        paths: source (whose components, as words), pilot, generations, folder and key (see planning_commands).
        temperatures: the run's (and so the survey's) temperatures.

    Returns:
        What the template shows.
    """
    planned = table.filter(pl.col("design") == "planned")
    observed = table.filter(pl.col("design") == "observed")
    grid = table.filter(pl.col("design") == "balanced")
    temperatures = sorted(float(t) for t in temperatures)
    per_temperature = int(grid["stories_per_temperature"][0]) if grid.height else survey["stories_per_temperature"]

    def power(rows: pl.DataFrame, criterion: str) -> str:
        found = rows.filter(pl.col("criterion") == criterion)
        if not found.height or found["power"][0] is None or math.isnan(found["power"][0]):
            return "n/a"
        row = found.row(0, named=True)
        return f"{_number(row['power'], 2)} [{_number(row['power_low'], 2)}, {_number(row['power_high'], 2)}]"

    rows = [
        {
            "criterion": criterion,
            "beta": _number(table.filter(pl.col("criterion") == criterion)["true_beta"][0]),
            "planned": power(planned, criterion),
            "observed": power(observed, criterion),
        }
        for criterion in dict.fromkeys(table["criterion"].to_list())
    ]
    design = planned.row(0, named=True) if planned.height else {}
    return {
        "source": paths["source"],
        "sentences": sentences,
        "rows": rows,
        "observed": observed.height > 0,
        "figure": _image(figure),
        "design_lines": design_lines,
        "participants": design.get("participants"),
        "per_participant": design.get("stories_per_participant"),
        "stories": design.get("stories"),
        "unshared": f"{design['unshared_pair_share']:.0%}" if design else "n/a",
        "temperatures": ", ".join(f"{t:g}" for t in temperatures),
        "per_temperature": per_temperature,
        "replicates": int(table["replicates"][0]),
        "alpha": f"{table['alpha'][0]:g}",
        "target": f"{survey['power']['target']:.0%}",
        "folder": paths["folder"],
        "commands": planning_commands(survey, temperatures, per_temperature, paths),
    }


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _cell_label(row: dict[str, Any], several: bool, axes: list[str]) -> str:
    """A cell's model (where there are several) and swept settings, in words ('' for the study's grid)."""
    return ", ".join(part for part in (row.get("model_id") if several else "", levels_label(row, axes)) if part)


def _summary_rows(summary: pl.DataFrame) -> list[dict[str, Any]]:
    several, axes = several_models(summary), swept_axes(summary)
    rows = []
    for row in summary.iter_rows(named=True):
        cells = {
            score: f"{_number(row[f'{score}_mean'])} [{_number(row[f'{score}_ci_low'])}, "
            f"{_number(row[f'{score}_ci_high'])}]"
            for score in SUMMARY_COLUMNS
        }
        scored = row.get("n_scored", row["n"])  # (a summary written before n_scored: every story scored)
        rows.append(
            {
                "prompt_id": row["prompt_id"],
                "cell": _cell_label(row, several, axes),
                "temperature": f"{row['temperature']:g}",
                "n": row["n"] if scored == row["n"] else f"{row['n']} ({scored} scored)",
                **cells,
                "diversity": _number(row["diversity"]),
                "share_duplicates": _number(row["share_duplicates"]),
            }
        )
    return rows


# A table of more rows (the trends, the cells, the frontier of a sweep: 1,230, 126 and 126 rows for a 126-cell grid)
# is folded under a line that names it, so that the report reads as a report at any size; every row is still there.
TABLE_ROWS_SHOWN = 60


def _examples(generations: pl.DataFrame, scores: pl.DataFrame, per_temperature: int) -> list[dict[str, Any]]:
    """The first stories of every cell (and every exemplar), with their scores."""
    keys = cell_keys(generations)
    several, axes = several_models(generations), swept_axes(generations)
    joined = generations.select("story_id", *keys, "seed", "is_exemplar", "text").join(
        scores.select("story_id", "perplexity", "cosine_similarity", "edit_distance"), on="story_id"
    )
    examples = []
    for _, cell in joined.group_by([*keys, "is_exemplar"], maintain_order=True):
        for row in cell.head(per_temperature).iter_rows(named=True):
            where = _cell_label(row, several, [] if row["is_exemplar"] else axes)
            title = (
                "exemplar (greedy, T = 0)" if row["is_exemplar"] else f"T = {row['temperature']:g}, seed {row['seed']}"
            )
            examples.append(
                {
                    "prompt_id": row["prompt_id"],
                    "title": f"{where}: {title}" if where else title,
                    "text": row["text"].strip(),
                    "perplexity": _number(row["perplexity"]),
                    "cosine": _number(row["cosine_similarity"]),
                    "edit": _number(row["edit_distance"]),
                }
            )
    return examples


def render_report(
    *,
    config: dict[str, Any],
    manifest: dict[str, Any],
    generations: pl.DataFrame,
    scores: pl.DataFrame,
    summary: pl.DataFrame,
    trend_table: pl.DataFrame,
    figures: dict[str, Path],
    files: dict[str, str],
    provenance: dict[str, Any],
    ratings: list[dict] = (),
    study: dict | None = None,
    judge_validation: dict | None = None,
    examples_per_temperature: int = 2,
    models: list[dict[str, Any]] | None = None,
    frontier: dict | None = None,
    human_study: dict | None = None,
) -> str:
    """The report as one HTML string. ``models``: each generating model's config entry (with its id) merged with its
    manifest (name, sha256); the one ``manifest`` by default. ``frontier``: ``frontier_section``'s. ``human_study``:
    ``human_study_section``'s (survey.enabled)."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("tempcreativity", "templates"),
        autoescape=True,  # prompts and stories are untrusted text: every value is HTML-escaped
        undefined=jinja2.StrictUndefined,
    )
    stories = generations.filter(~pl.col("is_exemplar"))
    several = several_models(trend_table)
    trend_rows = [
        {
            **row,
            "group": trend_group(row),
            "axis_text": AXIS_LABELS[row.get("axis", "temperature")],
            "sentence": trend_sentence(row),
            "rho_text": _number(row["rho"], 2),
            "ci_text": f"[{_number(row['rho_ci_low'], 2)}, {_number(row['rho_ci_high'], 2)}]",
            "p_text": _p_value(row["p_value"]),
            "slope_text": _number(row["slope"]),
            "response": row.get("response", row["score"]),
            "slope_ci_text": f"[{_number(row['slope_ci_low'])}, {_number(row['slope_ci_high'])}]",
        }
        for row in trend_table.with_columns(several_models=pl.lit(several)).iter_rows(named=True)
    ]
    headline = [
        row["sentence"]
        for row in trend_rows
        if row["score"] in ("perplexity", "cosine_similarity", "edit_distance") and row["axis_text"] == "temperature"
    ]
    truncations = sorted(set(stories["truncation"])) if "truncation" in stories.columns else []
    summary_rows = _summary_rows(summary)
    models = models or [{**config["models"][0], **manifest}]
    return environment.get_template("report.html.j2").render(
        experiment=config["experiment"],
        config=config,
        manifest=manifest,
        models=models,
        model_names=", ".join(model["model"] for model in models),
        sampler=sampler_text(stories, config),
        truncations=truncations,
        frontier=frontier,
        trend_groups=any(row["group"] for row in trend_rows),
        cell_column=any(row["cell"] for row in summary_rows),
        n_stories=stories.height,
        n_prompts=generations["prompt_id"].n_unique(),
        temperatures=", ".join(f"{t:g}" for t in sorted(stories["temperature"].unique())),
        n_seeds=stories["seed"].n_unique(),
        headline=headline,
        trends=trend_rows,
        summary=summary_rows,
        summary_columns={score: SCORE_LABELS[score] for score in SUMMARY_COLUMNS},
        rows_shown=TABLE_ROWS_SHOWN,
        figures={name: _image(path) for name, path in figures.items()},
        captions={name: markupsafe.Markup(caption(name)) for name in CAPTION_FILES},  # (our own text)
        examples=_examples(generations, scores, examples_per_temperature),
        files=files,
        provenance=provenance,
        ratings=list(ratings),
        study=study,
        judge_validation=judge_validation,
        human_study=human_study,
        design=markupsafe.Markup(design_text(config, trend_table)),
        hidden_min_p=[
            {**row, "temperature": f"{row['temperature']:g}", "share": f"{row['share']:.1%}"}
            for row in share_below_raw_min_p(generations).iter_rows(named=True)
        ]
        if truncations == ["scaled"]
        else None,
        study_sampler=not swept_axes(stories) and len(models) == 1,  # one sampler, as the study: its min-p section
        raw_min_p=value_text(stories["min_p"][0]) if "min_p" in stories.columns and stories.height else "",
        tokens=int(stories["num_tokens"].sum()),
        stopped=int((stories["finish_reason"] == "stop").sum()),
        empty_stories=int((stories["num_tokens"] == 0).sum()),
    )


def rater_name(config: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The judge as the report names it: the first generating model's name (``manifest``, its manifest) when the
    judge is that model, else ``judge.model`` as the config writes it."""
    return manifest["model"] if judge_is_first_model(config) else judge_model_path(config)


def build(
    inputs: Mapping[str, Any],
    config: dict[str, Any],
    files: dict[str, str],
    rating_sources: list[str],
    survey: dict[str, Any] | None,
    source_dir: Path,
) -> str:
    """The report of a run, read from its files: what the build_report rule's script writes.

    Args:
        inputs: the rule's input paths by name (``snakemake.input``, or a plain dict): manifest (the first model's),
            manifests (every generating model's, in the order of the config's models), stories, scores, summary, trends,
            figures (the PNGs), frontier, frontier_png, study_table1, study_table2, study_scores, and one path per
            source of ratings in ratings_descriptives, ratings_lme and ratings_forest; judge_vs_people and
            judge_vs_people_png when the judge ran; survey_power, survey_png, survey_sentences and survey_design
            with a survey.
        config: the run's config.
        files: every file the report's numbers come from, by what it holds (the report lists them).
        rating_sources: the sources of the ratings tables, in their order (human, judge).
        survey: what the section on planning a human evaluation names besides the numbers (the workflow's
            survey_report_params: settings, source, pilot, generations, folder, key); None without a survey.
        source_dir: the workflow's folder, whose git commit the report names.

    Returns:
        The report as one HTML string.
    """
    manifest = read_manifest(inputs["manifest"])
    generations = read_parquet_without(inputs["stories"], {"token_ids"})  # (the report does not use them)
    judge = dict(config["judge"], is_generator=judge_is_generator(config))
    ratings = [
        ratings_section(
            source,
            pl.read_csv(descriptives),
            pl.read_csv(lme),
            Path(forest),
            rater=rater_name(config, manifest),
            judge=judge,
        )
        for source, descriptives, lme, forest in zip(
            rating_sources, inputs["ratings_descriptives"], inputs["ratings_lme"], inputs["ratings_forest"]
        )
    ]
    judged = inputs.get("judge_vs_people")
    return render_report(
        config=config,
        manifest=manifest,
        generations=generations,
        scores=pl.read_parquet(inputs["scores"]),
        summary=pl.read_parquet(inputs["summary"]),
        trend_table=pl.read_parquet(inputs["trends"]),
        figures={Path(path).stem: Path(path) for path in inputs["figures"]},
        files=files,
        provenance={"git": git_state(source_dir), "packages": package_versions()},
        ratings=ratings,
        study=study_section(
            pl.read_csv(inputs["study_table1"]),
            pl.read_csv(inputs["study_table2"]),
            pl.read_csv(inputs["study_scores"]),
        ),
        judge_validation=judge_validation_section(pl.read_csv(judged), Path(inputs["judge_vs_people_png"]))
        if judged
        else None,
        examples_per_temperature=config["scoring"]["examples_per_temperature"],
        models=[model | read_manifest(path) for model, path in zip(config["models"], inputs["manifests"])],
        frontier=frontier_section(pl.read_parquet(inputs["frontier"]), Path(inputs["frontier_png"])),
        human_study=human_study_section(
            pl.read_csv(inputs["survey_power"]),
            Path(inputs["survey_sentences"]).read_text().splitlines(),
            Path(inputs["survey_design"]).read_text().splitlines(),
            Path(inputs["survey_png"]),
            survey["settings"],
            survey,
            generations.filter(~pl.col("is_exemplar"))["temperature"].unique().to_list(),
        )
        if survey
        else None,
    )
