# Config validation, the story grid, every output path, and the rules' input functions.
import os
import re
from pathlib import Path

from tempcreativity.catalogue import CAPTION_FILES, FIGURES, FRONTIER, caption_file
from tempcreativity.config import apply_command_line, validate_config
from tempcreativity.grid import expand_grid, split_into_shards
from tempcreativity.model import (
    EMBEDDED,
    judge_model_path,
    judges_on_generation_engine,
    model_slug,
)
from tempcreativity import provenance
from tempcreativity import resources as job_resources
from tempcreativity.engine import preloaded_environment

# Jobs start with tcmalloc and Intel OpenMP preloaded where present (vLLM's CPU backend runs faster with them):
# jobs are child processes of this one, here and inside a SLURM job alike.
os.environ.update(preloaded_environment(dict(os.environ)))

# (the command line's config files and --config, merged: what they set replaces the default file's choices)
apply_command_line(config, workflow.config_settings.overwrite_config)
validate_config(
    config, Path(workflow.current_basedir) / "../schemas/config.schema.yaml"
)

EXPERIMENT = config["experiment"]
STORIES = expand_grid(config)
SHARDS = split_into_shards(STORIES, config["sharding"]["shards"])
SHARD_INDICES = [index for index, plan in enumerate(SHARDS) if plan.requests]

MODELS_DIR = "resources/models"
# The generating models (models:, into which validate_config turned a config's one model:), each described by a
# manifest named after its slug; the first is the judge's default and the `model` embedder's.
MODELS = config["models"]
MODEL_IDS = [model["id"] for model in MODELS]
SLUG_PATHS = {model_slug(model["path"]): model["path"] for model in MODELS}
MODEL_SLUG = model_slug(MODELS[0]["path"])
PRIMARY_MANIFEST = f"{MODELS_DIR}/{MODEL_SLUG}.json"
PRIMARY_MODEL = {name: value for name, value in MODELS[0].items() if name != "id"}
GENERATION_CACHE = "results/cache/generations"
EMBEDDING_CACHE = "results/cache/embeddings"
JUDGE_CACHE = "results/cache/judge"
EMBEDDERS = config["scoring"]["embedders"]
# The study's released data ships with the workflow (resources/peeperkorn2024/ beside the Snakefile).
STUDY_DATA = str(Path(workflow.basedir) / "resources" / "peeperkorn2024")
REPORT = f"reports/{EXPERIMENT}/index.html"
RATING_SOURCES = (["human"] if config["ratings"]["file"] else []) + (
    ["judge"] if config["judge"]["enabled"] else []
)
# Planning a human evaluation (survey.enabled): the power simulation starts from the config's ratings file (a pilot)
# when one is given and survey.components is auto, else from the study's released ratings.
SURVEY = config["survey"]["enabled"]
SURVEY_PILOT = (
    config["ratings"]["file"] if config["survey"]["components"] == "auto" else None
)
SURVEY_RATINGS = SURVEY_PILOT or f"{STUDY_DATA}/survey_ratings.csv"
SURVEY_SOURCE = f"{Path(SURVEY_PILOT).name}'s" if SURVEY_PILOT else "the study's"


wildcard_constraints:
    shard=r"\d+",
    slug="|".join(re.escape(slug) for slug in SLUG_PATHS),
    embedder="|".join(EMBEDDERS),
    source="human|judge",


def script_digest(script, *files):
    """A digest of the package code behind a rule's script, found from its imports (and theirs), and of ``files``
    (templates): a param, so that a step re-runs when the library code behind it changes.
    """
    return provenance.script_digest(Path(workflow.basedir) / "scripts" / script, *files)


def result(name):
    """Every experiment output lives under results/<experiment>/."""
    return f"results/{EXPERIMENT}/{name}"


def model_file(name):
    return f"{MODELS_DIR}/{name}"


def final_outputs():
    # (logs/track_mlflow.done: the tracking step succeeded; a failed one keeps the earlier mlflow.json)
    tracked = [result("mlflow.json"), result("logs/track_mlflow.done")]
    planned = [result("survey/power.csv"), result("survey/forms")]
    return (
        [REPORT]
        + (planned if SURVEY else [])
        + (tracked if config["mlflow"]["enabled"] else [])
    )


