"""The commands that plan a human evaluation and bring its answers back (registered by cli.py):

- ``tempcreativity power [--ratings FILE] [--out DIR] [--participants 20,40,...] [--stories-per-participant 5,10]
  [--stories-per-temperature 5] [--replicates N] [--seed N]``: power of the crossed model's temperature test per
  criterion over a grid of designs, from a ratings file's variance components (the study's by default);
- ``tempcreativity survey GENERATIONS.parquet --participants N --stories-per-participant K --out DIR [--seed S]``
  (or ``--target-power P``): pick stories, assign them, write the blinded key and one HTML form per participant;
- ``tempcreativity survey-import ANSWERS_DIR_OR_FILES --key KEY.csv --out ratings.csv``: the forms' CSVs as ratings
  in the study's format."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import polars as pl

from tempcreativity.power import (
    DEFAULT_PARTICIPANTS,
    DEFAULT_REPLICATES,
    DEFAULT_STORIES_PER_PARTICIPANT,
    DEFAULT_STORIES_PER_TEMPERATURE,
    FITS,
)
from tempcreativity.ratings import RATING_ITEMS, RatingsError

COMMANDS = ("power", "survey", "survey-import")
STUDY_RATINGS = Path(__file__).resolve().parents[2] / "resources" / "peeperkorn2024" / "survey_ratings.csv"


class ArgumentProblem(ValueError):
    """A command-line value that is not allowed; the message names the option, the value and what is allowed."""


def _joined(values) -> str:
    return ",".join(str(value) for value in values)


def add_parsers(commands) -> None:
    """Register the power, survey and survey-import subcommands on cli.py's subparsers."""
    power = commands.add_parser("power", help="power of the temperature test per criterion over a grid of designs")
    power.add_argument(
        "--ratings",
        help="ratings whose variance components to simulate from (a pilot); default: the study's released ratings",
    )
    power.add_argument("--out", default="reports/power", help="folder for power.csv, power.png/.svg and power.txt")
    power.add_argument(
        "--participants", default=_joined(DEFAULT_PARTICIPANTS), help="numbers of raters, comma-separated"
    )
    power.add_argument(
        "--stories-per-participant",
        default=_joined(DEFAULT_STORIES_PER_PARTICIPANT),
        help="stories each rater rates, comma-separated",
    )
    power.add_argument(
        "--stories-per-temperature",
        default=_joined(DEFAULT_STORIES_PER_TEMPERATURE),
        help="stories at each temperature, comma-separated",
    )
    power.add_argument("--temperatures", help="the survey's temperatures, comma-separated (default: the ratings')")
    power.add_argument("--replicates", default=str(DEFAULT_REPLICATES), help="simulated data sets per design")
    power.add_argument("--seed", default="0", help="random seed (same seed, same table)")
    power.add_argument("--alpha", default="0.05", help="the test's level")
    power.add_argument("--target", default="0.8", help="the power the sentences look for")
    power.add_argument("--fit", default="fast", help="fast (crossed.py's REML) or statsmodels (ratings.py's fit)")
    power.add_argument("--no-progress", action="store_true", help="no progress bar")
    survey = commands.add_parser("survey", help="pick and assign a run's stories; one HTML form per participant")
    survey.add_argument("generations", help="a run's generations.parquet")
    survey.add_argument("--participants", help="number of participants")
    survey.add_argument("--stories-per-participant", help="stories each participant rates")
    survey.add_argument(
        "--stories-per-temperature",
        help="stories picked per temperature (per model and sampler where the run has several); default 5, the study's",
    )
    survey.add_argument(
        "--target-power",
        help="instead of --participants/--stories-per-participant: the smallest "
        "design in the power grid that reaches this power",
    )
    survey.add_argument(
        "--criterion",
        default="all",
        help="with --target-power: the criterion whose power counts "
        f"({', '.join(RATING_ITEMS)}) or all (every one of them)",
    )
    survey.add_argument(
        "--power",
        help="with --target-power: a power.csv from `tempcreativity power` (default: "
        "compute the default grid from the study's ratings, a few minutes)",
    )
    survey.add_argument("--out", required=True, help="folder for key.csv, assignments.csv, design.txt and forms/")
    survey.add_argument("--seed", default="0", help="random seed (same seed, same survey)")
    survey.add_argument("--title", default="Rate short stories", help="the forms' title")
    back = commands.add_parser("survey-import", help="the forms' answer CSVs as ratings in the study's format")
    back.add_argument("answers", nargs="+", help="answer CSV files, or folders holding them")
    back.add_argument("--key", required=True, help="the survey's key.csv")
    back.add_argument("--out", required=True, help="the ratings CSV to write")


