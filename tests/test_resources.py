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
    assert [engine_mem_mb(config(CPU), attempt) for attempt in (1, 2, 3)] == [8000, 16000, 24000]
    assert [engine_mem_mb(config(GPU), attempt) for attempt in (1, 2)] == [72000, 144000]  # 16 GB per GPU more
    assert engine_mem_mb(config(MIXED), 1) == 40000
    assert [engine_runtime(attempt) for attempt in (1, 2)] == [120, 240]
