"""An LLM judge that rates stories on the study's four criteria, so that the human-evaluation analysis can run
without a survey panel. Each judge sample (a seed) acts as one participant; it rates every story on novelty and
typicality compared with the exemplar story, and on cohesion and coherence from the story alone, on 1-5.
vLLM's structured output restricts every answer to one of "1".."5", so every answer parses.

The rubric is the study's, in our own words; as in the study, a HIGHER coherence rating means the story is
HARDER to follow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.cache import ContentStore, cache_key
from tempcreativity.ratings import RATING_ITEMS

SCALE = ["1", "2", "3", "4", "5"]

RUBRIC = {
    "novelty": (
        "Compare the STORY with the EXAMPLE story. How new or unusual is the STORY compared with the EXAMPLE?",
        "1 = not new at all (almost the same as the example), 5 = completely new and unusual",
    ),
    "typicality": (
        "Compare the STORY with the EXAMPLE story. How well does the STORY show the essential characteristics of a "
        "story, as the EXAMPLE does?",
        "1 = hardly a story at all, 5 = shows every essential characteristic of a story",
    ),
    "cohesion": (
        "Read the STORY. Are its words and sentences grammatically consistent, and are its characters, events and "
        "actions used appropriately?",
        "1 = not at all, 5 = completely",
    ),
    "coherence": (
        "Read the STORY. How hard is it to follow and understand?",
        "1 = very easy to follow, 5 = very hard to follow",
    ),
}
COMPARES_WITH_EXEMPLAR = {"novelty", "typicality"}


def judge_messages(criterion: str, story: str, exemplar: str) -> list[dict[str, str]]:
    """The chat messages that ask for one rating."""
    question, scale = RUBRIC[criterion]
    parts = [f"EXAMPLE:\n{exemplar}\n"] if criterion in COMPARES_WITH_EXEMPLAR else []
    parts += [f"STORY:\n{story}\n", question, f"Answer with one number from 1 to 5 ({scale})."]
    return [
        {"role": "system", "content": "You are a careful reader who rates short stories for a study."},
        {"role": "user", "content": "\n".join(parts)},
    ]


def truncate_tokens(tokenizer, text: str, max_tokens: int) -> str:
    """The text cut to at most ``max_tokens`` tokens of the judge's tokenizer."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens])


ANSWER_SCHEMA = {"cache_key": pl.String, "answer": pl.String}


def judge_stories(
    generations: pl.DataFrame,
    model_folder: str,
    judge: dict[str, Any],
    model: dict[str, Any],
    judge_identity: str,
    cache_dir: str | Path,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Ratings in the study's format (one row per story x participant), from ``judge['participants']`` seeded
    judge samples, and how many answers were asked of the engine. Exemplars are not rated (they are the
    reference). Answers are cached by ``judge_identity`` (the judge's weights), prompt and sampling, so a grown
    grid is judged only for its new stories."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from transformers import AutoTokenizer

    from tempcreativity.generation import engine_fingerprint, on_cpu

    stories = generations.filter(~pl.col("is_exemplar"))
    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    limit = judge["max_story_tokens"]
    exemplars = {
        prompt_id: truncate_tokens(tokenizer, text, limit)
        for prompt_id, text in generations.filter(pl.col("is_exemplar")).select("prompt_id", "text").iter_rows()
    }
    prompts, keys = [], []
    for story in stories.iter_rows(named=True):
        text = truncate_tokens(tokenizer, story["text"], limit)
        for criterion in RATING_ITEMS:
            rendered = tokenizer.apply_chat_template(
                judge_messages(criterion, text, exemplars[story["prompt_id"]]), tokenize=False, add_generation_prompt=True
            )
            prompt = {"prompt_token_ids": tokenizer(rendered, add_special_tokens=False)["input_ids"]}
            for participant in range(judge["participants"]):  # the same prompt; each participant its own seed
                prompts.append(prompt)
                keys.append((story["story_id"], story["temperature"], participant, criterion))
    seeds = [1000 * participant + RATING_ITEMS.index(criterion) for _, _, participant, criterion in keys]
    identity = {"judge": judge_identity, "dtype": model["dtype"], "temperature": judge["temperature"], "choice": SCALE,
                "engine": engine_fingerprint(on_cpu())}  # fmt: skip
    cache_keys = [
        cache_key({**identity, "prompt_token_ids": prompt["prompt_token_ids"], "seed": seed})
        for prompt, seed in zip(prompts, seeds)
    ]
    store = ContentStore(cache_dir, ANSWER_SCHEMA)
    missing = [index for index, key in enumerate(cache_keys) if not store.has(key)]
    if missing:
        store.write(_ask(model_folder, model, [prompts[i] for i in missing], [seeds[i] for i in missing],
                         [cache_keys[i] for i in missing], judge["temperature"]))  # fmt: skip
    answers: dict[tuple, dict[str, Any]] = {}
    for (story_id, temperature, participant, criterion), answer in zip(keys, store.read(cache_keys)["answer"], strict=True):
        row = answers.setdefault((story_id, participant), {
            "story_id": story_id, "temperature": temperature, "participant_id": f"judge-{participant}",
            "rater": f"llm-judge:{judge['model_name']}",
        })  # fmt: skip
        row[criterion] = float(int(answer.strip()))
    columns = ["story_id", "temperature", "participant_id", *RATING_ITEMS, "rater"]
    ratings = pl.DataFrame(list(answers.values())).select(columns).sort(["participant_id", "story_id"])
    return ratings, {"answers": len(cache_keys), "asked": len(missing)}


def _ask(model_folder: str, model: dict[str, Any], prompts: list[dict], seeds: list[int], keys: list[str],
         temperature: float) -> pl.DataFrame:  # fmt: skip
    """Start the judge's engine and ask every prompt once, constrained to the answers "1".."5"."""
    from vllm import LLM, SamplingParams
    from vllm.platforms import current_platform
    from vllm.sampling_params import StructuredOutputsParams

    from tempcreativity.generation import engine_arguments

    longest = max(len(prompt["prompt_token_ids"]) for prompt in prompts)
    engine = LLM(**engine_arguments(model, model_folder, longest, cpu=current_platform.is_cpu()))
    params = [
        SamplingParams(temperature=temperature, seed=seed, max_tokens=2,
                       structured_outputs=StructuredOutputsParams(choice=SCALE))
        for seed in seeds
    ]  # fmt: skip
    outputs = engine.generate(prompts, params, use_tqdm=True)
    return pl.DataFrame({"cache_key": keys, "answer": [output.outputs[0].text for output in outputs]}, schema=ANSWER_SCHEMA)