def run(arguments: argparse.Namespace) -> int:
    """Run one of COMMANDS; errors as one line on stderr and exit code 2."""
    from tempcreativity.design import DesignError
    from tempcreativity.io import OutputPathError
    from tempcreativity.survey import SurveyError

    handlers = {"power": _power, "survey": _survey, "survey-import": _survey_import}
    try:
        return handlers[arguments.command](arguments)
    except (ArgumentProblem, DesignError, SurveyError, RatingsError, OutputPathError) as error:
        message = str(error).removeprefix("ratings: ")
        print(f"tempcreativity {arguments.command}: {message}", file=sys.stderr)
        return 2


def _numbers(option: str, text: str, kind: type, minimum: float, maximum: float = math.inf, many: bool = True):
    """Comma-separated numbers (or one), each within [minimum, maximum]."""
    parts = text.split(",") if many else [text]
    noun = "whole numbers" if kind is int else "numbers"
    bounds = f">= {minimum:g}" if maximum == math.inf else f"from {minimum:g} to {maximum:g}"
    allowed = f"{'comma-separated ' if many else ''}{noun if many else noun[:-1]} {bounds}"
    try:
        values = [kind(part.strip()) for part in parts]
    except ValueError:
        raise ArgumentProblem(
            f"{option}: {text!r} is not {'a list of ' if many else 'a '}"
            f"{noun if many else noun[:-1]}; allowed: {allowed}"
        ) from None
    bad = [value for value in values if not minimum <= value <= maximum or value != value]
    if bad or not values:
        raise ArgumentProblem(f"{option}: {text!r} has {_joined(bad) or 'no value'}; allowed: {allowed}")
    return values if many else values[0]


