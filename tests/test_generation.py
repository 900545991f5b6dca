"""Generation helpers without the engine: prompts through the real chat template, sampling and engine settings,
and assembling shard tables. (The engine itself runs in test_pipeline.py, and here once, for a swept sampler
axis.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from conftest import SCHEMA
from tempcreativity.axes import SAMPLER_AXES
from tempcreativity.cache import cache_key
from tempcreativity.engine import CPU_MAX_BATCHED_TOKENS, check_context, check_engine_args, engine_arguments
from tempcreativity.errors import ConfigError
from tempcreativity.generation import (
    GENERATIONS_SCHEMA,
    check_prompt_lengths,
    kept_tokens,
    order_stories,
    render_prompt_ids,
    sampling_settings,
    story_identity,
)
from tempcreativity.grid import StoryRequest

DECODING = {
    "top_k": 50,
    "top_p": 1.0,
    "min_p": 0.0,
    "max_tokens": 32,
    "repetition_penalty": 1.0,
    "truncation": "scaled",
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "stop": [],
}
SAMPLING = {name: value for name, value in DECODING.items() if name != "truncation"}


def request(**changes) -> StoryRequest:
    """A story's request; a change named after a sampler axis goes into its ``sampler``."""
    fields = dict(
        prompt_id="story",
        prompt_text="Write a story.",
        system=None,
        assistant_prefix="",
        prompt_format="chat",
        temperature=1.0,
        seed=3,
        is_exemplar=False,
    )
    sampler = {name: changes.pop(name) for name in list(changes) if name in SAMPLER_AXES}
    fields.update(changes)
    return StoryRequest(**fields, sampler=sampler)


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


def test_exemplar_is_greedy_and_stories_pass_their_sampling_seed_to_vllm():
    exemplar = sampling_settings(request(temperature=0.0, seed=None, is_exemplar=True), DECODING)
    assert exemplar["temperature"] == 0.0 and exemplar["seed"] is None and exemplar["logprobs"] == 1
    story = sampling_settings(request(temperature=1.5, seed=7, sampling_seed=123456789), DECODING)
    assert story == {**SAMPLING, "temperature": 1.5, "seed": 123456789, "logprobs": 1}


def test_raw_truncation_is_min_p_to_the_power_one_over_t():
    """Raw min-p m at temperature T keeps the tokens with p/p_max >= m; after temperature those are the tokens
    with (p/p_max)^(1/T) >= m^(1/T), which is vLLM's min-p m^(1/T)."""
    decoding = {**DECODING, "stop": ["user", "system"]}

    def raw(temperature, truncation="raw"):
        return sampling_settings(request(temperature=temperature, truncation=truncation, min_p=0.05), decoding)

    assert raw(2.0)["min_p"] == pytest.approx(0.05**0.5)
    assert raw(0.5)["min_p"] == pytest.approx(0.05**2)
    assert raw(1.0)["min_p"] == pytest.approx(0.05)
    assert raw(2.0, "scaled")["min_p"] == 0.05
    assert raw(2.0)["stop"] == ["user", "system"]
    assert raw(2.0)["top_k"] == 50  # top-k keeps the same tokens either way


def test_the_sampler_settings_are_the_cells_and_max_tokens_and_stop_the_configs():
    """A cell of a sweep carries its own top-k, top-p, min-p and penalties; every cell shares max_tokens and the
    stop strings of decoding."""
    cell = request(top_k=10, top_p=0.9, min_p=0.1, repetition_penalty=1.2, presence_penalty=-0.5, frequency_penalty=1.5)
    settings = sampling_settings(cell, {**DECODING, "max_tokens": 7, "stop": ["END"]})
    assert {name: value for name, value in settings.items() if name not in ("temperature", "seed", "logprobs")} == {
        "top_k": 10,
        "top_p": 0.9,
        "min_p": 0.1,
        "repetition_penalty": 1.2,
        "presence_penalty": -0.5,
        "frequency_penalty": 1.5,
        "max_tokens": 7,
        "stop": ["END"],
    }


