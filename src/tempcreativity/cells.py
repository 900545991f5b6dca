"""The cells of a results table: which sampling settings vary across it (the swept axes), the columns that name
one cell (model, prompt, swept settings, temperature), and readable labels for cells and samplers.

Axes are read from the data, not the config: a setting is an axis where the stories hold more than one value of
it. So a table without ``sweep:`` and ``models:`` has the study's cells, prompt x temperature (plus its one
``model_id``)."""

from __future__ import annotations

from typing import Any

import polars as pl

from tempcreativity.axes import AXIS_LABELS, SAMPLER_AXES


def _stories(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(~pl.col("is_exemplar")) if "is_exemplar" in frame.columns else frame


def swept_axes(frame: pl.DataFrame) -> list[str]:
    """The sampler settings (other than temperature) with more than one value among the stories."""
    stories = _stories(frame)
    return [name for name in SAMPLER_AXES if name in stories.columns and stories[name].n_unique() > 1]


def several_models(frame: pl.DataFrame) -> bool:
    """Whether the stories come from more than one model."""
    return "model_id" in frame.columns and _stories(frame)["model_id"].n_unique() > 1


def cell_keys(frame: pl.DataFrame) -> list[str]:
    """The columns that name a cell: model_id (where present), prompt_id, the swept settings, temperature."""
    return (["model_id"] if "model_id" in frame.columns else []) + ["prompt_id", *swept_axes(frame), "temperature"]


def sampler_keys(frame: pl.DataFrame) -> list[str]:
    """The columns that name a sampler as its temperature turns: model_id (where present) and the swept settings."""
    return (["model_id"] if "model_id" in frame.columns else []) + swept_axes(frame)


def value_text(value: Any) -> str:
    return value if isinstance(value, str) else f"{value:g}"


def levels_label(row: dict[str, Any], axes: list[str]) -> str:
    """Settings as words, 'min-p 0.1, top-p 0.9'; '' for none."""
    return ", ".join(f"{AXIS_LABELS[name]} {value_text(row[name])}" for name in axes)


def sampler_label(row: dict[str, Any], axes: list[str]) -> str:
    """A sampler named by its swept settings; 'temperature only' where nothing but temperature is swept."""
    return levels_label(row, axes) or "temperature only"
