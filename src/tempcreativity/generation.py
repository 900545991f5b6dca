"""Generate stories with vLLM's offline engine: one engine per model per job, every missing story of the model
queued at once with per-request seeded ``SamplingParams``; stories already in the cache are read back. Each story is
cached the moment it finishes, so a job that dies part-way (time limit, preemption, out of memory) keeps what it
generated."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.axes import AXES, AXIS_COLUMNS, keyed_arguments
from tempcreativity.cache import ContentStore, cache_key
from tempcreativity.engine import (
    TOKEN_NEUTRAL_ENGINE_ARGS,
    check_context,
    check_engine_args,
    engine_fingerprint,
    on_cpu,
    start_engine,
    stop_engine,
)
from tempcreativity.errors import ConfigError
from tempcreativity.grid import StoryRequest
from tempcreativity.model import trusts_remote_code

# What the engine produced for one story: a cache entry, and the second half of a generations row.
GENERATION_SCHEMA = {
    "cache_key": pl.String,
    "text": pl.String,
    "token_ids": pl.List(pl.Int32),
    "logprobs": pl.List(pl.Float64),
    "top_logprobs": pl.List(pl.Float64),
    "cumulative_logprob": pl.Float64,
    "num_tokens": pl.Int32,
    "finish_reason": pl.String,
    "prompt_num_tokens": pl.Int32,
}
# What was asked for: the first half of a generations row.
REQUEST_SCHEMA = {
    "story_id": pl.String,
    "experiment": pl.String,
    "model": pl.String,
    "model_sha256": pl.String,
    "model_id": pl.String,
    "prompt_id": pl.String,
    "prompt_text": pl.String,
    "system": pl.String,
    "assistant_prefix": pl.String,
    "prompt_format": pl.String,
    "temperature": pl.Float64,
    "seed": pl.Int64,
    "is_exemplar": pl.Boolean,
    "sampling_seed": pl.Int64,
    **dict(list(AXIS_COLUMNS.items())[:3]),  # top_k, top_p, min_p: max_tokens follows them, as in the first tables
    "max_tokens": pl.Int32,
    **dict(list(AXIS_COLUMNS.items())[3:]),  # the other sampler axes, one column each
    "stop": pl.List(pl.String),
}
DECODING_COLUMNS = ("max_tokens", "stop")  # the same for every story; the sampler settings are the cell's
GENERATIONS_SCHEMA = REQUEST_SCHEMA | GENERATION_SCHEMA


def render_prompt_ids(tokenizer, request: StoryRequest) -> list[int]:
    """The prompt's token ids. ``chat``: the instruction through the model's chat template, plus the assistant
    prefix, tokenised as one string without extra special tokens (the template holds them). ``raw``: the text and
    the assistant prefix tokenised exactly as given, with the tokenizer's own special tokens (its BOS, if it adds
    one), as the study sent ``[INST]Write a story.[/INST]Here it is:\n\n`` to llama.cpp."""
    if request.prompt_format == "raw":
        return tokenizer(request.prompt_text + request.assistant_prefix)["input_ids"]
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the model's tokenizer has no chat template; use prompts[].format: raw for a base model")
    messages = [] if request.system is None else [{"role": "system", "content": request.system}]
    messages.append({"role": "user", "content": request.prompt_text})
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text + request.assistant_prefix, add_special_tokens=False)["input_ids"]


def sampling_settings(request: StoryRequest, decoding: dict[str, Any]) -> dict[str, Any]:
    """The SamplingParams arguments of one story: greedy (temperature 0, no seed) for the exemplar.

    ``logprobs=1`` returns, per position, the sampled token's raw log-probability (the model's own distribution,
    before temperature and truncation) and the most likely token's. ``truncation: raw`` applies top-k and min-p to
    the model's own distribution before temperature, as llama.cpp did: top-k keeps the same tokens either way,
    and raw min-p m at temperature T keeps exactly the tokens that vLLM's min-p m^(1/T) keeps after temperature
    (p_i / p_max >= m  <=>  (p_i / p_max)^(1/T) >= m^(1/T)). Raw top-p has no such equivalent: the config refuses
    it (top_p must be 1 with truncation raw). The sampler settings are the request's (its cell's), each passed
    as its axis's vLLM argument; max_tokens and stop come from ``decoding``."""
    temperature = 0.0 if request.is_exemplar else request.temperature
    arguments = {axis.vllm_argument: request.sampler[axis.name] for axis in AXES if axis.vllm_argument}
    min_p = arguments["min_p"]
    if request.sampler["truncation"] == "raw" and temperature > 0 and min_p > 0:
        arguments["min_p"] = min_p ** (1.0 / temperature)
    return {
        "temperature": temperature,
        **arguments,
        "max_tokens": decoding["max_tokens"],
        "stop": list(decoding["stop"]),
        "seed": None if request.is_exemplar else request.sampling_seed,
        "logprobs": 1,
    }


