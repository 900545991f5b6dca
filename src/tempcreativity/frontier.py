"""The diversity/quality frontier of each sampler: per cell (model x swept settings x temperature, prompts
pooled), how diverse its stories are and how good, so that samplers can be compared at equal diversity.

- Diversity: each story's mean cosine distance to the other stories of its prompt's cell (the first embedder);
  the cell's diversity is the mean of these, which is the mean pairwise cosine distance of the summary.
- Quality: the LLM judge's coherence rating where the judge ran, on the study's scale (1 = very easy to follow,
  5 = very hard: lower is better); else perplexity under the generating model (lower is more predictable to the
  model that wrote it: a measure of fluency as the model sees it, not of quality).
- CIs: percentile bootstrap over the cell's stories (for diversity, over the stories' mean distances, which are
  not independent of each other: the interval is approximate).

A sampler is one model at fixed values of every swept setting; its line joins its cells as temperature turns."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from tempcreativity import metrics
from tempcreativity.cells import cell_keys, sampler_keys, sampler_label, swept_axes
from tempcreativity.progress import bar
from tempcreativity.statistics import bootstrap_mean_ci

# name: (label, whether higher is better)
QUALITY = {
    "judge_coherence": ("coherence rating (LLM judge; 1 = very easy to follow, 5 = very hard)", False),
    "perplexity": ("perplexity under the generating model", False),
}


def distance_to_cell(scores: pl.DataFrame, vectors: np.ndarray) -> pl.DataFrame:
    """The stories (exemplars left out) with ``to_others``: each one's mean cosine distance to the other stories of
    its cell."""
    frame = scores.with_row_index("row").filter(~pl.col("is_exemplar"))
    keys = cell_keys(scores)
    parts = []
    cells = frame.group_by(keys, maintain_order=True)
    for _, cell in bar(cells, "Distances within cells", "cell", total=frame.select(keys).n_unique()):
        distances = metrics.mean_cosine_distance_to_others(vectors[cell["row"].to_numpy()])
        parts.append(cell.with_columns(to_others=pl.Series(distances, dtype=pl.Float64)))
    return pl.concat(parts).sort("row").drop("row")


def frontier_table(
    scores: pl.DataFrame, vectors: np.ndarray, resamples: int, judge: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per sampler x temperature: its columns (model_id, swept settings), ``sampler`` (a label),
    temperature, n, diversity and quality with their CIs, and ``quality_measure`` (a key of QUALITY)."""
    stories = distance_to_cell(scores, vectors)
    if judge is not None:
        stories = stories.join(
            judge.select("story_id", pl.col("coherence").alias("quality")), on="story_id", how="left"
        )
        measure = "judge_coherence"
    else:
        stories = stories.with_columns(quality=pl.col("perplexity").cast(pl.Float64))
        measure = "perplexity"
    keys, axes = sampler_keys(scores), swept_axes(scores)
    rows = []
    cells = stories.group_by([*keys, "temperature"], maintain_order=True)
    for values, cell in bar(cells, "Frontier cells", "cell", total=stories.select(*keys, "temperature").n_unique()):
        row = dict(zip([*keys, "temperature"], values))
        diversity, quality = cell["to_others"].to_numpy(), cell["quality"].cast(pl.Float64).to_numpy()
        div_low, div_high = bootstrap_mean_ci(diversity, resamples)
        q_low, q_high = bootstrap_mean_ci(quality, resamples)
        rows.append(
            {
                **row,
                "sampler": sampler_label(row, axes),
                "n": cell.height,
                "diversity": float(np.nanmean(diversity)),
                "diversity_ci_low": div_low,
                "diversity_ci_high": div_high,
                "quality": float(np.nanmean(quality)),
                "quality_ci_low": q_low,
                "quality_ci_high": q_high,
                "quality_measure": measure,
            }
        )
    return pl.DataFrame(rows).sort([*keys, "temperature"])


def quality_at(line: pl.DataFrame, target: float) -> float:
    """A sampler's quality where its line (cells in temperature order) first reaches ``target`` diversity, by
    linear interpolation between the two cells around it; nan where the line never reaches it."""
    x, y = line["diversity"].to_numpy(), line["quality"].to_numpy()
    for (x0, y0), (x1, y1) in zip(zip(x, y), zip(x[1:], y[1:])):
        if min(x0, x1) <= target <= max(x0, x1):
            return float(y0) if x1 == x0 else float(y0 + (y1 - y0) * (target - x0) / (x1 - x0))
    if len(x) == 1 and x[0] == target:
        return float(y[0])
    return math.nan


def _number(value: float) -> str:
    return f"{value:.3g}"


def frontier_sentences(table: pl.DataFrame) -> list[str]:
    """Per model, in words from the numbers: with one sampler, how diversity and quality move with temperature;
    with several, which sampler reaches the model's median cell diversity at the best quality. With several models
    each sentence starts with its model's id, as written in the config; otherwise it starts with a capital."""
    if table.is_empty():
        return []
    label, higher_is_better = QUALITY[table["quality_measure"][0]]
    models = table["model_id"].unique(maintain_order=True).to_list() if "model_id" in table.columns else [None]
    sentences = []
    for model in models:
        rows = table if model is None else table.filter(pl.col("model_id") == model)
        named = f"{model}: " if len(models) > 1 else ""
        samplers = rows["sampler"].unique(maintain_order=True).to_list()
        if rows["temperature"].n_unique() == 1 and len(samplers) > 1:  # points, not lines: side by side
            ranked = rows.sort("quality", descending=higher_is_better)
            cells = "; ".join(
                f"{row['sampler']} {_number(row['diversity'])} and {_number(row['quality'])}"
                for row in ranked.iter_rows(named=True)
            )
            sentences.append(
                f"{named}at the one temperature {rows['temperature'][0]:g}, diversity and {label} per sampler, "
                f"best {label} first: {cells}."
            )
            continue
        if len(samplers) == 1:
            first, last = rows.row(0, named=True), rows.row(-1, named=True)
            sentences.append(
                f"{named}from temperature {first['temperature']:g} to {last['temperature']:g}, diversity goes from "
                f"{_number(first['diversity'])} to {_number(last['diversity'])} and {label} from "
                f"{_number(first['quality'])} to {_number(last['quality'])}."
            )
            continue
        target = float(np.nanmedian(rows["diversity"].to_numpy()))
        reached = {}
        for sampler in samplers:
            value = quality_at(rows.filter(pl.col("sampler") == sampler).sort("temperature"), target)
            if not math.isnan(value):
                reached[sampler] = value
        missing = [sampler for sampler in samplers if sampler not in reached]
        if not reached:
            sentences.append(f"{named}no sampler's line reaches the median diversity {_number(target)}.")
            continue
        ranked = sorted(reached.items(), key=lambda item: -item[1] if higher_is_better else item[1])
        best, value = ranked[0]
        others = "; ".join(f"{sampler} {_number(quality)}" for sampler, quality in ranked[1:])
        sentence = (
            f"{named}at a diversity of {_number(target)} (the median over its cells), {best} reaches the "
            f"{'highest' if higher_is_better else 'lowest'} {label}, {_number(value)}"
            + (f" (others: {others})" if others else "")
            + "."
        )
        if missing:
            sentence += f" Not reaching that diversity at any of the temperatures: {', '.join(missing)}."
        sentences.append(sentence)
    if len(models) > 1:
        return sentences
    return [sentence[0].upper() + sentence[1:] for sentence in sentences]
