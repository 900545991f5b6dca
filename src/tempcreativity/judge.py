"""An LLM judge that rates stories on the study's four criteria, so that the human-evaluation analysis can run
without a survey panel: novelty and typicality compared with the exemplar story, cohesion and coherence from the
story alone, on 1-5. The rubric is the study's, in our own words; as in the study, a HIGHER coherence rating means
the story is HARDER to follow.

One rating per story and criterion (a judge is one rater, whatever its seeds: its samples are not participants):
- ``method: expected`` (default): the judge answers greedily with one token, and the rating is the expected value
  of its answer distribution over "1".."5", read from vLLM's raw log-probabilities of those five tokens
  (renormalised over them; how much probability the five hold is kept as ``digit_mass``);
- ``method: sample``: ``samples`` seeded answers at the judge's temperature, each restricted to "1".."5" by vLLM's
  structured output, averaged.

Every question is laid out shared part first: the system line, the whole rubric and the EXAMPLE (the exemplar), then
the STORY, and only then the criterion's request ("Rate the STORY's novelty."). vLLM's prefix caching then computes
rubric and example once for all stories, and each story once for its four questions (measured on 24 stories of
the default grid, with the CPU engines' 32-token KV blocks: 66,336 of 74,152 prompt tokens came from the cache).
Every question thus shows all four criteria and the example; novelty and typicality ask to compare with the
example, cohesion and coherence about the STORY alone.

The same engine also rates the study's 31 rated stories against the study's exemplar, so that the judge can be
checked against the study's people (``judge_vs_people``). When the judge is the generating model, the generation
job asks its questions on its own engine while it is up (``judge_on_engine``) and writes the ratings as its declared
outputs; the judge's job takes them (``complete_judge_tables``) and asks only about the stories no generation job
rated."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tempcreativity.cache import ContentStore, cache_key
from tempcreativity.catalogue import CRITERIA
from tempcreativity.model import trusts_remote_code
from tempcreativity.ratings import RATING_ITEMS

SCALE = ["1", "2", "3", "4", "5"]

# Each criterion's question and scale, as the judge is asked them (catalogue.CRITERIA).
RUBRIC = {name: (criterion.judge_question, criterion.judge_scale) for name, criterion in CRITERIA.items()}


def judge_messages(criterion: str, story: str, exemplar: str) -> list[dict[str, str]]:
    """The chat messages that ask for one rating: what every question shares (system line, the whole rubric, the
    example), then the story, and only the criterion's short request last, so that prefix caching reuses the
    shared part."""
    rubric = "\n".join(f"- {name}: {question} ({scale})" for name, (question, scale) in RUBRIC.items())
    parts = [
        f"You will rate a STORY on one of these criteria, each from 1 to 5:\n{rubric}\n",
        f"EXAMPLE:\n{exemplar}\n",
        f"STORY:\n{story}\n",
        f"Rate the STORY's {criterion}. Answer with one number from 1 to 5.",
    ]
    return [
        {"role": "system", "content": "You are a careful reader who rates short stories for a study."},
        {"role": "user", "content": "\n".join(parts)},
    ]


def truncate_tokens(tokenizer, text: str, max_tokens: int) -> str:
    """The text cut to at most ``max_tokens`` tokens of the judge's tokenizer."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


ANSWER_SCHEMA = {"cache_key": pl.String, "answer": pl.String, "digit_logprobs": pl.List(pl.Float64)}
RATINGS_SCHEMA = {
    "story_id": pl.String,
    "temperature": pl.Float64,
    "participant_id": pl.String,
    **dict.fromkeys(RATING_ITEMS, pl.Float64),
    "rater": pl.String,
    "method": pl.String,
    "samples": pl.Int32,
    "digit_mass": pl.Float64,
}