def _power(arguments: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tempcreativity.figures import save
    from tempcreativity.io import check_output_folder, write_texts_atomic
    from tempcreativity.power import power_analysis, power_figure
    from tempcreativity.ratings import load_ratings

    participants = _numbers("--participants", arguments.participants, int, 2)
    per_participant = _numbers("--stories-per-participant", arguments.stories_per_participant, int, 1)
    per_temperature = _numbers("--stories-per-temperature", arguments.stories_per_temperature, int, 1)
    replicates = _numbers("--replicates", arguments.replicates, int, 1, many=False)
    seed = _numbers("--seed", arguments.seed, int, 0, many=False)
    alpha = _numbers("--alpha", arguments.alpha, float, 1e-6, 0.5, many=False)
    target = _numbers("--target", arguments.target, float, 0.01, 0.999, many=False)
    if arguments.fit not in FITS:
        raise ArgumentProblem(f"--fit: {arguments.fit!r}; allowed: {', '.join(FITS)}")
    check_output_folder(arguments.out, "--out", "power.csv, power.png, power.svg and power.txt")
    path = Path(arguments.ratings) if arguments.ratings else STUDY_RATINGS
    try:
        ratings = load_ratings(path)
    except RatingsError as error:
        raise ArgumentProblem(f"--ratings: {str(error).removeprefix('ratings: ')}") from None
    temperatures = sorted(set(ratings["temperature"].to_list()))
    if arguments.temperatures:
        temperatures = sorted(set(_numbers("--temperatures", arguments.temperatures, float, 0, 2)))
    if len(temperatures) < 2:
        raise ArgumentProblem(f"--temperatures: {_joined(temperatures)}; allowed: at least two temperatures")
    source = "the study's" if not arguments.ratings else f"{path.name}'s"
    observed = not arguments.temperatures
    cells = len(participants) * len(per_participant) * len(per_temperature) + observed
    with tqdm(
        total=cells * len(RATING_ITEMS) * replicates,
        desc="Simulated fits",
        unit="fit",
        dynamic_ncols=True,
        disable=arguments.no_progress,
    ) as bar:
        grid = (tuple(participants), tuple(per_participant), tuple(per_temperature))
        table, sentences = power_analysis(
            ratings,
            temperatures,
            *grid,
            replicates,
            seed,
            alpha,
            arguments.fit,
            target,
            source,
            observed,
            progress=bar.update,
        )
    out = Path(arguments.out)
    write_texts_atomic(
        {out / "power.csv": table.write_csv(float_precision=6), out / "power.txt": "\n".join(sentences) + "\n"}
    )
    save(power_figure(table, target), out / "power.png", out / "power.svg")
    for sentence in sentences:
        print(sentence)
    for name in ("power.csv", "power.png", "power.svg", "power.txt"):
        print(out / name)
    return 0


def _survey(arguments: argparse.Namespace) -> int:
    from tempcreativity.io import check_output_folder, write_texts_atomic
    from tempcreativity.survey import SurveyError, build_survey

    seed = _numbers("--seed", arguments.seed, int, 0, many=False)
    check_output_folder(arguments.out, "--out", "key.csv, assignments.csv, design.txt and forms/")
    per_temperature = 5
    if arguments.target_power is not None:
        if arguments.participants or arguments.stories_per_participant:
            raise ArgumentProblem(
                "--target-power: given with --participants/--stories-per-participant; allowed: "
                "either --target-power or both of those"
            )
        participants, per_participant, per_temperature = _design_for_power(arguments)
    else:
        if not (arguments.participants and arguments.stories_per_participant):
            raise ArgumentProblem(
                "--participants and --stories-per-participant: "
                f"{arguments.participants or 'missing'} and "
                f"{arguments.stories_per_participant or 'missing'}; allowed: both given (whole "
                "numbers), or --target-power instead"
            )
        participants = _numbers("--participants", arguments.participants, int, 2, many=False)
        per_participant = _numbers("--stories-per-participant", arguments.stories_per_participant, int, 1, many=False)
    if arguments.stories_per_temperature:
        per_temperature = _numbers("--stories-per-temperature", arguments.stories_per_temperature, int, 1, many=False)
    path = Path(arguments.generations)
    if not path.is_file():
        raise SurveyError(f"generations: {path} does not exist; expected a run's generations.parquet")
    try:
        generations = pl.read_parquet(path)
    except Exception as error:  # polars raises several kinds for a file that is not Parquet
        raise SurveyError(f"generations: {path} is not a readable Parquet file ({type(error).__name__})") from None
    plan, lines, files = build_survey(
        generations, participants, per_participant, per_temperature, seed, arguments.title
    )
    out = Path(arguments.out)
    write_texts_atomic({out / name: text for name, text in files.items()})
    for line in lines:
        print(line)
    print(f"{out / 'key.csv'} (the researcher's key: code -> story; do not share)")
    print(f"{out / 'forms'}/ ({plan.summary['participants']} forms, one per participant)")
    return 0


def _design_for_power(arguments: argparse.Namespace) -> tuple[int, int, int]:
    """--target-power: the smallest design of the power grid that reaches the target."""
    from tempcreativity.power import smallest_design

    target = _numbers("--target-power", arguments.target_power, float, 0.01, 0.999, many=False)
    criterion = None if arguments.criterion == "all" else arguments.criterion
    if criterion is not None and criterion not in RATING_ITEMS:
        raise ArgumentProblem(f"--criterion: {arguments.criterion!r}; allowed: {', '.join(RATING_ITEMS)} or all")
    if arguments.power:
        try:
            table = pl.read_csv(arguments.power, infer_schema_length=None)
        except (FileNotFoundError, pl.exceptions.PolarsError) as error:
            raise ArgumentProblem(
                f"--power: {arguments.power} could not be read ({type(error).__name__}); "
                "allowed: a power.csv written by `tempcreativity power`"
            ) from None
    else:
        from tempcreativity.power import estimate_components, power_grid
        from tempcreativity.ratings import load_ratings

        print(
            "computing the default power grid from the study's ratings (a few minutes; --power power.csv reuses one)",
            file=sys.stderr,
        )
        ratings = load_ratings(STUDY_RATINGS)
        table = power_grid(estimate_components(ratings), sorted(set(ratings["temperature"].to_list())))
    best = smallest_design(table, target, criterion)
    if best is None:
        scope = f"{criterion}'s" if criterion else "every criterion's"
        raise ArgumentProblem(
            f"--target-power: {target:g} for {scope} temperature effect is reached by no design in "
            "the power grid; allowed: a lower target, one criterion (--criterion), or a larger "
            "grid (`tempcreativity power --participants ...`)"
        )
    print(
        f"smallest design reaching power {target:g} ({arguments.criterion}): {best['participants']} participants x "
        f"{best['stories_per_participant']} stories, {best['stories_per_temperature']} per temperature"
    )
    return int(best["participants"]), int(best["stories_per_participant"]), int(best["stories_per_temperature"])


def _survey_import(arguments: argparse.Namespace) -> int:
    from tempcreativity.io import write_text_atomic
    from tempcreativity.survey import SurveyError, import_answers

    files = []
    for name in arguments.answers:
        path = Path(name)
        if path.is_dir():
            files.extend(sorted(path.glob("*.csv")))
        elif path.is_file():
            files.append(path)
        else:
            raise SurveyError(f"answers: {path} does not exist; allowed: answer CSV files or folders holding them")
    key_path = Path(arguments.key)
    if not key_path.is_file():
        raise SurveyError(f"--key: {key_path} does not exist; expected the key.csv that `tempcreativity survey` wrote")
    key = _read_csv("--key", key_path)
    answers = [(str(path), _read_csv("answers", path)) for path in files]
    ratings = import_answers(answers, key)
    write_text_atomic(ratings.write_csv(), arguments.out)
    print(
        f"{arguments.out}: {ratings.height} ratings from {ratings['participant_id'].n_unique()} participant(s) "
        f"of {ratings['story_id'].n_unique()} stories"
    )
    return 0


def _read_csv(option: str, path: Path) -> pl.DataFrame:
    from tempcreativity.survey import SurveyError

    try:
        return pl.read_csv(
            path,
            infer_schema_length=None,
            schema_overrides={
                "code": pl.String,
                "participant_id": pl.String,
                "story_id": pl.String,
                "survey_id": pl.String,
            },
        )
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        raise SurveyError(f"{option}: {path} is not a readable CSV ({type(error).__name__})") from None
