"""Generation helpers without the engine: prompts through the real chat template, sampling and engine settings,
and assembling shard tables. (The engine itself runs in test_pipeline.py.)"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tempcreativity.errors import ConfigError
from tempcreativity.generation import (
    GENERATIONS_SCHEMA,
    engine_arguments,
    order_stories,
    render_prompt_ids,
    sampling_settings,
)
from tempcreativity.grid import StoryRequest

DECODING = {"top_k": 50, "top_p": 1.0, "min_p": 0.0, "max_tokens": 32, "repetition_penalty": 1.0}


def request(**changes) -> StoryRequest:
    fields = dict(prompt_id="story", prompt_text="Write a story.", system=None, assistant_prefix="",
                  temperature=1.0, seed=3, is_exemplar=False)  # fmt: skip
    fields.update(changes)
    return StoryRequest(**fields)


def test_prompt_goes_through_the_chat_template_with_the_assistant_prefix(embedded_tokenizer):
    ids = render_prompt_ids(embedded_tokenizer, request(assistant_prefix="Here it is:\n\n"))
    text = embedded_tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert "<|im_start|>user\nWrite a story.<|im_end|>\n<|im_start|>assistant\n" in text
    assert text.endswith("assistant\nHere it is:\n\n")
    assert ids.count(embedded_tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3, "no doubled special tokens"


def test_system_message_replaces_the_template_default(embedded_tokenizer):
    text = embedded_tokenizer.decode(render_prompt_ids(embedded_tokenizer, request(system="You write fiction.")))
    assert text.startswith("<|im_start|>system\nYou write fiction.<|im_end|>") and "SmolLM" not in text


def test_model_without_chat_template_is_refused():
    class PlainTokenizer:
        chat_template = None

    with pytest.raises(ValueError, match="chat template"):
        render_prompt_ids(PlainTokenizer(), request())


def test_exemplar_is_greedy_and_unseeded_stories_keep_their_seed():
    exemplar = sampling_settings(request(temperature=0.0, seed=None, is_exemplar=True), DECODING)
    assert exemplar["temperature"] == 0.0 and exemplar["seed"] is None and exemplar["logprobs"] == 0
    story = sampling_settings(request(temperature=1.5, seed=7), DECODING)
    assert story == {**DECODING, "temperature": 1.5, "seed": 7, "logprobs": 0}


def test_cpu_engine_budget_never_splits_a_prompt_and_engine_args_override():
    model = {"dtype": "bfloat16", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    cpu = engine_arguments(model, Path("/m"), max_prompt_tokens=200, cpu=True)
    assert cpu["max_num_batched_tokens"] >= cpu["max_num_seqs"] * 200
    assert cpu["enforce_eager"] is True and cpu["kv_cache_memory_bytes"] > 0
    overridden = engine_arguments({**model, "engine_args": {"enforce_eager": False}}, Path("/m"), 40, cpu=True)
    assert overridden["enforce_eager"] is False
    gpu = engine_arguments({**model, "tensor_parallel_size": 4}, Path("/m"), 40, cpu=False)
    assert gpu["tensor_parallel_size"] == 4 and "kv_cache_memory_bytes" not in gpu


def test_engine_refuses_a_device_other_than_the_one_vllm_runs_on():
    model = {"dtype": "bfloat16", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    for device, cpu in (("auto", True), ("auto", False), ("cpu", True), ("gpu", False)):
        engine_arguments({**model, "device": device}, Path("/m"), 40, cpu=cpu)
    with pytest.raises(ConfigError, match=r"model.device is 'gpu'.*CPU build.*allowed: auto, cpu, gpu"):
        engine_arguments({**model, "device": "gpu"}, Path("/m"), 40, cpu=True)
    with pytest.raises(ConfigError, match=r"model.device is 'cpu'.*GPU build"):
        engine_arguments({**model, "device": "cpu"}, Path("/m"), 40, cpu=False)


def shard_table(story_ids: list[str]) -> pl.DataFrame:
    rows = [{name: None for name in GENERATIONS_SCHEMA} | {"story_id": story_id} for story_id in story_ids]
    return pl.DataFrame(rows, schema=GENERATIONS_SCHEMA)


def test_shards_are_ordered_like_the_grid():
    ordered = order_stories([shard_table(["b", "d"]), shard_table(["c", "a"])], ["a", "b", "c", "d"])
    assert ordered["story_id"].to_list() == ["a", "b", "c", "d"]
    assert ordered.schema == pl.Schema(GENERATIONS_SCHEMA)


@pytest.mark.parametrize("shards", [[["a"], ["b"]], [["a", "b", "c"], ["d", "d"]], [["a", "b"], ["c", "x"], ["d"]]])
def test_missing_duplicated_or_unexpected_stories_are_an_error(shards):
    with pytest.raises(ValueError, match="exactly once"):
        order_stories([shard_table(ids) for ids in shards], ["a", "b", "c", "d"])