def print_outputs():
    print("\nDone. Outputs:")
    for description, path in report_files().items():
        print(f"  {path:<45} {description}")
    print(f"\nOpen the report: {Path(REPORT).resolve()}")
    if config["mlflow"]["enabled"]:
        print(
            f"MLflow runs: {result('mlflow.json')} (docs/mlflow.md: reviewing on the MLflow dashboard)"
        )


def report_files():
    """Every file the report's numbers come from, with what it holds."""
    return {
        "report (this page)": REPORT,
        "stories, tokens and log-probabilities": result("generations.parquet"),
        "scores per story": result("scores.parquet"),
        "summary per cell (model x prompt x swept settings x temperature)": result(
            "summary.parquet"
        ),
        "trends with temperature and every swept setting": result("trends.parquet"),
        "diversity and quality per sampler x temperature": result("frontier.parquet"),
        "2-D PCA of the embeddings": result("pca.parquet"),
        "the study's own data: Tables 1 and 2, its stories' scores": result("study/"),
        "embeddings per embedder": result("embeddings/"),
        "figures (PNG and SVG)": result("figures/"),
        "model folder and sha256 (one file per model)": model_file(
            f"{MODEL_SLUG}.json"
        ),
        **{
            f"ratings tables ({source})": result(f"ratings/{source}/")
            for source in RATING_SOURCES
        },
        **(
            {
                "LLM judge ratings (one per story)": result(
                    "ratings/judge_ratings.csv"
                ),
                "the judge against the study's people": result(
                    "ratings/judge_vs_people.csv"
                ),
            }
            if "judge" in RATING_SOURCES
            else {}
        ),
        **(
            {
                "power of a human evaluation per design and criterion (figure: power.png, sentences: power.txt)": result(
                    "survey/power.csv"
                ),
                "the planned survey: key.csv (the researcher's only), assignments.csv, design.txt, forms/": result(
                    "survey/"
                ),
            }
            if SURVEY
            else {}
        ),
    }


def judge_files(*names):
    """An input function: the named outputs of the judge (judge_ratings, judge_vs_people, judge_vs_people_png),
    when the judge runs; nothing otherwise."""
    paths = {
        "judge_ratings": result("ratings/judge_ratings.csv"),
        "judge_vs_people": result("ratings/judge_vs_people.csv"),
        "judge_vs_people_png": result("ratings/judge_vs_people.png"),
    }

    def inputs(wildcards):
        return (
            {name: paths[name] for name in names} if "judge" in RATING_SOURCES else {}
        )

    return inputs


def survey_files(*names):
    """An input function: the named outputs of plan_human_study (survey_power, survey_png, survey_sentences,
    survey_design), when survey.enabled; nothing otherwise."""
    paths = {
        "survey_power": result("survey/power.csv"),
        "survey_png": result("survey/power.png"),
        "survey_sentences": result("survey/power.txt"),
        "survey_design": result("survey/design.txt"),
    }

    def inputs(wildcards):
        return {name: paths[name] for name in names} if SURVEY else {}

    return inputs


def survey_report_params():
    """What the report's section on planning a human evaluation names besides the numbers: the settings, whose
    components, and the paths its commands use; None without a survey."""
    if not SURVEY:
        return None
    return {
        "settings": config["survey"],
        "source": SURVEY_SOURCE,
        "pilot": SURVEY_PILOT,
        "generations": result("generations.parquet"),
        "folder": result("survey/"),
        "key": result("survey/key.csv"),
    }


def describe_model_input(wildcards):
    """The embedded model must be converted first; other models are read where they are."""
    if SLUG_PATHS[wildcards.slug] == EMBEDDED:
        return {"folder": model_file(model_slug(EMBEDDED))}
    return {}


def model_path(wildcards):
    return SLUG_PATHS[wildcards.slug]


def model_manifests(wildcards=None):
    """Every generating model's manifest, in the order of MODEL_IDS."""
    return [model_file(f"{model_slug(model['path'])}.json") for model in MODELS]


def shard_plan(wildcards):
    return SHARDS[int(wildcards.shard)]


def shard_plan_digest(wildcards):
    """Re-runs the shard when its stories change (the plan object itself is not compared)."""
    return SHARDS[int(wildcards.shard)].digest


def generation_settings(wildcards):
    """What a generation job needs besides its requests (and what should re-run it when changed)."""
    return {name: config[name] for name in ("experiment", "models", "decoding")}


