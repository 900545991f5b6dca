"""Expand a validated config into the stories to generate: prompt x temperature x seed, plus one greedy
exemplar per prompt, in a fixed order, and split them into shards that stay stable when the grid grows.

A story's ``seed`` is its index in the grid's list of seeds; ``sampling_seed`` is the seed passed to vLLM. With
``seeding: independent`` (the default) the sampling seed is a hash of the prompt id, the settings that shape the
story's next-token distribution and the seed index, so no two cells of the grid share random numbers and every
story is an independent draw (as in the study, which drew each story with a fresh random seed). With ``seeding:
shared`` the sampling seed is the seed index itself: seed s draws the same random numbers at every temperature
and for every prompt (common random numbers), which pairs the stories of one seed across cells."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tempcreativity.errors import ConfigError

VLLM_MIN_TEMPERATURE = 0.01  # vLLM raises 0 < T < 0.01 to this value (and treats T < 1e-5 as greedy)
MAX_STORIES = 100_000  # per experiment: planning stays well under a second at the study's 700, a few at this bound


@dataclass(frozen=True)
class StoryRequest:
    """One story to generate. ``seed`` is None for the greedy exemplar (temperature 0). ``prompt_format`` is
    ``chat`` (the text goes through the model's chat template) or ``raw`` (the text is tokenised as given).
    ``sampling_seed`` is the seed passed to vLLM (see the module's docstring); None for the exemplar."""

    prompt_id: str
    prompt_text: str
    system: str | None
    assistant_prefix: str
    prompt_format: str
    temperature: float
    seed: int | None
    is_exemplar: bool
    sampling_seed: int | None = None

    @property
    def story_id(self) -> str:
        if self.is_exemplar:
            return f"{self.prompt_id}:exemplar"
        return f"{self.prompt_id}:T{self.temperature:g}:s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def temperatures(config: dict[str, Any]) -> list[float]:
    """The sorted temperatures of the grid; a {start, stop, num, scale, decimals} spec is expanded and rounded."""
    spec = config["temperatures"]
    if isinstance(spec, list):
        values = [float(value) for value in spec]
    else:
        space = np.geomspace if spec.get("scale", "lin") == "log" else np.linspace
        values = [
            round(float(value), spec.get("decimals", 3)) for value in space(spec["start"], spec["stop"], spec["num"])
        ]
    for value in values:
        if 0 < value < VLLM_MIN_TEMPERATURE:
            raise ConfigError(
                f"invalid config: temperatures: {value} is between 0 and {VLLM_MIN_TEMPERATURE}, which vLLM silently "
                f"raises to {VLLM_MIN_TEMPERATURE}. Allowed: 0 (greedy) or {VLLM_MIN_TEMPERATURE} <= T <= 2"
            )
    return sorted(set(values))


def seeds(config: dict[str, Any]) -> list[int]:
    """The sorted seeds: a count n means 0 .. n-1."""
    spec = config["seeds"]
    return list(range(spec)) if isinstance(spec, int) else sorted(spec)


# The decoding settings that shape a story's next-token distribution: with ``seeding: independent`` a cell that
# differs in any of them (or in temperature) draws other random numbers. max_tokens and stop only cut a story.
DISTRIBUTION_SETTINGS = ("top_k", "top_p", "min_p", "repetition_penalty", "truncation")
MAX_SEED = 2**63 - 1


def independent_seed(prompt_id: str, temperature: float, decoding: dict[str, Any], seed_index: int) -> int:
    """vLLM's seed for one story under ``seeding: independent``: the first 63 bits of the sha256 of the prompt id,
    the temperature, the distribution-shaping decoding settings and the seed index."""
    cell = {"prompt_id": prompt_id, "temperature": float(temperature), "seed_index": int(seed_index),
            "decoding": {name: decoding.get(name) for name in DISTRIBUTION_SETTINGS}}  # fmt: skip
    digest = hashlib.sha256(json.dumps(cell, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def expand_grid(config: dict[str, Any]) -> list[StoryRequest]:
    """Every story of the experiment, in the order of the final table: per prompt (config order) its exemplar,
    then temperatures ascending, then seeds ascending."""
    grid_temperatures, grid_seeds = temperatures(config), seeds(config)
    independent = config.get("seeding", "independent") == "independent"
    decoding = config.get("decoding", {})
    requests = []
    for prompt in config["prompts"]:
        common = dict(
            prompt_id=prompt["id"],
            prompt_text=prompt["text"],
            system=prompt.get("system"),
            assistant_prefix=prompt.get("assistant_prefix", ""),
            prompt_format=prompt.get("format", "chat"),
        )
        requests.append(StoryRequest(**common, temperature=0.0, seed=None, is_exemplar=True))
        for temperature in grid_temperatures:
            for seed in grid_seeds:
                sampling_seed = independent_seed(prompt["id"], temperature, decoding, seed) if independent else seed
                requests.append(StoryRequest(**common, temperature=temperature, seed=seed, is_exemplar=False,
                                             sampling_seed=sampling_seed))  # fmt: skip
    return requests


def shard_of(request: StoryRequest, shards: int) -> int:
    """The shard a story belongs to: a hash of its id, so adding stories never moves existing ones."""
    digest = hashlib.sha256(request.story_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


@dataclass(frozen=True)
class ShardPlan:
    """The stories of one generation job, in grid order.

    Snakemake compares a job's plain params (lists, dicts) with the last run's to decide whether to re-run it,
    and prints them in full when they differ; an object like this one it leaves out. So the rule passes the plan
    itself and, for that comparison, its short ``digest``."""

    requests: tuple[StoryRequest, ...]

    @property
    def digest(self) -> str:
        canonical = json.dumps([request.to_dict() for request in self.requests], sort_keys=True)
        return f"{len(self.requests)} stories, sha256 {hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def split_into_shards(requests: list[StoryRequest], shards: int) -> list[ShardPlan]:
    """The plan of each shard: its requests, in grid order (a shard may be empty)."""
    groups: list[list[StoryRequest]] = [[] for _ in range(shards)]
    for request in requests:
        groups[shard_of(request, shards)].append(request)
    return [ShardPlan(tuple(group)) for group in groups]
