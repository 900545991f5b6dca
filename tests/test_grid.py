"""Grid expansion: temperatures, seeds, the exemplar, the order of the table, and stable shards."""

from __future__ import annotations

import copy

import pytest

from conftest import SCHEMA, TINY_CONFIG
from tempcreativity.config import validate_config
from tempcreativity.errors import ConfigError
from tempcreativity.grid import expand_grid, seeds, shard_of, split_into_shards, temperatures


def config_with(**changes):
    config = copy.deepcopy(TINY_CONFIG)
    config.update(changes)
    return validate_config(config, SCHEMA)


def test_linspace_spec_is_rounded_like_the_study():
    # the study reported numpy.linspace(0.001, 2.0, 7) rounded to 3 decimals: 0.001, 0.334, 0.667, 1.0, ...
    spec = {"start": 0.01, "stop": 2.0, "num": 7}
    assert temperatures(config_with(temperatures=spec)) == [0.01, 0.342, 0.673, 1.005, 1.337, 1.668, 2.0]
    spec = {"start": 0.0, "stop": 2.0, "num": 7, "decimals": 2}
    assert temperatures(config_with(temperatures=spec)) == [0.0, 0.33, 0.67, 1.0, 1.33, 1.67, 2.0]


def test_log_spec_and_list_are_sorted_and_unique():
    assert temperatures(config_with(temperatures={"start": 0.1, "stop": 1.0, "num": 3, "scale": "log"})) == [
        0.1,
        0.316,
        1.0,
    ]
    assert temperatures(config_with(temperatures=[1.5, 0.5, 1.0])) == [0.5, 1.0, 1.5]


def test_expanded_grid_below_vllm_floor_is_rejected():
    with pytest.raises(ConfigError, match="0.01"):
        temperatures({"temperatures": {"start": 0.001, "stop": 0.005, "num": 2, "decimals": 4}})


def test_seeds_count_and_list():
    assert seeds(config_with(seeds=3)) == [0, 1, 2]
    assert seeds(config_with(seeds=[7, 3])) == [3, 7]


def test_grid_has_one_greedy_exemplar_per_prompt_then_temperature_then_seed():
    grid = expand_grid(config_with())
    assert len(grid) == 2 * (1 + 3 * 2)
    ids = [story.story_id for story in grid]
    assert ids[:7] == [
        "story:exemplar",
        "story:T0.5:s0",
        "story:T0.5:s1",
        "story:T1:s0",
        "story:T1:s1",
        "story:T1.5:s0",
        "story:T1.5:s1",
    ]
    assert ids[7] == "poem:exemplar"
    exemplars = [story for story in grid if story.is_exemplar]
    assert [(story.temperature, story.seed) for story in exemplars] == [(0.0, None), (0.0, None)]
    assert grid[1].assistant_prefix == "Here it is:\n\n" and grid[8].assistant_prefix == ""
    assert len(set(ids)) == len(ids)


def test_shards_cover_the_grid_once_and_keep_their_stories_when_the_grid_grows():
    small = expand_grid(config_with())
    large = expand_grid(config_with(temperatures=[0.5, 1.0, 1.5, 2.0], seeds=3))
    plans = split_into_shards(small, 3)
    assert sorted(story.story_id for plan in plans for story in plan.requests) == sorted(s.story_id for s in small)
    for story in small:
        assert shard_of(story, 3) == shard_of(next(s for s in large if s.story_id == story.story_id), 3)
    assert all(plan.requests for plan in plans), "14 stories over 3 shards should leave none empty"


def test_shard_digest_changes_with_its_stories_only():
    grid = expand_grid(config_with())
    (plan,) = split_into_shards(grid, 1)
    (same,) = split_into_shards(expand_grid(config_with()), 1)
    (grown,) = split_into_shards(expand_grid(config_with(seeds=3)), 1)
    assert plan.digest == same.digest and plan.digest.startswith("14 stories")
    assert grown.digest != plan.digest


def test_independent_seeding_gives_every_story_its_own_random_numbers():
    grid = [story for story in expand_grid(config_with()) if not story.is_exemplar]
    assert [story.seed for story in grid[:2]] == [0, 1]  # rows keep the seed index
    sampling_seeds = [story.sampling_seed for story in grid]
    assert len(set(sampling_seeds)) == len(grid) and all(0 <= seed < 2**63 for seed in sampling_seeds)
    assert sampling_seeds == [story.sampling_seed for story in expand_grid(config_with()) if not story.is_exemplar]
    # a cell's sampling settings are part of the hash; the length budget is not (it only cuts a story)
    other_min_p = expand_grid(config_with(decoding={"max_tokens": 32, "min_p": 0.1}))
    longer = expand_grid(config_with(decoding={"max_tokens": 64}))
    first = grid[0].story_id
    assert next(s for s in other_min_p if s.story_id == first).sampling_seed != grid[0].sampling_seed
    assert next(s for s in longer if s.story_id == first).sampling_seed == grid[0].sampling_seed