def test_a_raw_prompt_is_tokenised_exactly_as_written(embedded_tokenizer):
    study = request(prompt_text="[INST]Write a story.[/INST]", assistant_prefix="Here it is:\n\n", prompt_format="raw")
    ids = render_prompt_ids(embedded_tokenizer, study)
    assert ids == embedded_tokenizer("[INST]Write a story.[/INST]Here it is:\n\n")["input_ids"]
    assert embedded_tokenizer.decode(ids) == "[INST]Write a story.[/INST]Here it is:\n\n"  # no template, no system


class Completion:
    """What vLLM returns for one finished story (the fields kept_tokens reads)."""

    def __init__(self, token_ids, text, finish_reason, stop_reason):
        self.token_ids, self.text, self.finish_reason, self.stop_reason = token_ids, text, finish_reason, stop_reason


def test_a_story_keeps_exactly_the_tokens_of_its_text(embedded_tokenizer):
    words = embedded_tokenizer("Once upon a time the user said hello.")["input_ids"]
    # stopped by "user": vLLM cuts the text before it but keeps every generated token
    stopped = Completion(words, "Once upon a time the ", "stop", "user")
    kept = kept_tokens(embedded_tokenizer, stopped)
    assert embedded_tokenizer.decode(words[:kept]) == "Once upon a time the"  # " user" straddles: dropped with it
    # a stop string inside a word ("system" in "ecosystem") ends the story there, as llama.cpp's did
    eco = embedded_tokenizer("A tiny ecosystem grew.")["input_ids"]
    kept = kept_tokens(embedded_tokenizer, Completion(eco, "A tiny eco", "stop", "system"))
    assert "A tiny eco".startswith(embedded_tokenizer.decode(eco[:kept])) and kept < len(eco)
    # ended by the end-of-sequence token, which vLLM keeps in token_ids: not part of the story
    eos = words + [embedded_tokenizer.eos_token_id]
    assert kept_tokens(
        embedded_tokenizer, Completion(eos, "Once upon a time the user said hello.", "stop", None)
    ) == len(words)
    assert kept_tokens(embedded_tokenizer, Completion(words, "Once upon...", "length", None)) == len(words)


