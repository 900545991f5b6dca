"""The table of sampler axes: what it derives keeps every existing config's seeds, story ids, cache keys and
generations table exactly as they were (values pinned from the code before the table existed), and the schema
holds every axis under decoding and sweep with the table's default."""

from __future__ import annotations

import pytest

from conftest import REPO, SCHEMA
from tempcreativity.cache import cache_key
from tempcreativity.config import load_config, load_schema
from tempcreativity.embedding import embedder_identity
from tempcreativity.generation import GENERATIONS_SCHEMA, sampling_settings, story_identity
from tempcreativity.grid import expand_grid, split_into_shards

MANIFEST = {"sha256": "0" * 64}
MODEL = {"dtype": "float32", "max_model_len": 2048}
FINGERPRINT = {"vllm": "0.0", "device": "cpu"}
PROMPT_IDS = [1, 2, 3]

# Per config (config/config.yaml with an override file, as `snakemake --configfile`): the grid's size and shard
# digest, then (story id, vLLM seed, story cache key) of its first, second, middle and last story.
PINNED = {
    (): (
        "71 stories, sha256 8aa2de41d58a021b",
        [
            ("story:exemplar", None, "a37810ff1f7a78f00f71059984e18fe6868c96911d5892c6d268a07125b5ff74"),
            ("story:T0.01:s0", 6917584986478839112, "530bc9866c4edf8d46ed6b4f4b84eef74c6f3a7c62c8bf6c003834e9aca9d5f6"),
            ("story:T1:s4", 1149595195608923694, "dcdab25318fc427f0d6fbc8c10af0ff4929426a9e9da21608d202c377fd91809"),
            ("story:T2:s9", 4806416520472187874, "93ed3d5ebc6e5140491fd65a456cc1a1d1ce2c9731409ea2c55e6aa03f351da1"),
        ],
    ),
    ("config/samplers.yaml",): (
        "73 stories, sha256 54bcb171b3bc7684",
        [
            ("story:exemplar", None, "43553186411a0f1ae023ab9640fa97071e53ebd48043d834b39119f23b1f896a"),
            (
                "story:T0.7:top_p0.9:min_p0:s0",
                2703170356060958131,
                "73ba0056b6f433d6f8fb61fe2682d835d815ca7c94714877882a37ca980c6e43",
            ),
            (
                "story:T1.5:top_p0.9:min_p0.1:s5",
                4855003502683139498,
                "2887de1014db0fda54fde438c6206aa8ffa2a4a367fb432adfcf82c660affc0d",
            ),
            (
                "story:T1.5:top_p1:min_p0.1:s5",
                6208837578349474885,
                "6258d74322c64cb41d07f379a71c6e672ac70fea2c437f00de963c9ed035ff44",
            ),
        ],
    ),
    ("config/samplers-gpu.yaml",): (
        "12603 stories, sha256 68d17a3c48a3ff11",
        [
            ("llama2-7b:story:exemplar", None, "b3d89521d5bb12e651d0afbebeb3c226fdbb84a811e79f3f3029d09503964525"),
            (
                "llama2-7b:story:T0.01:top_p0.9:min_p0:s0",
                5101969844101685348,
                "24b7edddadc82b602262bb8a99ece81f95d595647dfdaa6ff5441e12d840c738",
            ),
            (
                "llama3.1-8b:story:T2:top_p0.9:min_p0.1:s99",
                1686816564390496414,
                "92813a6d3dad62e0728e88d93cf065fb14c25492ddce8de137a822d22bb8782a",
            ),
            (
                "qwen2.5-32b:story:T2:top_p1:min_p0.1:s99",
                3986330667984075966,
                "d979c2b37a85f457dda8c8b2abb5e7c53f95a23ff06206ed93b7835d5bd3c725",
            ),
        ],
    ),
    ("config/paper.yaml",): (
        "701 stories, sha256 71fa625f705d2f05",
        [  # truncation raw
            ("story:exemplar", None, "3ce356ca0e7be3edcc04eae822053f948c6e4cc3a073d77fc3cadb1c5f887471"),
            ("story:T0.01:s0", 3293923441241225473, "62b8c222962be6ca5be80a7917a4fe01682d206a87fcc28f50f62a302e374617"),
            ("story:T1:s49", 5261415286572561030, "d3b443fd816bf541a0f5378e42276ec2c467b5b43b6418132f5c9190bc604f18"),
            ("story:T2:s99", 3799836423944460505, "b00d5b2ec4fd7fe56b97631fd40ed639c909e86a53e4c2da14e907952d393ce2"),
        ],
    ),
}
GENERATIONS_COLUMNS = [
    ("story_id", "String"),
    ("experiment", "String"),
    ("model", "String"),
    ("model_sha256", "String"),
    ("model_id", "String"),
    ("prompt_id", "String"),
    ("prompt_text", "String"),
    ("system", "String"),
    ("assistant_prefix", "String"),
    ("prompt_format", "String"),
    ("temperature", "Float64"),
    ("seed", "Int64"),
    ("is_exemplar", "Boolean"),
    ("sampling_seed", "Int64"),
    ("top_k", "Int32"),
    ("top_p", "Float64"),
    ("min_p", "Float64"),
    ("max_tokens", "Int32"),
    ("repetition_penalty", "Float64"),
    ("truncation", "String"),
    ("presence_penalty", "Float64"),
    ("frequency_penalty", "Float64"),  # added with those axes: a column per axis
    ("stop", "List(String)"),
    ("cache_key", "String"),
    ("text", "String"),
    ("token_ids", "List(Int32)"),
    ("logprobs", "List(Float64)"),
    ("top_logprobs", "List(Float64)"),
    ("cumulative_logprob", "Float64"),
    ("num_tokens", "Int32"),
    ("finish_reason", "String"),
    ("prompt_num_tokens", "Int32"),
]


