"""Expand a validated config into the stories to generate, and split them into shards that stay stable when the
grid grows. A cell of the grid is one prompt x model x value of every sampling axis (the temperatures, crossed
with the values of each setting under ``sweep:``); a cell holds one story per seed, and every prompt x model has
one greedy exemplar. Without ``sweep:`` and ``models:`` a cell is a prompt x temperature, as in the study.

A story's ``seed`` is its index in the grid's list of seeds; ``sampling_seed`` is the seed passed to vLLM. With
``seeding: independent`` (the default) the sampling seed is a hash of the prompt id, the settings that shape the
story's next-token distribution and the seed index, so no two cells of the grid share random numbers and every
story is an independent draw (as in the study, which drew each story with a fresh random seed). With ``seeding:
shared`` the sampling seed is the seed index itself: seed s draws the same random numbers at every temperature
and for every prompt (common random numbers), which pairs the stories of one seed across cells."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tempcreativity.axes import DEFAULTS, SAMPLER_AXES, keyed_settings, without_quiet_defaults
from tempcreativity.errors import ConfigError

VLLM_MIN_TEMPERATURE = 0.01  # vLLM raises 0 < T < 0.01 to this value (and treats T < 1e-5 as greedy)
MAX_STORIES = 100_000  # per experiment: planning stays well under a second at the study's 700, a few at this bound


@dataclass(frozen=True)
class StoryRequest:
    """One story to generate. ``seed`` is None for the greedy exemplar (temperature 0). ``prompt_format`` is
    ``chat`` (the text goes through the model's chat template) or ``raw`` (the text is tokenised as given).
    ``sampling_seed`` is the seed passed to vLLM (see the module's docstring); None for the exemplar.
    ``model_id`` names the generating model; ``sampler`` holds the cell's value of every sampler axis (axes.AXES;
    an axis not given takes its default), and ``id_parts`` are the parts of the story id that name the model and
    the swept settings (empty without ``models:`` and ``sweep:``, so that ids stay as they were)."""

    prompt_id: str
    prompt_text: str
    system: str | None
    assistant_prefix: str
    prompt_format: str
    temperature: float
    seed: int | None
    is_exemplar: bool
    sampling_seed: int | None = None
    model_id: str = "model"
    sampler: dict[str, Any] = field(default_factory=dict, hash=False)
    id_parts: tuple[str, str] = field(default=("", ""))

    def __post_init__(self):
        object.__setattr__(self, "sampler", DEFAULTS | dict(self.sampler))

    @property
    def story_id(self) -> str:
        model_part, axes_part = self.id_parts
        prefix = f"{model_part}:" if model_part else ""
        if self.is_exemplar:
            return f"{prefix}{self.prompt_id}:exemplar"
        axes = f":{axes_part}" if axes_part else ""
        return f"{prefix}{self.prompt_id}:T{self.temperature:g}{axes}:s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """The request as one flat row: its fields, with every sampler axis a field of its own."""
        values = asdict(self)
        sampler = values.pop("sampler")
        del values["id_parts"]
        return values | sampler


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


def sampler_cells(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the swept settings (``sweep:``, in the order of SAMPLER_AXES, values sorted), each
    completed with the ``decoding:`` values of the settings not swept; one combination without ``sweep:``."""
    sweep = config.get("sweep") or {}
    axes = [name for name in SAMPLER_AXES if name in sweep]
    base = exemplar_settings(config)
    return [base | dict(zip(axes, values)) for values in itertools.product(*(sorted(sweep[a]) for a in axes))]


def exemplar_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The sampler settings of the greedy exemplar: decoding's, and for a swept setting the schema's default
    (greedy decoding keeps the most likely token whatever top-k, top-p or min-p; only a swept penalty would change
    it, and the exemplar keeps its default, no penalty)."""
    return {name: config["decoding"].get(name, default) for name, default in DEFAULTS.items()}


def axes_label(cell: dict[str, Any], axes: list[str]) -> str:
    """The swept settings of a cell as they appear in story ids, 'top_p0.9:min_p0.1' (in the order of AXES);
    an axis that enters ids only off its default is left out where it holds it (axes.keyed_settings)."""
    keyed = keyed_settings(cell)
    return ":".join(
        f"{name}{cell[name]:g}" if not isinstance(cell[name], str) else f"{name}-{cell[name]}"
        for name in axes
        if name in keyed
    )


def seeds(config: dict[str, Any]) -> list[int]:
    """The sorted seeds: a count n means 0 .. n-1."""
    spec = config["seeds"]
    return list(range(spec)) if isinstance(spec, int) else sorted(spec)


MAX_SEED = 2**63 - 1


def independent_seed(
    prompt_id: str, temperature: float, decoding: dict[str, Any], seed_index: int, model_id: str | None = None
) -> int:
    """vLLM's seed for one story under ``seeding: independent``: the first 63 bits of the sha256 of the prompt id,
    the temperature, the sampler settings (as axes.keyed_settings gives them), the seed index and, with
    ``models:``, the model id (left out where the config gave one ``model:``, so that the seeds of single-model
    configs stay as they were)."""
    cell = {
        "prompt_id": prompt_id,
        "temperature": float(temperature),
        "seed_index": int(seed_index),
        "decoding": keyed_settings(decoding),
    }
    if model_id is not None:
        cell["model_id"] = model_id
    digest = hashlib.sha256(json.dumps(cell, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def expand_grid(config: dict[str, Any]) -> list[StoryRequest]:
    """Every story of the experiment, in the order of the final table: per model (config order) and prompt (config
    order) its exemplar, then the swept settings' combinations, temperatures ascending, then seeds ascending. The
    exemplar is greedy with ``exemplar_settings``. Story ids and seeds name the model unless the config gave one
    ``model:`` (``model_given``, set by config.validate_config)."""
    grid_temperatures, grid_seeds = temperatures(config), seeds(config)
    independent = config.get("seeding", "independent") == "independent"
    named_models = not config["model_given"]
    swept = [name for name in SAMPLER_AXES if name in (config.get("sweep") or {})]
    base = exemplar_settings(config)
    cells = sampler_cells(config)
    requests = []
    for model in config["models"]:
        model_part = model["id"] if named_models else ""
        for prompt in config["prompts"]:
            common = dict(
                prompt_id=prompt["id"],
                prompt_text=prompt["text"],
                system=prompt.get("system"),
                assistant_prefix=prompt.get("assistant_prefix", ""),
                prompt_format=prompt.get("format", "chat"),
                model_id=model["id"],
            )
            requests.append(
                StoryRequest(
                    **common, sampler=base, temperature=0.0, seed=None, is_exemplar=True, id_parts=(model_part, "")
                )
            )
            for cell in cells:
                parts = (model_part, axes_label(cell, swept))
                for temperature in grid_temperatures:
                    for seed in grid_seeds:
                        sampling_seed = (
                            independent_seed(
                                prompt["id"], temperature, cell, seed, model["id"] if named_models else None
                            )
                            if independent
                            else seed
                        )
                        requests.append(
                            StoryRequest(
                                **common,
                                sampler=cell,
                                temperature=temperature,
                                seed=seed,
                                is_exemplar=False,
                                sampling_seed=sampling_seed,
                                id_parts=parts,
                            )
                        )
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
    itself and, for that comparison, its short ``digest`` (of every request's fields, an axis added later only off
    its default: axes.without_quiet_defaults)."""

    requests: tuple[StoryRequest, ...]

    @property
    def digest(self) -> str:
        canonical = json.dumps([without_quiet_defaults(request.to_dict()) for request in self.requests], sort_keys=True)
        return f"{len(self.requests)} stories, sha256 {hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def split_into_shards(requests: list[StoryRequest], shards: int) -> list[ShardPlan]:
    """The plan of each shard: its requests, in grid order (a shard may be empty)."""
    groups: list[list[StoryRequest]] = [[] for _ in range(shards)]
    for request in requests:
        groups[shard_of(request, shards)].append(request)
    return [ShardPlan(tuple(group)) for group in groups]
