"""What a job that runs a vLLM engine asks of the machine or the cluster: GPUs, CPUs, host memory and minutes, from
the config, the retry attempt and the cores Snakemake was given. The workflow's rules call these through thin
wrappers in workflow/rules/common.smk; steps without an engine state fixed resources in their rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tempcreativity.cluster import cluster_engine_cpus
from tempcreativity.engine import CPU_KV_CACHE_BYTES, CPU_MAX_NUM_SEQS, kv_cache_bytes_per_token
from tempcreativity.model import EMBEDDED, judges_on_generation_engine, model_slug

CPUS_PER_GPU = 4  # scheduler, tokenizer and one worker process per GPU
# A CPU engine job's memory besides its KV cache: vLLM and torch, the default model's weights, one step's
# activations, the embedders after generation (measured, benchmarks/RESULTS.md "Peak memory": 2.5 GB, with room).
CPU_ENGINE_BASE_MEM_MB = 3000
PROMPT_TOKENS_ALLOWANCE = 128  # a story's prompt tokens and the KV cache's rounding to whole blocks
GPU_JOB_HOST_MEM_MB = 8000  # a GPU job's host memory besides loading the weights
MEM_MB_PER_GPU = 16000  # host memory to load one GPU's shard of the weights
ENGINE_RUNTIME_MINUTES = 120


def engine_gpus(config: dict[str, Any]) -> int:
    """GPUs of a job that runs a vLLM engine: the largest tensor parallel size of a model the config runs on GPUs,
    else none."""
    return max(model["tensor_parallel_size"] if model["device"] == "gpu" else 0 for model in config["models"])


def engine_threads(config: dict[str, Any], cores: int | None) -> int:
    """CPUs of a model job: CPUS_PER_GPU per GPU. On the CPU the model computes with every core it is given:
    ``cores`` (Snakemake's --cores, all local cores by default), or on a cluster run without --cores (None) 8, or the
    largest node's CPUs where that is fewer, so that no job pends forever."""
    gpus = engine_gpus(config)
    if gpus:
        return CPUS_PER_GPU * gpus
    return cores or cluster_engine_cpus()


def judge_threads(config: dict[str, Any], shards: int, cores: int | None) -> int:
    """CPUs of the judge's job: on the CPU with one shard (``shards``: the generation jobs), where the generation job
    rates every story on its own engine and the judge's job only takes its ratings, one, so that it runs beside the
    scores and figures (should a question not fit the generation engine's context, its engine still runs, on what
    the machine has); else an engine job's."""
    if judges_on_generation_engine(config) and shards == 1 and not engine_gpus(config):
        return 1
    return engine_threads(config, cores)


def model_kv_bytes_per_token(config: dict[str, Any], models_dir: str | Path) -> int | None:
    """The largest KV-cache bytes per token of the config's models, from their config.json (a local folder, or the
    converted embedded model under ``models_dir``); None where one is not on disk yet (a hub id, the embedded model
    before its conversion)."""
    sizes = []
    for model in config["models"]:
        path = Path(model["path"])
        folder = path if model["path"] != EMBEDDED and path.is_dir() else Path(models_dir) / model_slug(model["path"])
        sizes.append(kv_cache_bytes_per_token(folder, model["dtype"]))
    return None if None in sizes else max(sizes)


def engine_mem_mb(
    config: dict[str, Any], attempt: int, stories: int | None = None, kv_bytes_per_token: int | None = None
) -> int:
    """Host memory of a vLLM job, growing with each retry (``attempt`` counts from 1). On the CPU,
    CPU_ENGINE_BASE_MEM_MB and the KV cache its engine allocates (tempcreativity.engine.cpu_kv_cache_bytes): for a
    generation job of ``stories`` stories of models with ``kv_bytes_per_token``, the stories that run at once at
    their longest, at most 4 GiB; 4 GiB where either is unknown or the judge asks its questions on the same engine.
    On GPUs, GPU_JOB_HOST_MEM_MB besides what loading a shard of the weights takes per GPU."""
    gpus = engine_gpus(config)
    if gpus:
        return (GPU_JOB_HOST_MEM_MB + MEM_MB_PER_GPU * gpus) * attempt
    kv_bytes = CPU_KV_CACHE_BYTES
    if stories and kv_bytes_per_token and not judges_on_generation_engine(config):
        tokens = min(CPU_MAX_NUM_SEQS, stories) * (config["decoding"]["max_tokens"] + PROMPT_TOKENS_ALLOWANCE)
        kv_bytes = min(kv_bytes, tokens * kv_bytes_per_token)
    return (CPU_ENGINE_BASE_MEM_MB + -(-kv_bytes // 2**20)) * attempt


def engine_runtime(attempt: int) -> int:
    """Minutes a vLLM job may run, growing with each retry (``attempt`` counts from 1)."""
    return ENGINE_RUNTIME_MINUTES * attempt


# The analysis jobs whose memory grows with the stories' tokens: MiB per million tokens the grid may generate, from
# benchmarks/bench_sweep.py at 12,600 and 100,000 synthetic stories (14.1 and 111.7 million tokens; the largest, the
# report, 6,783 MiB at 100,000), rounded up. The rest of these jobs, and every other analysis job, fit in
# ANALYSIS_BASE_MEM_MB.
ANALYSIS_BASE_MEM_MB = 2000
ANALYSIS_MIB_PER_MILLION_TOKENS = {
    "collect_generations": 60,
    "score_stories": 40,
    "summarise_scores": 30,
    "frontier": 30,
    "plot_figures": 10,
    "build_report": 70,
    "track_mlflow": 10,
}


def analysis_mem_mb(config: dict[str, Any], stories: int, rule: str, attempt: int) -> int:
    """Host memory of the analysis job ``rule`` for a grid of ``stories`` stories (exemplars included), growing with
    each retry: ANALYSIS_BASE_MEM_MB and its share per million tokens, at ``decoding.max_tokens`` a story (a bound:
    stories that stop early take less). 100,000 stories of 1,000 tokens: 9 GB for the report, 8 GB to gather."""
    tokens = stories * config["decoding"]["max_tokens"]
    return (ANALYSIS_BASE_MEM_MB + -(-ANALYSIS_MIB_PER_MILLION_TOKENS[rule] * tokens // 1_000_000)) * attempt