def story_key(request, decoding) -> str:
    setting = sampling_settings(request, decoding)
    return cache_key(story_identity(MANIFEST, MODEL, PROMPT_IDS, setting, request.sampler["truncation"], FINGERPRINT))


@pytest.mark.parametrize("overrides", list(PINNED))
def test_existing_configs_keep_their_seeds_story_ids_and_cache_keys(overrides):
    config = load_config(REPO / "config" / "config.yaml", SCHEMA, *(REPO / path for path in overrides))
    grid = expand_grid(config)
    (plan,) = split_into_shards(grid, 1)  # the digest hashes every request's fields
    digest, stories = PINNED[overrides]
    assert plan.digest == digest
    picked = [grid[0], grid[1], grid[len(grid) // 2], grid[-1]]
    assert [(r.story_id, r.sampling_seed, story_key(r, config["decoding"])) for r in picked] == stories


def test_the_generations_table_and_the_embedding_key_stay_as_they_were():
    assert [(name, str(dtype)) for name, dtype in GENERATIONS_SCHEMA.items()] == GENERATIONS_COLUMNS
    identity = embedder_identity("model", MANIFEST, "float32")
    key = "ff0a92a80df7fb964940fabc7e8daba5bbb0dacdbf83c18a4055c7b15c0f744d"
    assert cache_key({**identity, "text": "Once upon a time."}) == key


def test_the_schema_sets_and_sweeps_every_axis_with_the_tables_default():
    from tempcreativity.axes import AXES

    properties = load_schema(SCHEMA)["properties"]
    decoding, sweep = properties["decoding"]["properties"], properties["sweep"]["properties"]
    assert sorted(sweep) == sorted(axis.name for axis in AXES)
    schema_type = {int: "integer", float: "number", str: "string"}
    for axis in AXES:
        assert decoding[axis.name]["default"] == axis.default
        assert decoding[axis.name]["type"] == schema_type[type(axis.default)]


def test_an_axis_added_later_enters_seeds_ids_and_keys_only_off_its_default(monkeypatch):
    """The rule for every axis added after the first five, shown with a made-up row: at its default a story's
    seed, id and cache key are those of a table without it; any other value gives other ones."""
    import polars as pl

    from tempcreativity import axes
    from tempcreativity.grid import axes_label, independent_seed

    cell = {"top_k": 50, "top_p": 0.9, "min_p": 0.0, "repetition_penalty": 1.0, "truncation": "scaled"}
    seed, label = independent_seed("story", 1.0, cell, 0), axes_label(cell, ["top_p"])
    arguments = {"top_k": 50, "top_p": 0.9, "min_p": 0.0, "repetition_penalty": 1.0, "seed": 7}
    added = axes.SamplerAxis("new_p", pl.Float64, 1.0, "new-p", True, "new_p")
    monkeypatch.setattr(axes, "AXES", (*axes.AXES, added))
    at_default, off_default = cell | {"new_p": 1.0}, cell | {"new_p": 0.5}
    assert independent_seed("story", 1.0, at_default, 0) == seed != independent_seed("story", 1.0, off_default, 0)
    assert axes_label(at_default, ["top_p", "new_p"]) == label == "top_p0.9"
    assert axes_label(off_default, ["top_p", "new_p"]) == "top_p0.9:new_p0.5"
    assert axes.keyed_arguments(arguments | {"new_p": 1.0}) == arguments
    assert axes.keyed_arguments(arguments | {"new_p": 0.5}) == arguments | {"new_p": 0.5}


# Per config: the MLflow parent's key (tracking.result_key, with a made-up sha256) and the report's sampler text,
# pinned from the code before the penalties were added.
PARENT_KEYS = {
    (): ("e265bc331fcbdaac", "top-k 50, top-p 1, min-p 0, repetition penalty 1"),
    ("config/samplers.yaml",): (
        "23b2bf319e748267",
        "top-k 50, top-p swept over 0.9, 1, min-p swept over 0, 0.1, repetition penalty 1",
    ),
    ("config/paper.yaml",): ("26d70625c5139d53", "top-k 50, top-p 1, min-p 0.05, repetition penalty 1"),
}


@pytest.mark.parametrize("overrides", list(PARENT_KEYS))
def test_existing_configs_keep_their_mlflow_parent_and_the_reports_sampler_text(overrides):
    import polars as pl

    from tempcreativity.report import sampler_text
    from tempcreativity.tracking import key_params, result_key

    config = load_config(REPO / "config" / "config.yaml", SCHEMA, *(REPO / path for path in overrides))
    stories = pl.DataFrame([request.sampler for request in expand_grid(config)])
    assert (result_key(config, "0" * 64), sampler_text(stories, config)) == PARENT_KEYS[overrides]
    assert not {"decoding.presence_penalty", "decoding.frequency_penalty"} & set(key_params(config))


def test_a_swept_penalty_leaves_the_unpenalised_stories_as_they_were():
    """sweep.frequency_penalty [0, 1.5]: its stories at 0 have the ids, vLLM seeds and cache keys of the same config
    without the sweep; those at 1.5 are named by it, draw other seeds and pass it to vLLM."""
    import polars as pl

    from tempcreativity.report import sampler_text
    from tempcreativity.tracking import result_key

    plain = load_config(REPO / "config" / "config.yaml", SCHEMA)
    swept = load_config(REPO / "config" / "config.yaml", SCHEMA)
    swept["sweep"] = {"frequency_penalty": [0.0, 1.5]}
    swept["decoding"].pop("frequency_penalty")
    before, grid = expand_grid(plain), expand_grid(swept)
    assert len(grid) == 2 * len(before) - 1  # one exemplar
    unpenalised = [request for request in grid if request.sampler["frequency_penalty"] == 0.0]
    penalised = [request for request in grid if request.sampler["frequency_penalty"] == 1.5]

    def identity(request, decoding):
        return request.story_id, request.sampling_seed, story_key(request, decoding)

    assert [identity(r, swept["decoding"]) for r in unpenalised] == [identity(r, plain["decoding"]) for r in before]
    assert penalised[0].story_id == "story:T0.01:frequency_penalty1.5:s0"
    assert not {r.sampling_seed for r in penalised} & {r.sampling_seed for r in before}
    assert sampling_settings(penalised[0], swept["decoding"])["frequency_penalty"] == 1.5
    assert result_key(swept, "0" * 64) == result_key(plain, "0" * 64)  # a sweep grows the grid: the same parent
    stories = pl.DataFrame([request.sampler for request in grid])
    assert sampler_text(stories, swept).endswith("frequency penalty swept over 0, 1.5")