def scale_token_ids(tokenizer) -> list[int]:
    """The token ids of the answers "1".."5" (each must be one token of the judge's vocabulary)."""
    ids = [tokenizer(answer, add_special_tokens=False)["input_ids"] for answer in SCALE]
    if any(len(token) != 1 for token in ids):
        raise ValueError(
            f"judge: the judge's tokenizer splits the answers 1..5 into several tokens ({ids}); "
            "use judge.method: sample"
        )
    return [token[0] for token in ids]


def expected_score(digit_logprobs: list[float]) -> tuple[float, float]:
    """The expected answer under the judge's distribution over "1".."5" (renormalised over the five), and the
    probability the five hold together."""
    probabilities = np.exp(np.asarray(digit_logprobs, dtype=np.float64))
    mass = float(probabilities.sum())
    return float((probabilities / mass) @ np.arange(1, 6)), mass


def _exemplar_owner(story: dict[str, Any]) -> tuple[str, str]:
    """Whose exemplar a story is compared with: its model's (where the table names one) and its prompt's."""
    return story.get("model_id", ""), story["prompt_id"]


def _judge_prompts(stories: pl.DataFrame, exemplars: dict[tuple, str], tokenizer, limit: int) -> tuple[list, list]:
    """One prompt per story x criterion (token ids) and its (story_id, temperature, criterion), criterion by
    criterion: a story's later questions then reach the engine after its first one was computed, and prefix
    caching reuses its example and story (questions that are scheduled together are computed separately)."""
    prompts, keys = [], []
    texts = [truncate_tokens(tokenizer, story["text"], limit) for story in stories.iter_rows(named=True)]
    for criterion in CRITERIA:
        for story, text in zip(stories.iter_rows(named=True), texts):
            messages = judge_messages(criterion, text, exemplars[_exemplar_owner(story)])
            rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            prompts.append(tokenizer(rendered, add_special_tokens=False)["input_ids"])
            keys.append((story["story_id"], story["temperature"], criterion))
    return prompts, keys