def shard_judge(wildcards):
    """What a generation job needs to ask the judge's questions (shard 0 also asks the study's), or None."""
    if not judges_on_generation_engine(config):
        return None
    study = STUDY_DATA if int(wildcards.shard) == 0 else None
    return {
        "judge": config["judge"],
        "model": PRIMARY_MODEL,
        "cache_dir": JUDGE_CACHE,
        "study_data": study,
    }


def shard_judge_inputs(wildcards):
    """The study's stories, for the generation job that asks the judge about them (shard 0)."""
    if judges_on_generation_engine(config) and int(wildcards.shard) == 0:
        return {
            name: path
            for name, path in study_data_files(wildcards).items()
            if name != "ratings"
        }
    return {}


def all_shards(wildcards):
    return expand(result("shards/shard-{shard}.parquet"), shard=SHARD_INDICES)


def shard_files(suffix):
    """An input function: every shard's file ``shard-<n>.<suffix>`` (a generation job's declared output)."""

    def inputs(wildcards):
        return expand(result(f"shards/shard-{{shard}}.{suffix}"), shard=SHARD_INDICES)

    return inputs


def shard_embedding_outputs():
    """A generation job's embeddings, one table per embedder (in the order of EMBEDDERS)."""
    return expand(
        result("shards/shard-{{shard}}.embeddings-{embedder}.parquet"),
        embedder=EMBEDDERS,
    )


def shard_embedding_files(wildcards):
    """Every shard's embeddings of one embedder."""
    return expand(
        result("shards/shard-{shard}.embeddings-{embedder}.parquet"),
        shard=SHARD_INDICES,
        embedder=wildcards.embedder,
    )


def story_order(wildcards):
    return [story.story_id for story in STORIES]


# Resources of the jobs that run a vLLM engine (tempcreativity.resources holds the policy): --cores is
# workflow._cores, None on a cluster run without it (where workflow.cores raises).
def engine_gpus(wildcards=None):
    return job_resources.engine_gpus(config)


def engine_threads(wildcards=None):
    return job_resources.engine_threads(config, workflow._cores)


def judge_threads(wildcards=None):
    return job_resources.judge_threads(config, len(SHARD_INDICES), workflow._cores)


def engine_mem_mb(wildcards, attempt):
    """A generation job's memory follows its shard's stories; the judge's job takes the 4 GiB KV cache's."""
    shard = getattr(wildcards, "shard", None)
    stories = None if shard is None else len(SHARDS[int(shard)].requests)
    kv_bytes = job_resources.model_kv_bytes_per_token(config, MODELS_DIR)
    return job_resources.engine_mem_mb(config, attempt, stories, kv_bytes)


def analysis_mem_mb(rule):
    """The memory of an analysis job that grows with the grid's tokens (tempcreativity.resources)."""

    def mem_mb(wildcards, attempt):
        return job_resources.analysis_mem_mb(config, len(STORIES), rule, attempt)

    return mem_mb


def engine_runtime(wildcards, attempt):
    return job_resources.engine_runtime(attempt)


def embedding_files(wildcards):
    return expand(result("embeddings/{embedder}.parquet"), embedder=EMBEDDERS)


def figure_files(extension):
    return [result(f"figures/{name}.{extension}") for name in FIGURES]


def figure_report_outputs():
    """The PNG figures, each with its caption for `snakemake --report`."""
    # (a line that starts with `report` would be read as the report directive)
    captioned = report
    return [
        captioned(path, caption=str(caption_file(Path(path).stem)), category="Figures")
        for path in figure_files("png")
    ]


def ratings_file(wildcards):
    """People's ratings (the config's file) or the judge's."""
    if wildcards.source == "human":
        return config["ratings"]["file"]
    return result("ratings/judge_ratings.csv")


def ratings_tables(extension_or_name):
    return [
        result(f"ratings/{source}/{extension_or_name}") for source in RATING_SOURCES
    ]


def judge_model_input(wildcards):
    """A judge that is the embedded model needs its converted folder."""
    if judge_model_path(config) == EMBEDDED:
        return {"embedded": model_file(model_slug(EMBEDDED))}
    return {}


def study_data_files(wildcards):
    """The study's ratings and stories, read by the rule that recomputes its tables."""
    return {
        "ratings": f"{STUDY_DATA}/survey_ratings.csv",
        "metadata": f"{STUDY_DATA}/survey_stories/metadata.csv",
        "exemplar": f"{STUDY_DATA}/exemplar.txt",
    }


def shard_stats_files(wildcards):
    return expand(result("shards/shard-{shard}.stats.json"), shard=SHARD_INDICES)