def test_shared_seeding_passes_the_seed_index_to_every_cell():
    grid = [story for story in expand_grid(config_with(seeding="shared")) if not story.is_exemplar]
    assert all(story.sampling_seed == story.seed for story in grid)
    assert {story.sampling_seed for story in grid} == {0, 1}
    exemplar = expand_grid(config_with(seeding="shared"))[0]
    assert exemplar.is_exemplar and exemplar.sampling_seed is None


SWEPT = {"sweep": {"min_p": [0.1, 0.0], "top_p": [1.0, 0.9]}, "decoding": {"max_tokens": 32}}
TWO_MODELS = [{"id": "small", "path": "embedded"}, {"id": "other", "path": "embedded", "dtype": "bfloat16"}]


def two_model_config(**changes):
    config = copy.deepcopy(TINY_CONFIG)
    del config["model"]
    config.update(models=copy.deepcopy(TWO_MODELS), **changes)
    return validate_config(config, SCHEMA)


def test_a_sweep_crosses_every_axis_with_the_temperatures_and_names_it_in_the_story_id():
    grid = expand_grid(config_with(**SWEPT))
    stories = [story for story in grid if not story.is_exemplar]
    assert len(stories) == 2 * (2 * 2) * 3 * 2 and sum(story.is_exemplar for story in grid) == 2
    cells = {(s.prompt_id, s.sampler["min_p"], s.sampler["top_p"], s.temperature) for s in stories}
    assert len(cells) == 2 * 2 * 2 * 3  # every prompt x min_p x top_p x temperature
    assert "story:T0.5:top_p0.9:min_p0:s0" in {story.story_id for story in stories}
    assert len({story.story_id for story in grid}) == len(grid)
    exemplar = grid[0]  # greedy, with decoding's own settings (the schema's defaults here)
    assert exemplar.story_id == "story:exemplar" and (exemplar.sampler["min_p"], exemplar.sampler["top_p"]) == (
        0.0,
        1.0,
    )
    # independent seeding: every cell draws its own random numbers
    assert len({story.sampling_seed for story in stories}) == len(stories)


def test_without_sweep_or_models_the_grid_is_todays():
    """Same ids, same vLLM seeds and the decoding values in every request: caches stay valid."""
    from tempcreativity.grid import independent_seed

    grid = expand_grid(config_with())
    story = grid[1]
    assert story.story_id == "story:T0.5:s0" and story.model_id == "smollm2-135m-instruct"
    decoding = config_with()["decoding"]
    assert story.sampling_seed == independent_seed("story", 0.5, decoding, 0)
    assert story.sampler == {
        "top_k": 50,
        "top_p": 1.0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "truncation": "scaled",
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }


def test_the_model_id_names_stories_and_seeds_only_where_the_config_listed_models():
    """The same one model, written as model: or as a models: list under its slug: validation turns both into
    models:, and only the list puts the id into story ids and seeds (a model: config's ids stay as they were)."""
    given = expand_grid(config_with())
    listed = copy.deepcopy(TINY_CONFIG)
    listed["models"] = [{"id": "smollm2-135m-instruct", **listed.pop("model")}]
    as_list = expand_grid(validate_config(listed, SCHEMA))
    assert [story.model_id for story in given] == [story.model_id for story in as_list]
    assert [f"smollm2-135m-instruct:{story.story_id}" for story in given] == [story.story_id for story in as_list]
    drawn = [{story.sampling_seed for story in grid if not story.is_exemplar} for grid in (given, as_list)]
    assert not drawn[0] & drawn[1]


def test_several_models_each_get_every_cell_and_their_own_exemplar():
    grid = expand_grid(two_model_config(temperatures=[1.0], seeds=2))
    assert [story.story_id for story in grid[:3]] == ["small:story:exemplar", "small:story:T1:s0", "small:story:T1:s1"]
    assert [story.story_id for story in grid if story.is_exemplar] == [
        "small:story:exemplar",
        "small:poem:exemplar",
        "other:story:exemplar",
        "other:poem:exemplar",
    ]
    seeds_of = {
        model: {s.sampling_seed for s in grid if s.model_id == model and not s.is_exemplar}
        for model in ("small", "other")
    }
    assert not seeds_of["small"] & seeds_of["other"]  # the model id is part of an independent story's seed
    shared = expand_grid(two_model_config(temperatures=[1.0], seeds=2, seeding="shared"))
    assert {s.sampling_seed for s in shared if not s.is_exemplar} == {0, 1}
