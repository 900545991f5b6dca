"""Expand a validated config into the stories to generate: prompt x temperature x seed, plus one greedy
exemplar per prompt, in a fixed order, and split them into shards that stay stable when the grid grows."""

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
    ``chat`` (the text goes through the model's chat template) or ``raw`` (the text is tokenised as given)."""

    prompt_id: str
    prompt_text: str
    system: str | None
    assistant_prefix: str
    prompt_format: str
    temperature: float
    seed: int | None
    is_exemplar: bool

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
        values = [round(float(value), spec.get("decimals", 3)) for value in space(spec["start"], spec["stop"], spec["num"])]
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


def expand_grid(config: dict[str, Any]) -> list[StoryRequest]:
    """Every story of the experiment, in the order of the final table: per prompt (config order) its exemplar,
    then temperatures ascending, then seeds ascending."""
    grid_temperatures, grid_seeds = temperatures(config), seeds(config)
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
                requests.append(StoryRequest(**common, temperature=temperature, seed=seed, is_exemplar=False))
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