def judge_stories(
    story_sets: dict[str, pl.DataFrame],
    model_folder: str,
    judge: dict[str, Any],
    model: dict[str, Any],
    judge_identity: str,
    cache_dir: str | Path,
    engine=None,
) -> tuple[dict[str, pl.DataFrame], dict[str, int]]:
    """For each named generations table (its exemplars are the reference and are not rated), one rating per story
    and criterion (the module's docstring says how), as a ratings table in the study's format with one rater,
    ``judge``; and how many answers were asked of the engine. One engine serves every table. Answers are cached
    by ``judge_identity`` (the judge's weights), prompt, method and sampling, so a grown grid is judged only for
    its new stories. With ``engine`` (a running vllm.LLM on the judge's weights and dtype) the missing answers are
    asked of it instead of a new engine; if a question would not fit its context, nothing is asked and no table is
    returned."""
    import time

    from transformers import AutoTokenizer

    from tempcreativity.engine import installed_engine_fingerprint

    tokenizer = AutoTokenizer.from_pretrained(model_folder, trust_remote_code=trusts_remote_code(model))
    method = judge["method"]
    samples = judge["samples"] if method == "sample" else 1
    digits = scale_token_ids(tokenizer) if method == "expected" else None
    identity = {
        "judge": judge_identity,
        "dtype": model["dtype"],
        "method": method,
        "choice": SCALE,
        "engine": installed_engine_fingerprint(),
    }
    if method == "sample":
        identity["temperature"] = judge["temperature"]
    requests, owners = [], []  # (prompt ids, seed, cache key) per answer; (set name, story, criterion) per answer
    for name, generations in story_sets.items():
        exemplars = {
            _exemplar_owner(story): truncate_tokens(tokenizer, story["text"], judge["max_story_tokens"])
            for story in generations.filter(pl.col("is_exemplar")).iter_rows(named=True)
        }
        prompts, keys = _judge_prompts(
            generations.filter(~pl.col("is_exemplar")), exemplars, tokenizer, judge["max_story_tokens"]
        )
        for prompt, key in zip(prompts, keys):
            for sample in range(samples):
                seed = None if method == "expected" else 1000 * sample + list(CRITERIA).index(key[2])
                requests.append((prompt, seed, cache_key({**identity, "prompt_token_ids": prompt, "seed": seed})))
                owners.append((name, *key))
    unique = {request[2]: request for request in requests}  # a story in two sets is asked once
    longest = max((len(prompt) for prompt, _, _ in requests), default=0)
    if engine is not None and longest + 2 > engine.llm_engine.model_config.max_model_len:
        return {}, {"answers": len(requests), "asked": 0, "seconds": 0.0}
    started = time.perf_counter()
    answers, asked = ContentStore(cache_dir, ANSWER_SCHEMA).fill(
        [request[2] for request in requests],
        lambda missing: _ask(model_folder, model, [unique[key] for key in missing], judge, digits, engine),
    )
    seconds = round(time.perf_counter() - started, 3)
    collected: dict[str, dict[tuple, list]] = {name: {} for name in story_sets}  # per set: (rating, digit mass)
    for (name, story_id, temperature, criterion), answer, logprobs in zip(
        owners, answers["answer"], answers["digit_logprobs"], strict=True
    ):
        rating = expected_score(logprobs) if method == "expected" else (float(int(answer.strip())), math.nan)
        collected[name].setdefault((story_id, temperature, criterion), []).append(rating)
    tables = {}
    for name, answers_of_set in collected.items():
        rows: dict[str, dict[str, Any]] = {}
        for (story_id, temperature, criterion), ratings in answers_of_set.items():
            row = rows.setdefault(
                story_id,
                {
                    "story_id": story_id,
                    "temperature": temperature,
                    "participant_id": "judge",
                    "rater": f"llm-judge:{judge['model_name']}",
                    "method": method,
                    "samples": samples,
                    "digit_mass": [],
                },
            )
            row[criterion] = float(np.mean([value for value, _ in ratings]))
            row["digit_mass"] += [mass for _, mass in ratings]
        for row in rows.values():
            row["digit_mass"] = float(np.mean(row["digit_mass"]))
        tables[name] = pl.DataFrame(list(rows.values()), schema=RATINGS_SCHEMA).sort("story_id")
    return tables, {"answers": len(requests), "asked": len(asked), "seconds": seconds}


