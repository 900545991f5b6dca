"""What a job that runs a vLLM engine asks of the machine or the cluster: GPUs, CPUs, host memory and minutes, from
the config, the retry attempt and the cores Snakemake was given. The workflow's rules call these through thin
wrappers in workflow/rules/common.smk; steps without an engine state fixed resources in their rules."""

from __future__ import annotations

from typing import Any

from tempcreativity.cluster import cluster_engine_cpus
from tempcreativity.model import judges_on_generation_engine

CPUS_PER_GPU = 4  # scheduler, tokenizer and one worker process per GPU
CPU_ENGINE_MEM_MB = 8000  # the small default model's weights and a 4 GiB KV cache
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


def engine_mem_mb(config: dict[str, Any], attempt: int) -> int:
    """Host memory of a vLLM job, growing with each retry (``attempt`` counts from 1): on the CPU the weights and a
    4 GiB KV cache of the small default model; on GPUs besides what loading a shard of the weights takes per GPU."""
    return (CPU_ENGINE_MEM_MB + MEM_MB_PER_GPU * engine_gpus(config)) * attempt


def engine_runtime(attempt: int) -> int:
    """Minutes a vLLM job may run, growing with each retry (``attempt`` counts from 1)."""
    return ENGINE_RUNTIME_MINUTES * attempt
