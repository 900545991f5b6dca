"""What a vLLM job asks of the machine (tempcreativity.resources): GPUs, CPUs, memory and minutes per device,
retry attempt and judge routing, as the workflow's rules ask for them."""

from __future__ import annotations

import copy

import pytest

from conftest import SCHEMA
from tempcreativity.cluster import cluster_engine_cpus
from tempcreativity.config import validate_config
from tempcreativity.resources import engine_gpus, engine_mem_mb, engine_runtime, engine_threads, judge_threads

CPU = {"experiment": "x", "model": {"path": "embedded"}}
GPU = {"experiment": "x", "model": {"path": "embedded", "device": "gpu", "tensor_parallel_size": 4}}
# Two models: the job's engine serves each in turn, so it asks for what the larger needs.
LARGE = {"id": "large", "path": "embedded", "device": "gpu", "tensor_parallel_size": 2}
MIXED = {"experiment": "x", "models": [{"id": "small", "path": "embedded"}, LARGE]}


def config(base: dict, **sections) -> dict:
    return validate_config(copy.deepcopy(base) | sections, SCHEMA)


def test_a_job_asks_for_the_gpus_of_its_largest_gpu_model():
    assert engine_gpus(config(CPU)) == 0
    assert engine_gpus(config(GPU)) == 4
    assert engine_gpus(config(MIXED)) == 2


def test_an_engine_takes_every_core_on_the_cpu_and_four_per_gpu():
    assert engine_threads(config(CPU), cores=6) == 6
    assert engine_threads(config(CPU), cores=None) == cluster_engine_cpus() <= 8  # a cluster run without --cores
    assert engine_threads(config(GPU), cores=6) == engine_threads(config(GPU), cores=None) == 16
    assert engine_threads(config(MIXED), cores=64) == 8


@pytest.mark.parametrize(
    "base, judge, shards, expected",
    [
        (CPU, {"enabled": True}, 1, 1),  # the generation job asked every question: the judge's job only collects
        (CPU, {"enabled": True}, 2, 6),  # the other shard's job did not rate the study's stories
        (CPU, {"enabled": False}, 1, 6),
        (CPU, {"enabled": True, "method": "sample"}, 1, 6),  # sampled answers: the judge's own engine
        (CPU, {"enabled": True, "model": "some/judge"}, 1, 6),  # another model: the judge's own engine
        (GPU, {"enabled": True}, 1, 16),  # on GPUs an engine job's
    ],
)
def test_the_judges_job_takes_one_core_only_where_the_generation_job_rated_every_story(base, judge, shards, expected):
    assert judge_threads(config(base, judge=judge), shards, cores=6) == expected


def test_memory_and_minutes_grow_with_each_retry():
    assert [engine_mem_mb(config(CPU), attempt) for attempt in (1, 2, 3)] == [7096, 14192, 21288]  # 3000 + 4 GiB
    assert [engine_mem_mb(config(GPU), attempt) for attempt in (1, 2)] == [72000, 144000]  # 16 GB per GPU more
    assert engine_mem_mb(config(MIXED), 1) == 40000
    assert [engine_runtime(attempt) for attempt in (1, 2)] == [120, 240]


def test_a_cpu_generation_job_asks_for_its_kv_cache_not_4_gib(tmp_path):
    """The engine's KV cache holds the shard's stories that run at once (tempcreativity.engine.cpu_kv_cache_bytes),
    so the job asks for that: the default run's 71 stories of 256 tokens of SmolLM2-135M in float32 (46,080 bytes a
    token) need 1.2 GiB, not 4. Unknown sizes, and the judge asking on the same engine, keep the 4 GiB."""
    import json

    from tempcreativity.resources import model_kv_bytes_per_token

    default = config(CPU)
    assert default["decoding"]["max_tokens"] == 256
    assert engine_mem_mb(default, 1, stories=71, kv_bytes_per_token=46_080) == 3000 + -(-71 * 384 * 46_080 // 2**20)
    assert engine_mem_mb(default, 2, stories=71, kv_bytes_per_token=46_080) == 2 * 4199
    assert engine_mem_mb(default, 1, stories=100_000, kv_bytes_per_token=46_080) == 7096, "256 at once, 4 GiB at most"
    assert engine_mem_mb(default, 1, stories=71, kv_bytes_per_token=None) == 7096
    judged = config(CPU, judge={"enabled": True})
    assert engine_mem_mb(judged, 1, stories=71, kv_bytes_per_token=46_080) == 7096

    models_dir = tmp_path / "models"
    assert model_kv_bytes_per_token(default, models_dir) is None, "not converted yet"
    (models_dir / "smollm2-135m-instruct").mkdir(parents=True)
    shape = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}
    (models_dir / "smollm2-135m-instruct" / "config.json").write_text(json.dumps(shape))
    assert model_kv_bytes_per_token(default, models_dir) == 46_080


def test_analysis_jobs_ask_for_memory_that_grows_with_the_grids_tokens():
    """Measured at sweep scale (benchmarks/bench_sweep.py), the report and the gathering of the stories grow with the
    tokens: the default run asks for the base, a 100,000-story grid of 1,000-token stories for 9 GB (the report);
    a retry doubles it."""
    from tempcreativity.resources import ANALYSIS_BASE_MEM_MB, analysis_mem_mb

    default = config(CPU)
    assert analysis_mem_mb(default, 71, "build_report", 1) == ANALYSIS_BASE_MEM_MB + 2  # 71 x 256 tokens: 1.3 MiB
    large = config(CPU, decoding={"max_tokens": 1000})
    assert analysis_mem_mb(large, 100_000, "build_report", 1) == 9_000
    assert analysis_mem_mb(large, 100_000, "collect_generations", 2) == 2 * 8_000
    assert analysis_mem_mb(large, 100_000, "plot_figures", 1) == 3_000