def kept_tokens(tokenizer, completion) -> int:
    """How many of a finished completion's tokens belong to its story. vLLM ends a story at a stop string with the
    text cut before it, but keeps every token it generated, and keeps the end-of-sequence token that ended a story
    in its token ids: neither belongs to the story (llama.cpp returned neither). For a stop string: the longest
    run of tokens whose text is a prefix of the kept text (a token that straddles the stop string goes with it)."""
    token_ids = list(completion.token_ids)
    if completion.finish_reason != "stop" or not token_ids:
        return len(token_ids)
    if not isinstance(completion.stop_reason, str):  # the end-of-sequence token (None) or a stop token id (int)
        return len(token_ids) - 1
    kept = len(token_ids)
    while kept and not completion.text.startswith(tokenizer.decode(token_ids[:kept], skip_special_tokens=True)):
        kept -= 1
    return kept


def check_prompt_lengths(
    requests: list[StoryRequest], prompt_ids: list[list[int]], model: dict, decoding: dict
) -> None:
    """Every prompt must leave room for ``max_tokens`` new tokens within ``max_model_len``, so that no story is
    ever cut by the context limit (only by its end, a stop string or max_tokens). Checked before any engine
    starts; the error names the prompt and both numbers."""
    room = model["max_model_len"] - decoding["max_tokens"]
    for request, ids in zip(requests, prompt_ids):
        if len(ids) > room:
            raise ConfigError(
                f"prompts: prompt {request.prompt_id!r} is {len(ids)} tokens (chat template and assistant prefix "
                f"included), but model.max_model_len {model['max_model_len']} - decoding.max_tokens "
                f"{decoding['max_tokens']} leaves room for {room}; allowed: prompts of at most {room} tokens "
                f"(shorten the prompt, lower decoding.max_tokens or raise model.max_model_len)"
            )


def story_identity(
    manifest: dict, model: dict, prompt_ids: list[int], setting: dict, truncation: str, fingerprint: dict
) -> dict:
    """Everything that can change a story's tokens, hashed into its cache key: the weights, the dtype, the context
    length, the engine arguments that are not token-neutral, the prompt's tokens (so its format and template),
    the sampling settings, stop strings and seed as passed to vLLM (without the arguments that axes.keyed_arguments
    leaves out at their default), the truncation mode, and the vLLM version and device."""
    return {
        "model_sha256": manifest["sha256"],
        "dtype": model["dtype"],
        "max_model_len": model["max_model_len"],
        "engine_args": {k: v for k, v in model.get("engine_args", {}).items() if k not in TOKEN_NEUTRAL_ENGINE_ARGS},
        "prompt_token_ids": prompt_ids,
        "sampling": keyed_arguments(setting),
        "truncation": truncation,
        "engine": fingerprint,
    }