def judge_on_engine(
    engine,
    stories: pl.DataFrame,
    study_stories: pl.DataFrame | None,
    manifest: dict[str, Any],
    judge: dict[str, Any],
    model: dict[str, Any],
    cache_dir: str | Path,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Ask the judge's questions about ``stories`` (a generation job's, of the judge's own model) and the study's
    stories on ``engine``, the generation job's running engine. Only stories whose exemplar is among them are asked
    (another shard holds the others' exemplar); only the ``expected`` method (greedy, unseeded) and prompts that fit
    the engine's context. Returns the ratings tables by story set (``experiment``, ``study``; a set not asked is
    left out) and the judge's statistics (answers, asked, seconds) for the experiment's stories, and as
    ``study_answers`` etc. for the study's (asked once per judge and cache: its questions are the same for every
    experiment)."""
    if judge["method"] != "expected" or engine is None:
        return {}, {}
    owners = stories.filter(pl.col("is_exemplar")).select("model_id", "prompt_id")
    story_sets = {"experiment": stories.join(owners, on=["model_id", "prompt_id"], how="semi")}
    if study_stories is not None:
        story_sets["study"] = study_stories
    judge = judge | {"model_name": manifest["model"]}
    tables, stats = {}, {}
    for name, story_set in story_sets.items():
        set_tables, set_stats = judge_stories(
            {name: story_set}, manifest["folder"], judge, model, manifest["sha256"], cache_dir, engine
        )
        if set_tables:
            tables[name] = set_tables[name]
            prefix = "" if name == "experiment" else f"{name}_"
            stats |= {f"{prefix}{key}": value for key, value in set_stats.items()}
    return tables, stats


def empty_ratings() -> pl.DataFrame:
    """A ratings table without rows (what a generation job writes for a story set it did not rate)."""
    return pl.DataFrame(schema=RATINGS_SCHEMA)


def complete_judge_tables(
    story_sets: dict[str, pl.DataFrame],
    rated: dict[str, list[pl.DataFrame]],
    model_folder: str | Path,
    judge: dict[str, Any],
    model: dict[str, Any],
    judge_identity: str,
    cache_dir: str | Path,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """The judge's ratings tables of ``story_sets``: each story's row from ``rated`` (the generation jobs' tables, by
    set) where one rated it, the rest asked of the judge (its cache, then an engine of its own). Returns the tables
    (sorted by story id, as judge_stories writes them) and statistics: stories ``from_generation_jobs``, and the
    answers and asked of the rest."""
    taken: dict[str, pl.DataFrame] = {}
    remaining: dict[str, pl.DataFrame] = {}
    for name, stories in story_sets.items():
        table = pl.concat([empty_ratings(), *rated.get(name, [])], how="vertical")
        wanted = stories.filter(~pl.col("is_exemplar"))["story_id"]
        taken[name] = table.filter(pl.col("story_id").is_in(wanted.implode())).unique("story_id", keep="first")
        todo = stories.filter(pl.col("is_exemplar") | ~pl.col("story_id").is_in(taken[name]["story_id"].implode()))
        if todo.filter(~pl.col("is_exemplar")).height:
            remaining[name] = todo
    asked_tables, stats = {}, {"answers": 0, "asked": 0, "seconds": 0.0}
    if remaining:
        asked_tables, stats = judge_stories(remaining, model_folder, judge, model, judge_identity, cache_dir)
    tables = {
        name: pl.concat([taken[name], asked_tables.get(name, empty_ratings())], how="vertical").sort("story_id")
        for name in story_sets
    }
    return tables, {"from_generation_jobs": sum(table.height for table in taken.values()), **stats}


def _ask(
    model_folder: str,
    model: dict[str, Any],
    requests: list[tuple],
    judge: dict[str, Any],
    digits: list[int] | None,
    engine=None,
) -> pl.DataFrame:
    """Ask every prompt once, of ``engine`` or else of a new engine: greedy with the five answers'
    log-probabilities (``expected``), or one seeded answer restricted to "1".."5" (``sample``)."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from tempcreativity.engine import start_engine

    longest = max(len(prompt) for prompt, _, _ in requests)
    if engine is None:
        context = max(model["max_model_len"], longest + 2)
        lengths = [len(prompt) + 2 for prompt, _, _ in requests]
        engine = start_engine({**model, "max_model_len": context}, model_folder, longest, lengths)
    if digits is not None:
        params = [SamplingParams(temperature=0.0, max_tokens=1, logprob_token_ids=digits) for _ in requests]
    else:
        params = [
            SamplingParams(
                temperature=judge["temperature"],
                seed=seed,
                max_tokens=2,
                structured_outputs=StructuredOutputsParams(choice=SCALE),
            )
            for _, seed, _ in requests
        ]
    outputs = engine.generate([{"prompt_token_ids": prompt} for prompt, _, _ in requests], params, use_tqdm=True)
    answers, digit_logprobs = [], []
    for output in outputs:
        completion = output.outputs[0]
        answers.append(completion.text)
        if digits is None:
            digit_logprobs.append([])
        else:
            position = completion.logprobs[0]
            digit_logprobs.append([float(position[token].logprob) for token in digits])
    keys = [key for _, _, key in requests]
    return pl.DataFrame({"cache_key": keys, "answer": answers, "digit_logprobs": digit_logprobs}, schema=ANSWER_SCHEMA)