def test_cpu_engine_budget_never_splits_a_prompt_and_engine_args_override():
    model = {"dtype": "bfloat16", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    cpu = engine_arguments(model, Path("/m"), max_prompt_tokens=200, cpu=True)
    assert cpu["max_num_batched_tokens"] >= cpu["max_num_seqs"] * 200
    assert cpu["enforce_eager"] is True and cpu["kv_cache_memory_bytes"] > 0
    assert cpu["block_size"] == 32, "small KV blocks: prefix caching reuses all but the last 31 tokens of a prefix"
    overridden = engine_arguments({**model, "engine_args": {"enforce_eager": False}}, Path("/m"), 40, cpu=True)
    assert overridden["enforce_eager"] is False
    gpu = engine_arguments({**model, "tensor_parallel_size": 4}, Path("/m"), 40, cpu=False)
    assert gpu["tensor_parallel_size"] == 4 and "kv_cache_memory_bytes" not in gpu and "block_size" not in gpu


def test_jobs_preload_tcmalloc_and_intel_openmp_where_present(tmp_path, monkeypatch):
    from tempcreativity import engine

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libiomp5.so").write_bytes(b"")
    tcmalloc = tmp_path / "libtcmalloc_minimal.so.4"
    tcmalloc.write_bytes(b"")
    monkeypatch.setattr(engine, "TCMALLOC_PATHS", (str(tmp_path / "absent.so"), str(tcmalloc)))
    monkeypatch.setattr("sys.prefix", str(tmp_path))
    assert engine.preload_libraries() == [str(tcmalloc), str(tmp_path / "lib" / "libiomp5.so")]
    preloaded = engine.preloaded_environment({"PATH": "/bin", "LD_PRELOAD": "/x/libfoo.so"})
    assert preloaded["LD_PRELOAD"] == f"{tcmalloc}:{tmp_path}/lib/libiomp5.so:/x/libfoo.so"
    assert engine.preloaded_environment(preloaded) == preloaded, "applied twice, listed once"
    assert engine.preloaded_environment({"TEMPCREATIVITY_PRELOAD": "0"}) == {"TEMPCREATIVITY_PRELOAD": "0"}
    user_runtime = {"LD_PRELOAD": "/opt/libgomp.so.1"}
    assert engine.preloaded_environment(user_runtime) == user_runtime, "never a second OpenMP runtime"
    monkeypatch.setattr(engine, "TCMALLOC_PATHS", ())
    (tmp_path / "lib" / "libiomp5.so").unlink()
    assert engine.preload_libraries() == [] and engine.preloaded_environment({}) == {}


def test_the_engine_fingerprint_read_without_importing_vllm_is_vllms_own():
    """The judge's job keys its cache by the engine fingerprint, read from the installed package's metadata so that
    a job whose answers are all cached does not import vLLM: it must be exactly what vLLM itself says."""
    from tempcreativity.engine import engine_fingerprint, installed_engine_fingerprint, on_cpu

    assert installed_engine_fingerprint() == engine_fingerprint(on_cpu())


def test_cpu_engine_budget_is_bounded_for_long_prompts():
    """A 25k-token prompt used to set the step budget to 256 x 25k tokens (past 13 GB in seconds)."""
    model = {"dtype": "float32", "max_model_len": 32768, "tensor_parallel_size": 1, "engine_args": {}}
    arguments = engine_arguments(model, Path("/m"), max_prompt_tokens=25_000, cpu=True)
    assert arguments["max_num_batched_tokens"] == max(CPU_MAX_BATCHED_TOKENS, 32768)
    assert arguments["max_num_seqs"] * 25_000 <= arguments["max_num_batched_tokens"]  # still no prompt is split
    assert arguments["max_num_seqs"] >= 1
    default = engine_arguments({**model, "max_model_len": 2048}, Path("/m"), max_prompt_tokens=40, cpu=True)
    assert (default["max_num_seqs"], default["max_num_batched_tokens"]) == (256, 16384)  # the default is unchanged


def test_cpu_kv_cache_holds_the_jobs_sequences_and_no_more(tmp_path):
    """vLLM's CPU engine allocates (and touches) its whole KV cache at start: 4 GiB of resident memory for the 31
    study stories. The cache is sized to the sequences that can run at once, in whole blocks, at least one
    max_model_len sequence (vLLM refuses less), at most 4 GiB; 4 GiB where the job or the model does not say."""
    from tempcreativity.engine import (
        CPU_BLOCK_SIZE,
        CPU_KV_CACHE_BYTES,
        cpu_kv_cache_bytes,
        kv_cache_bytes_per_token,
    )

    smollm2 = {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}
    (tmp_path / "config.json").write_text(json.dumps(smollm2))
    per_token = 2 * 30 * 3 * 64 * 4  # keys and values x layers x KV heads x head size x float32
    assert kv_cache_bytes_per_token(tmp_path, "float32") == per_token == 46_080
    assert kv_cache_bytes_per_token(tmp_path, "bfloat16") == per_token // 2
    assert kv_cache_bytes_per_token(tmp_path / "absent", "float32") is None

    def blocks(tokens):
        return -(-tokens // CPU_BLOCK_SIZE) + 1  # whole blocks, and one to spare

    lengths = [300, 100, 33]  # three stories: prompt + max_tokens
    assert cpu_kv_cache_bytes(tmp_path, "float32", lengths, 256, 64) == sum(map(blocks, lengths)) * 32 * per_token
    assert cpu_kv_cache_bytes(tmp_path, "float32", lengths, 1, 64) == blocks(300) * 32 * per_token, "one at a time"
    assert cpu_kv_cache_bytes(tmp_path, "float32", lengths, 256, 2048) == blocks(2048) * 32 * per_token, "vLLM's floor"
    assert cpu_kv_cache_bytes(tmp_path, "float32", [4096] * 256, 256, 4096) == CPU_KV_CACHE_BYTES, "at most 4 GiB"
    assert cpu_kv_cache_bytes(tmp_path, "float32", None, 256, 2048) == CPU_KV_CACHE_BYTES, "the job did not say"
    assert cpu_kv_cache_bytes(tmp_path / "absent", "float32", lengths, 256, 64) == CPU_KV_CACHE_BYTES

    model = {"dtype": "float32", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    sized = engine_arguments(model, tmp_path, max_prompt_tokens=40, cpu=True, sequence_lengths=[296] * 71)
    assert sized["kv_cache_memory_bytes"] == 71 * blocks(296) * 32 * per_token  # the default run: 0.99 GiB
    overridden = {**model, "engine_args": {"kv_cache_memory_bytes": 2 << 30}}
    assert engine_arguments(overridden, tmp_path, 40, cpu=True, sequence_lengths=[296])["kv_cache_memory_bytes"] == (
        2 << 30
    )


def test_engines_that_only_read_prompts_take_smaller_steps():
    """The model embedder and teacher forcing hold every token of a step's activations (and, for prompt
    log-probabilities, its logits over the whole vocabulary) at once: 8,192 tokens a step, not 65,536 (the 225-story
    grid's generation job peaked at 4.7 GB with the embedder's steps of 65,536 tokens, 2.7 GB with 8,192; the vectors
    are the same). No prompt is split still."""
    from tempcreativity.engine import CPU_PREFILL_BATCHED_TOKENS

    model = {"dtype": "float32", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    reading = engine_arguments(model, Path("/m"), max_prompt_tokens=600, cpu=True, prefill_only=True)
    generating = engine_arguments(model, Path("/m"), max_prompt_tokens=600, cpu=True)
    assert reading["max_num_batched_tokens"] == CPU_PREFILL_BATCHED_TOKENS == 8192
    assert generating["max_num_batched_tokens"] == CPU_MAX_BATCHED_TOKENS
    assert reading["max_num_seqs"] * 600 <= reading["max_num_batched_tokens"]
    long = engine_arguments({**model, "max_model_len": 32768}, Path("/m"), 25_000, cpu=True, prefill_only=True)
    assert long["max_num_batched_tokens"] == 32768 and long["max_num_seqs"] == 1


def test_everything_that_shapes_a_story_is_in_its_cache_key():
    model = {"dtype": "float32", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    manifest, fingerprint = {"sha256": "abc"}, {"vllm": "0.32.0", "device": "cpu"}
    setting = sampling_settings(request(), DECODING)

    def key(model=model, ids=(1, 2, 3), setting=setting, truncation="scaled"):
        return cache_key(story_identity(manifest, model, list(ids), setting, truncation, fingerprint))

    base = key()
    assert key(model={**model, "max_model_len": 64}) != base, "a story cut by a short context must not be reused"
    assert key(model={**model, "dtype": "bfloat16"}) != base
    assert key(model={**model, "engine_args": {"quantization": "fp8"}}) != base
    assert key(ids=(1, 2, 4)) != base and key(setting={**setting, "seed": 4}) != base
    assert key(truncation="raw") != base and key(setting={**setting, "stop": ["user"]}) != base
    neutral = {"gpu_memory_utilization": 0.5, "max_num_seqs": 8, "kv_cache_memory_bytes": 1 << 30}
    assert key(model={**model, "engine_args": neutral}) == base, "memory and scheduling settings keep the cache"


def test_a_prompt_without_room_for_max_tokens_is_refused_before_any_engine(embedded_tokenizer):
    long = request(prompt_id="long", prompt_text="Write a story. " * 5000)
    ids = [render_prompt_ids(embedded_tokenizer, r) for r in (request(), long)]
    model = {"max_model_len": 2048}
    check_prompt_lengths([request(), request()], [ids[0], ids[0]], model, DECODING)
    with pytest.raises(ConfigError) as raised:
        check_prompt_lengths([request(), long], ids, model, DECODING)
    message = str(raised.value)
    assert f"prompt 'long' is {len(ids[1])} tokens" in message
    assert "model.max_model_len 2048 - decoding.max_tokens 32 leaves room for 2016" in message


def test_unknown_engine_args_and_a_context_beyond_the_model_are_refused(tmp_path):
    check_engine_args({"enforce_eager": True, "gpu_memory_utilization": 0.9, "max_num_seqs": 4})
    with pytest.raises(ConfigError, match=r"model.engine_args: unknown vllm.LLM argument\(s\) 'enforce_eagre'"):
        check_engine_args({"enforce_eagre": True})
    (tmp_path / "config.json").write_text('{"max_position_embeddings": 8192}')
    check_context({"max_model_len": 8192}, tmp_path)
    with pytest.raises(ConfigError, match=r"model.max_model_len: 9000 is longer than .* 8192.*at most 8192"):
        check_context({"max_model_len": 9000}, tmp_path)


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


@pytest.mark.parametrize(("environment", "expected"), [({}, "0"), ({"VLLM_TARGET_DEVICE": "cuda"}, "1")])
def test_engines_run_in_process_on_the_cpu_build_and_in_a_child_process_otherwise(environment, expected):
    """One engine per process on GPUs: the CUDA build keeps vLLM's own default (the engine core in a child process,
    which exits with its GPU memory); the CPU build runs it in-process. A value the user set is kept."""
    import subprocess
    import sys

    def mode(extra: dict) -> str:
        code = "import os, tempcreativity.engine; print(os.environ['VLLM_ENABLE_V1_MULTIPROCESSING'])"
        environ = {
            k: v for k, v in os.environ.items() if k not in ("VLLM_ENABLE_V1_MULTIPROCESSING", "VLLM_TARGET_DEVICE")
        }
        return subprocess.run(
            [sys.executable, "-c", code], env=environ | extra, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert mode(environment) == expected
    assert mode(environment | {"VLLM_ENABLE_V1_MULTIPROCESSING": "1"}) == "1"


def test_a_swept_frequency_penalty_is_generated_end_to_end(tiny_run, tmp_path):
    """An axis added as one row of axes.AXES plus its schema entries works end to end: sweep.frequency_penalty
    [0, 1.5] is validated, expanded and generated with the real engine as a generation job does it
    (generate_stories, with a cache of its own). The stories at 0 are those of the same config without the sweep
    (same ids, found in the cache); the penalised ones are named by the penalty and differ from them."""
    import json

    from tempcreativity.config import validate_config
    from tempcreativity.generation import generate_stories
    from tempcreativity.grid import expand_grid

    def config(**changes) -> dict:
        prompt = {"id": "story", "text": "Write a story.", "assistant_prefix": "Here it is:\n\n"}
        written = {
            "experiment": "penalty",
            "model": {"path": "embedded"},
            "prompts": [prompt],
            "temperatures": [1.0],
            "seeds": 2,
            "decoding": {"max_tokens": 24},
            **changes,
        }
        return validate_config(written, SCHEMA)

    swept, plain = config(sweep={"frequency_penalty": [0.0, 1.5]}), config()
    manifest = json.loads((tiny_run / "resources/models/smollm2-135m-instruct.json").read_text())
    manifests = {swept["models"][0]["id"]: manifest | {"folder": str(tiny_run / manifest["folder"])}}
    table, stats = generate_stories(expand_grid(swept), swept, manifests, tmp_path / "cache")
    assert stats["generated"] == 5 and table["frequency_penalty"].dtype == pl.Float64

    stories = table.filter(~pl.col("is_exemplar"))
    assert sorted(set(stories["frequency_penalty"])) == [0.0, 1.5]
    unpenalised = stories.filter(pl.col("frequency_penalty") == 0.0)
    penalised = stories.filter(pl.col("frequency_penalty") == 1.5)
    plain_grid = expand_grid(plain)
    assert unpenalised["story_id"].to_list() == ["story:T1:s0", "story:T1:s1"]
    assert unpenalised["story_id"].to_list() == [request.story_id for request in plain_grid if not request.is_exemplar]
    assert penalised["story_id"].to_list() == ["story:T1:frequency_penalty1.5:s0", "story:T1:frequency_penalty1.5:s1"]

    # The config without the sweep finds every story of its own in the cache the sweep filled: same cache keys.
    plain_table, plain_stats = generate_stories(plain_grid, plain, manifests, tmp_path / "cache")
    assert plain_stats["generated"] == 0
    assert plain_table["token_ids"].to_list() == table.filter(pl.col("frequency_penalty") == 0.0)["token_ids"].to_list()

    different = [a != b for a, b in zip(penalised["token_ids"].to_list(), unpenalised["token_ids"].to_list())]
    assert any(different), "the penalised stories differ from the unpenalised ones at the same seed index"