def output_to_entry(key: str, output, tokenizer) -> pl.DataFrame:
    """A finished vLLM RequestOutput as a one-row cache entry (GENERATION_SCHEMA): the story's text and exactly
    its tokens (kept_tokens), each with its raw log-probability and the most likely token's."""
    completion = output.outputs[0]
    kept = kept_tokens(tokenizer, completion)
    token_ids = list(completion.token_ids)[:kept]
    positions = completion.logprobs[:kept]
    logprobs = [float(position[token].logprob) for position, token in zip(positions, token_ids)]
    top_logprobs = [max(float(candidate.logprob) for candidate in position.values()) for position in positions]
    text = completion.text
    if isinstance(completion.stop_reason, str):  # cut at the last token boundary before the stop string
        text = tokenizer.decode(token_ids, skip_special_tokens=True)
    row = {
        "cache_key": key,
        "text": text,
        "token_ids": token_ids,
        "logprobs": logprobs,
        "top_logprobs": top_logprobs,
        "cumulative_logprob": float(sum(logprobs)),
        "num_tokens": len(token_ids),
        "finish_reason": str(completion.finish_reason),
        "prompt_num_tokens": len(output.prompt_token_ids),
    }
    return pl.DataFrame([row], schema=GENERATION_SCHEMA)


def generated_entries(engine, prompts: list[dict], params: list, keys: list[str], tokenizer):
    """Queue every request, then step the engine as ``LLM.generate`` does (same batching, same stories), yielding
    each story's cache entry as it finishes. A progress bar counts finished stories."""
    from tqdm import tqdm

    # LLM.enqueue returns the engine's ids ('<n>-<random>'); finished outputs carry the LLM's own ids ('<n>').
    index_of = {}
    for index, request_id in enumerate(engine.enqueue(prompts, params, use_tqdm=False)):
        index_of[request_id] = index_of[request_id.rsplit("-", 1)[0]] = index
    with tqdm(total=len(keys), desc="Generated stories", unit="story", dynamic_ncols=True) as progress:
        while engine.llm_engine.has_unfinished_requests():
            for output in engine.llm_engine.step():
                if output.finished:
                    if output.request_id not in index_of:
                        raise RuntimeError(f"vLLM finished request {output.request_id!r}, which this job did not queue")
                    yield output_to_entry(keys[index_of[output.request_id]], output, tokenizer)
                    progress.update(1)


