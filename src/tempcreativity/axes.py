"""The sampler axes: every setting besides temperature that shapes a story's next-token distribution and can be
swept (``decoding.<name>`` fixes it, ``sweep.<name>`` crosses its values with the temperatures). Each is defined
once here; the stories' settings, the generations table's columns, the labels of figures and the report, the
vLLM arguments, the seed hash, the story ids and the cache keys are derived from this table.

How an axis enters a story's identity: the five axes of the first grids (top_k .. truncation) enter its vLLM seed
and its cache key at every value, as they always did. Any axis added since enters the seed, the story id and the
cache key only where the story's value differs from the axis's default, so that every run that leaves it at its
default keeps its seeds, ids and cached stories, and (without_quiet_defaults) its shard plans' digests, its MLflow
parent run and its report's sampler text. (Story ids name only the swept axes; see grid.axes_label.)
A new axis is one row here plus its ``decoding`` and ``sweep`` entries in workflow/schemas/config.schema.yaml
(with the row's default) and its line in docs/config.md; its default must be the value that leaves it off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl


@dataclass(frozen=True)
class SamplerAxis:
    """One sampler axis. ``name`` is its key under ``decoding:`` and ``sweep:`` and its column in the
    generations table (of ``dtype``); ``default`` is the schema's default (the greedy exemplar's value where the
    axis is swept; its Python type is the type of the axis's values); ``label`` names it in figures and the report;
    ``numeric`` says whether scores can trend with it (else its values are levels); ``vllm_argument`` is the
    SamplingParams argument it sets (None where it changes how others are passed, as truncation does);
    ``always_keyed`` is True for the first five axes, which enter seeds and cache keys at every value."""

    name: str
    dtype: pl.DataType
    default: Any
    label: str
    numeric: bool
    vllm_argument: str | None
    always_keyed: bool = False


# name, column dtype, default, label, numeric, vllm_argument, always_keyed
AXES = (
    SamplerAxis("top_k", pl.Int32, 50, "top-k", True, "top_k", True),
    SamplerAxis("top_p", pl.Float64, 1.0, "top-p", True, "top_p", True),
    SamplerAxis("min_p", pl.Float64, 0.0, "min-p", True, "min_p", True),
    SamplerAxis("repetition_penalty", pl.Float64, 1.0, "repetition penalty", True, "repetition_penalty", True),
    SamplerAxis("truncation", pl.String, "scaled", "truncation", False, None, True),
    SamplerAxis("presence_penalty", pl.Float64, 0.0, "presence penalty", True, "presence_penalty", False),
    SamplerAxis("frequency_penalty", pl.Float64, 0.0, "frequency penalty", True, "frequency_penalty", False),
)
SAMPLER_AXES = tuple(axis.name for axis in AXES)
DEFAULTS = {axis.name: axis.default for axis in AXES}
NUMERIC_AXES = tuple(axis.name for axis in AXES if axis.numeric)  # truncation, raw or scaled, is a level
AXIS_LABELS = {"temperature": "temperature"} | {axis.name: axis.label for axis in AXES}
AXIS_COLUMNS = {axis.name: axis.dtype for axis in AXES}
QUIET_DEFAULTS = {axis.name: axis.default for axis in AXES if not axis.always_keyed}  # the later axes' defaults


def keyed_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings (by axis name) as they enter a story's seed and id: every always-keyed axis (None where
    ``settings`` lacks it), and each other axis where its value differs from its default."""
    return {
        axis.name: settings.get(axis.name)
        for axis in AXES
        if axis.always_keyed or settings.get(axis.name, axis.default) != axis.default
    }


def keyed_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams arguments as they enter a story's cache key: the argument of an axis that is not always
    keyed is left out where it holds the axis's default."""
    quiet = {axis.vllm_argument: axis.default for axis in AXES if axis.vllm_argument and not axis.always_keyed}
    return {name: value for name, value in arguments.items() if name not in quiet or value != quiet[name]}


def without_quiet_defaults(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (axes by name, among other keys, which are kept: a config's ``decoding``, a request's fields)
    without each axis that is not always keyed where it holds its default: as they enter a shard plan's digest
    and the MLflow parent run's key and params, so that a run that leaves such an axis at its default keeps them."""
    return {
        name: value for name, value in settings.items() if name not in QUIET_DEFAULTS or value != QUIET_DEFAULTS[name]
    }
