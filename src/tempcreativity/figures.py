"""Seaborn figures that replicate the study's views (box plots against the exemplar, PCA per temperature) and
add diversity, a one-glance trend panel and the diversity/quality frontier of each sampler. Where a grid sweeps
further settings or several models, the box plots get one row per sampler (model x swept settings) and the line
figures one line per sampler. Each figure is saved as PNG and SVG; colours follow temperature on a colour-blind-
safe sequential palette (viridis), samplers a colour-blind-safe qualitative one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.hashsalt"] = "tempcreativity"  # stable SVG ids: same data, same file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import polars.selectors as cs  # noqa: E402
import seaborn as sns  # noqa: E402

from tempcreativity.catalogue import FIGURES  # noqa: E402
from tempcreativity.cells import sampler_keys, sampler_label, several_models, swept_axes  # noqa: E402
from tempcreativity.progress import bar  # noqa: E402
from tempcreativity.scoring import SCORE_LABELS  # noqa: E402

BOXPLOT_SCORES = ("perplexity", "cosine_similarity", "edit_distance")
MAX_BOXPLOT_ROWS = 12  # one row per sampler up to here; an image over 2^16 pixels cannot be saved


def _style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.25)


def temperature_palette(temperatures) -> dict[float, tuple]:
    ordered = sorted(set(temperatures))
    return dict(zip(ordered, sns.color_palette("viridis", len(ordered))))


def _label(value: float) -> str:
    return f"{value:g}"


def save(figure, png: str | Path, svg: str | Path) -> None:
    """Write the figure to ``png`` (200 dpi) and ``svg``, without timestamps, each atomically (a temporary name,
    then a rename), and close it."""
    import os

    for path, options in (
        (Path(png), {"dpi": 200, "metadata": {"Software": None}}),
        (Path(svg), {"metadata": {"Date": None, "Creator": None}}),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        figure.savefig(partial, format=path.suffix[1:], bbox_inches="tight", **options)
        os.replace(partial, path)
    plt.close(figure)


def sampler_groups(frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """The frame split per sampler (model x swept settings), each with its label; one group, labelled '', where
    the grid has one model and sweeps only temperature."""
    keys = [key for key in sampler_keys(frame) if key != "model_id" or several_models(frame)]
    if not keys:
        return [("", frame)]
    axes = swept_axes(frame)
    groups = []
    for values, group in frame.group_by(keys, maintain_order=True):
        row = dict(zip(keys, values))
        label = sampler_label(row, axes) if axes else ""
        groups.append((", ".join(part for part in (row.get("model_id"), label) if part), group))
    return groups


def boxplots(scores: pl.DataFrame) -> plt.Figure:
    """Perplexity, cosine similarity and edit distance to the exemplar per temperature (the study's figures):
    boxes with the median as a line and the mean as a white diamond; the exemplar's perplexity dashed. One row
    per sampler where the grid has several (model x swept settings)."""
    _style()
    stories_all = scores.filter(~pl.col("is_exemplar"))
    order = [_label(t) for t in sorted(stories_all["temperature"].unique())]
    palette = {_label(t): colour for t, colour in temperature_palette(stories_all["temperature"]).items()}
    groups = sampler_groups(stories_all)
    if len(groups) > MAX_BOXPLOT_ROWS:  # a row per model instead, every setting pooled (the frontier separates them)
        groups = [
            (f"{label}, settings pooled" if label else "settings pooled", group)
            for label, group in sampler_groups(stories_all.drop(swept_axes(stories_all)))
        ]
    figure, grid = plt.subplots(len(groups), 3, figsize=(15, 4.6 * len(groups)), squeeze=False, sharey="col")
    for axes, (title, group) in zip(grid, groups):
        stories = group.to_pandas()
        stories["T"] = stories["temperature"].map(_label)
        for axis, score in zip(axes, BOXPLOT_SCORES):
            sns.boxplot(
                data=stories,
                x="T",
                y=score,
                hue="T",
                order=order,
                hue_order=order,
                palette=palette,
                legend=False,
                showmeans=True,
                ax=axis,
                fliersize=3,
                meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black", "markersize": 6},
                medianprops={"color": "black", "linewidth": 1.5},
            )
            axis.set(
                xlabel="Temperature",
                ylabel=SCORE_LABELS[score],
                title=f"{SCORE_LABELS[score]}\n{title}" if title else SCORE_LABELS[score],
            )
        axes[0].set_yscale("log")
    exemplars = scores.filter(pl.col("is_exemplar"))
    for axes, (_, group) in zip(grid, groups):
        models = set(group["model_id"]) if "model_id" in group.columns else None
        for row in exemplars.iter_rows(named=True):
            if models is None or row.get("model_id") in models:
                axes[0].axhline(row["perplexity"], color="black", linestyle="--", linewidth=1, label="exemplar")
    axes = grid[0]
    handles = [
        plt.Line2D([], [], color="black", linewidth=1.5, label="median"),
        plt.Line2D([], [], marker="D", color="white", markeredgecolor="black", linestyle="", label="mean"),
        plt.Line2D([], [], color="black", linestyle="--", linewidth=1, label="exemplar (greedy)"),
    ]
    axes[0].legend(handles=handles, loc="upper left", frameon=True)
    figure.tight_layout()
    return figure


def pca_panels(pca: pl.DataFrame) -> plt.Figure:
    """2-D PCA of all embeddings, one panel per temperature (other stories in grey), exemplars as black stars."""
    _style()
    temperatures = sorted(pca.filter(~pl.col("is_exemplar"))["temperature"].unique())
    palette = temperature_palette(temperatures)
    columns = min(4, len(temperatures))
    rows = int(np.ceil(len(temperatures) / columns))
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.8 * columns, 3.6 * rows), sharex=True, sharey=True, squeeze=False
    )
    stories, exemplars = pca.filter(~pl.col("is_exemplar")), pca.filter(pl.col("is_exemplar"))
    for axis, temperature in zip(axes.flat, temperatures):
        axis.scatter(stories["pc1"], stories["pc2"], s=10, color="0.85", linewidths=0)
        cell = stories.filter(pl.col("temperature") == temperature)
        axis.scatter(cell["pc1"], cell["pc2"], s=22, color=palette[temperature], edgecolor="black", linewidths=0.3)
        axis.scatter(
            exemplars["pc1"],
            exemplars["pc2"],
            s=220,
            marker="*",
            color="black",
            edgecolor="white",
            linewidths=0.8,
            zorder=5,
        )
        axis.set_title(f"T = {_label(temperature)}")
    for axis in axes.flat[len(temperatures) :]:
        axis.set_visible(False)
    ratio = pca["pc1_variance"][0], pca["pc2_variance"][0]
    figure.supxlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    figure.supylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    star = plt.Line2D([], [], marker="*", color="black", linestyle="", markersize=14, label="exemplar (greedy)")
    others = plt.Line2D([], [], marker="o", color="0.85", linestyle="", markersize=5, label="other temperatures")
    figure.tight_layout()
    if len(temperatures) < axes.size:  # the legend goes in the first empty panel
        spare = axes.flat[len(temperatures)]
        spare.set_visible(True)
        spare.axis("off")
        spare.legend(handles=[star, others], loc="center", frameon=False)
    else:
        figure.legend(handles=[star, others], loc="lower center", ncol=2, bbox_to_anchor=(0.5, 1.0), frameon=False)
    return figure


def diversity(summary: pl.DataFrame) -> plt.Figure:
    """Within-temperature diversity: pairwise cosine distance, self-similarity, duplicates and exemplar copies."""
    _style()
    panels = [
        ("diversity", "Mean pairwise cosine distance"),
        ("self_similarity", "Mean pairwise edit similarity"),
        ("share_duplicates", "Share of duplicate stories"),
        ("share_identical_to_exemplar", "Share identical to exemplar"),
    ]
    data = summary.to_pandas()
    groups = sampler_groups(summary)
    if len(groups) > 1:  # one line per sampler (prompts pooled)
        data = pl.concat([group.with_columns(sampler=pl.lit(label)) for label, group in groups]).to_pandas()
        hue = "sampler"
    else:
        hue = "prompt_id" if data["prompt_id"].nunique() > 1 else None
    figure, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    for axis, (column, title) in zip(axes, panels):
        sns.lineplot(
            data=data,
            x="temperature",
            y=column,
            hue=hue,
            marker="o",
            ax=axis,
            palette="colorblind" if hue == "sampler" else None,
            color=None if hue else sns.color_palette("viridis", 3)[0],
            legend=bool(hue) and column == "diversity",
        )
        axis.set(xlabel="Temperature", ylabel=title, title=title)
        if column.startswith("share_"):
            axis.set_ylim(-0.03, 1.03)
    figure.tight_layout()
    return figure


def trend_panels(summary: pl.DataFrame, trend_table: pl.DataFrame) -> plt.Figure:
    """Every score's mean and 95% bootstrap CI against temperature (prompts pooled), with Spearman's rho in each
    title; one line per sampler where the grid has several (their rhos are in the trends table)."""
    _style()
    groups = sampler_groups(summary)
    temperature_rows = (
        trend_table.filter(pl.col("axis") == "temperature") if "axis" in trend_table.columns else trend_table
    )
    rho = dict(zip(temperature_rows["score"], temperature_rows["rho"])) if len(groups) == 1 else {}
    columns = 5
    rows = int(np.ceil(len(SCORE_LABELS) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.4 * rows), squeeze=False)
    colours = sns.color_palette("colorblind", len(groups)) if len(groups) > 1 else [sns.color_palette("viridis", 3)[0]]
    for (group_label, group), colour in zip(groups, colours):
        pooled = (
            group.group_by("temperature")
            .agg([pl.col(f"{score}_{part}").mean() for score in SCORE_LABELS for part in ("mean", "ci_low", "ci_high")])
            .sort("temperature")
        )
        for axis, (score, label) in zip(axes.flat, SCORE_LABELS.items()):
            x = pooled["temperature"].to_numpy()
            axis.fill_between(
                x, pooled[f"{score}_ci_low"].to_numpy(), pooled[f"{score}_ci_high"].to_numpy(), color=colour, alpha=0.2
            )
            axis.plot(x, pooled[f"{score}_mean"].to_numpy(), marker="o", color=colour, label=group_label or None)
            title = f"{label}\nSpearman ρ = {rho.get(score, np.nan):.2f}" if rho else label
            axis.set_title(title, fontsize=11)
            axis.set_xlabel("Temperature")
    for axis in axes.flat[len(SCORE_LABELS) :]:
        axis.set_visible(False)
    if len(groups) > 1:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        figure.legend(
            handles, labels, loc="lower center", ncol=min(4, len(groups)), bbox_to_anchor=(0.5, 1.0), frameon=False
        )
    figure.tight_layout()
    return figure


def report_figures(
    scores: pl.DataFrame, summary: pl.DataFrame, trend_table: pl.DataFrame, pca: pl.DataFrame
) -> Iterator[tuple[str, plt.Figure]]:
    """Every figure of the report with its name, in the order of catalogue.FIGURES, each drawn when the caller asks
    for it: the caller saves it where its outputs say (which closes it) before the next is drawn, and a progress
    bar counts the figures done."""
    draw = {
        "boxplots": lambda: boxplots(scores),
        "pca": lambda: pca_panels(pca),
        "diversity": lambda: diversity(summary),
        "trends": lambda: trend_panels(summary, trend_table),
    }
    for name in bar(FIGURES, "Figures drawn and saved", "figure"):
        yield name, draw[name]()


def frontier_figure(table: pl.DataFrame) -> plt.Figure:
    """The diversity/quality frontier: one panel per model, one point per sampler x temperature with 95% CIs in
    both directions, a line joining each sampler's cells as temperature rises (each point labelled with its
    temperature)."""
    from tempcreativity.frontier import QUALITY

    _style()
    label, _ = QUALITY[table["quality_measure"][0]]
    models = table["model_id"].unique(maintain_order=True).to_list() if "model_id" in table.columns else [""]
    samplers = table["sampler"].unique(maintain_order=True).to_list()
    colours = dict(zip(samplers, sns.color_palette("colorblind", len(samplers))))
    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.8), squeeze=False, sharey=True)
    for axis, model in zip(axes.flat, models):
        rows = table.filter(pl.col("model_id") == model) if model else table
        for sampler in samplers:
            line = rows.filter(pl.col("sampler") == sampler).sort("temperature")
            if line.is_empty():
                continue
            x, y = line["diversity"].to_numpy(), line["quality"].to_numpy()
            xerr = np.nan_to_num(
                np.abs(np.vstack([x - line["diversity_ci_low"].to_numpy(), line["diversity_ci_high"].to_numpy() - x]))
            )
            yerr = np.nan_to_num(
                np.abs(np.vstack([y - line["quality_ci_low"].to_numpy(), line["quality_ci_high"].to_numpy() - y]))
            )
            axis.errorbar(
                x,
                y,
                xerr=xerr,
                yerr=yerr,
                fmt="-o",
                color=colours[sampler],
                capsize=2,
                markersize=5,
                linewidth=1.5,
                elinewidth=0.8,
                label=sampler,
            )
            for x_value, y_value, temperature in zip(x, y, line["temperature"]):
                axis.annotate(
                    _label(temperature),
                    (x_value, y_value),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=8,
                    color=colours[sampler],
                )
        axis.set(xlabel="Diversity (mean pairwise cosine distance)", title=model or None)
    axes.flat[0].set_ylabel(label[0].upper() + label[1:])
    if table["quality_measure"][0] == "perplexity":
        axes.flat[0].set_yscale("log")
        axes.flat[0].yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        axes.flat[0].yaxis.set_minor_formatter(  # label 2, 3 and 5 times a power of ten, not every minor tick
            matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "235" else "")
        )
    figure.tight_layout()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        title="Sampler (numbers: temperature)",
        fontsize="small",
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )  # (outside: save() keeps it, bbox tight)
    return figure


def forest_plot(lme: pl.DataFrame) -> plt.Figure:
    """The mixed models' betas with 95% Wald intervals: one panel per predictor, one row per rating, one marker
    per model (random effects) where several were fitted."""
    _style()
    predictors = list(dict.fromkeys(lme["predictor"]))
    models = list(dict.fromkeys(lme["random_effects"])) if "random_effects" in lme.columns else [""]
    figure, axes = plt.subplots(1, len(predictors), figsize=(4.2 * len(predictors), 3.4), squeeze=False)
    colours = sns.color_palette("viridis", 3)
    offsets = np.linspace(-0.15, 0.15, len(models)) if len(models) > 1 else [0.0]
    for axis, predictor in zip(axes.flat, predictors):
        for model, colour, offset, marker in zip(models, colours, offsets, "os^"):
            rows = lme.filter(pl.col("predictor") == predictor)
            if model:
                rows = rows.filter(pl.col("random_effects") == model)
            y = np.arange(rows.height)[::-1] + offset
            beta, half = rows["beta"].to_numpy(), 1.959963984540054 * rows["se"].to_numpy()
            axis.errorbar(beta, y, xerr=half, fmt=marker, color=colour, capsize=4, label=MODEL_LABELS.get(model, model))
            axis.set_yticks(np.arange(rows.height)[::-1], rows["rating"].to_list())
        axis.axvline(0, color="black", linewidth=1, linestyle="--")
        axis.set(xlabel=f"β per unit of {predictor.replace('_', ' ')}", title=predictor.replace("_", " "))
    if len(models) > 1:
        axes.flat[-1].legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure


MODEL_LABELS = {"participant": "(1 | participant)", "crossed": "(1 | participant) + (1 | story)", "none": "OLS"}


def judge_vs_people_figure(pairs: pl.DataFrame) -> plt.Figure:
    """The judge's rating of each of the study's stories against the people's mean rating, one panel per
    criterion, points coloured by the temperature the story was generated at, the diagonal dashed."""
    _style()
    criteria = list(dict.fromkeys(pairs["criterion"]))
    figure, axes = plt.subplots(1, len(criteria), figsize=(4.0 * len(criteria), 4.0), squeeze=False)
    palette = temperature_palette(pairs["temperature"])
    for axis, criterion in zip(axes.flat, criteria):
        rows = pairs.filter(pl.col("criterion") == criterion)
        axis.scatter(
            rows["people"],
            rows["judge"],
            c=[palette[t] for t in rows["temperature"]],
            s=28,
            edgecolor="black",
            linewidth=0.4,
        )
        axis.plot([1, 5], [1, 5], linestyle="--", color="grey", linewidth=1)
        axis.set(xlim=(1, 5), ylim=(1, 5), xlabel="People's mean rating", ylabel="Judge's rating", title=criterion)
    handles = [
        plt.Line2D([], [], marker="o", linestyle="", color=colour, label=_label(t)) for t, colour in palette.items()
    ]
    axes.flat[-1].legend(handles=handles, title="T", fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    figure.tight_layout()
    return figure


COMPARED_SCORES = (
    ("perplexity", "Perplexity"),
    ("edit_distance", "Edit distance to exemplar"),
    ("cosine_similarity", "Cosine similarity to exemplar"),
    ("diversity", "Diversity"),
)


def compare_runs(summaries: dict[str, pl.DataFrame]) -> plt.Figure:
    """Several runs of one grid side by side (one line per run): mean and 95% CI of perplexity, distance and
    similarity to the exemplar, and diversity, per temperature, pooled over prompts."""
    _style()
    figure, axes = plt.subplots(1, len(COMPARED_SCORES), figsize=(4.3 * len(COMPARED_SCORES), 3.8))
    colours = sns.color_palette("viridis", max(3, len(summaries)))
    for colour, (label, summary) in zip(colours, summaries.items()):
        pooled = summary.select(cs.numeric()).group_by("temperature").mean().sort("temperature")
        x = pooled["temperature"].to_numpy()
        for axis, (score, title) in zip(axes, COMPARED_SCORES):
            column = score if score == "diversity" else f"{score}_mean"
            if score != "diversity":
                low, high = pooled[f"{score}_ci_low"].to_numpy(), pooled[f"{score}_ci_high"].to_numpy()
                axis.fill_between(x, low, high, color=colour, alpha=0.15)
            axis.plot(x, pooled[column].to_numpy(), marker="o", color=colour, label=label)
            axis.set(title=title, xlabel="Temperature")
    axes[0].set_yscale("log")
    axes[0].yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].legend(frameon=False)
    figure.tight_layout()
    return figure