def generate_stories(
    requests: list[StoryRequest],
    config: dict[str, Any],
    manifests: dict[str, dict[str, Any]],
    cache_dir: str | Path,
    with_engine: Callable[[str, pl.DataFrame, Any], dict[str, Any]] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rows (in request order, GENERATIONS_SCHEMA) for ``requests``, generating only what the cache lacks: one
    engine per model (``config["models"]`` and ``manifests`` by model id) that has stories missing. Returns the rows
    and statistics of the work done (stories cached and generated, tokens, seconds; summed over the models).
    ``with_engine(model_id, rows, engine)`` is called once per model with its rows and its engine while it is still
    up (None when every story came from the cache); what it returns joins the statistics."""
    model_of = {model["id"]: model for model in config["models"]}
    stats: dict[str, Any] = {
        "requested": len(requests),
        "cached": 0,
        "generated": 0,
        "generated_tokens": 0,
        "engine_start_seconds": 0.0,
        "generate_seconds": 0.0,
    }
    rows: list[pl.DataFrame] = []
    for model_id in dict.fromkeys(request.model_id for request in requests):
        indices = [index for index, request in enumerate(requests) if request.model_id == model_id]
        model_rows, model_stats = _generate_with_model(
            [requests[i] for i in indices], config, model_of[model_id], manifests[model_id], cache_dir, with_engine
        )
        rows.append(model_rows.with_columns(_index=pl.Series(indices, dtype=pl.Int64)))
        for name in ("cached", "generated", "generated_tokens", "engine_start_seconds", "generate_seconds"):
            stats[name] = round(stats[name] + model_stats[name], 3)
        stats |= {name: value for name, value in model_stats.items() if name not in stats}  # the engine fingerprint
    if stats["generated"]:
        stats["tokens_per_second"] = round(stats["generated_tokens"] / max(stats["generate_seconds"], 1e-9), 1)
    table = pl.concat(rows).sort("_index").drop("_index") if rows else pl.DataFrame(schema=GENERATIONS_SCHEMA)
    return table, stats


def _generate_with_model(
    requests: list[StoryRequest],
    config: dict[str, Any],
    model: dict[str, Any],
    manifest: dict[str, Any],
    cache_dir: str | Path,
    with_engine: Callable[[str, pl.DataFrame, Any], dict[str, Any]] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The rows of one model's stories, generating what the cache lacks with one engine (then handed to
    ``with_engine``, and stopped)."""
    from transformers import AutoTokenizer

    cache = ContentStore(cache_dir, GENERATION_SCHEMA)
    folder = Path(manifest["folder"])
    cpu = on_cpu()
    fingerprint = engine_fingerprint(cpu)
    check_engine_args(model.get("engine_args", {}))
    check_context(model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trusts_remote_code(model))
    prompt_ids = [render_prompt_ids(tokenizer, request) for request in requests]
    check_prompt_lengths(requests, prompt_ids, model, config["decoding"])
    settings = [sampling_settings(request, config["decoding"]) for request in requests]
    keys = [
        cache_key(story_identity(manifest, model, ids, setting, request.sampler["truncation"], fingerprint))
        for ids, setting, request in zip(prompt_ids, settings, requests)
    ]
    stats: dict[str, Any] = {"generated_tokens": 0, "engine_start_seconds": 0.0, "generate_seconds": 0.0, **fingerprint}
    index_of = {key: index for index, key in enumerate(keys)}
    running: dict[str, Any] = {}  # the engine, once started

    def generate(missing: list[str]):
        """Start the engine and yield each missing story's entry as it finishes (timed, tokens counted)."""
        from vllm import SamplingParams

        indices = [index_of[key] for key in missing]
        started = time.perf_counter()
        # the KV cache holds the stories' tokens, unless the engine stays up for with_engine's work (4 GiB then)
        lengths = None if with_engine else [len(prompt_ids[i]) + settings[i]["max_tokens"] for i in indices]
        engine = running["engine"] = start_engine(model, folder, max(len(prompt_ids[i]) for i in indices), lengths)
        stats["engine_start_seconds"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        prompts = [{"prompt_token_ids": prompt_ids[i]} for i in indices]
        for entry in generated_entries(
            engine, prompts, [SamplingParams(**settings[i]) for i in indices], missing, tokenizer
        ):
            stats["generated_tokens"] += entry["num_tokens"][0]
            yield entry
        stats["generate_seconds"] = round(time.perf_counter() - started, 3)

    stored, missing = cache.fill(keys, generate)
    stats |= {"cached": len(requests) - len(missing), "generated": len(missing)}
    described = pl.DataFrame(
        [
            {
                "story_id": request.story_id,
                "experiment": config["experiment"],
                "model": manifest["model"],
                "model_sha256": manifest["sha256"],
                **request.to_dict(),
                **{name: config["decoding"][name] for name in DECODING_COLUMNS},
            }
            for request in requests
        ],
        schema=REQUEST_SCHEMA,
    )
    rows = pl.concat([described, stored], how="horizontal").select(list(GENERATIONS_SCHEMA))
    if with_engine is not None:
        stats |= with_engine(model["id"], rows, running.get("engine"))
    if "engine" in running:
        stop_engine(running.pop("engine"))  # frees its memory before the next model's engine starts
    return rows, stats


def order_stories(frames: list[pl.DataFrame], story_ids: list[str]) -> pl.DataFrame:
    """Concatenate shard tables into the experiment's table, in grid order; every story exactly once."""
    # (no rechunk, and one gather in grid order: one copy of the stories, where concat, join and sort made three)
    combined = pl.concat(frames, how="vertical", rechunk=False) if frames else pl.DataFrame(schema=GENERATIONS_SCHEMA)
    found = combined["story_id"].to_list()
    if sorted(found) != sorted(story_ids):
        missing = sorted(set(story_ids) - set(found))[:5]
        extra = sorted(set(found) - set(story_ids))[:5]
        raise ValueError(f"shards do not hold the grid's stories exactly once (missing {missing}, unexpected {extra})")
    row_of = {story_id: row for row, story_id in enumerate(found)}
    return combined[[row_of[story_id] for story_id in story_ids]]
