"""End to end: the Snakefile with the real vLLM engine and the embedded model on the tiny grid.

One run from nothing (model conversion included) is shared; the other runs start from a copy of it or share
its converted model, so the suite pays for as few engine starts as possible."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from conftest import (
    SCHEMA,
    TINY_CONFIG,
    run_snakemake,
    share_analysis_caches,
    share_converted_model,
    snakemake_command,
    snakemake_environment,
)
from tempcreativity.config import validate_config
from tempcreativity.generation import GENERATIONS_SCHEMA
from tempcreativity.grid import expand_grid
from tempcreativity.model import folder_sha256

pytestmark = pytest.mark.e2e

GENERATIONS = Path("results/tiny/generations.parquet")


def stats(workdir: Path, shard: int = 0) -> dict:
    return json.loads((workdir / f"results/tiny/shards/shard-{shard}.stats.json").read_text())


def stories(workdir: Path) -> pl.DataFrame:
    return pl.read_parquet(workdir / GENERATIONS)


def test_first_run_generates_every_story_of_the_grid(tiny_run):
    table = stories(tiny_run)
    expected = expand_grid(validate_config(copy.deepcopy(TINY_CONFIG), SCHEMA))
    assert table.schema == pl.Schema(GENERATIONS_SCHEMA)
    assert table["story_id"].to_list() == [story.story_id for story in expected]
    assert table.height == 14 and set(table["experiment"]) == {"tiny"}
    assert (stats(tiny_run)["cached"], stats(tiny_run)["generated"]) == (0, 14)

    exemplars = table.filter(pl.col("is_exemplar"))
    assert exemplars["temperature"].to_list() == [0.0, 0.0] and exemplars["seed"].null_count() == 2
    for row in table.iter_rows(named=True):
        assert 1 <= row["num_tokens"] <= 32 and row["text"].strip()
        assert len(row["token_ids"]) == len(row["logprobs"]) == row["num_tokens"]
        assert all(logprob <= 0 for logprob in row["logprobs"])
        assert math.isclose(row["cumulative_logprob"], sum(row["logprobs"]), rel_tol=1e-6, abs_tol=1e-6)
        assert row["finish_reason"] in {"length", "stop"}
    # independent seeding: each story its own vLLM seed (a hash), the row keeps its seed index
    stories_only = table.filter(~pl.col("is_exemplar"))
    assert stories_only["sampling_seed"].n_unique() == 12 and set(stories_only["seed"]) == {0, 1}
    assert exemplars["sampling_seed"].null_count() == 2
    assert stories_only["sampling_seed"].to_list() == [s.sampling_seed for s in expected if not s.is_exemplar]
    # seeds differ, and a hot temperature is less likely under the model than greedy decoding (raw log-probs)
    hot = table.filter((pl.col("prompt_id") == "story") & (pl.col("temperature") == 1.5))
    assert hot["text"].n_unique() == 2
    nll = table.with_columns(nll=-pl.col("cumulative_logprob") / pl.col("num_tokens"))
    assert nll.filter(pl.col("temperature") == 1.5)["nll"].mean() > nll.filter(pl.col("is_exemplar"))["nll"].max()


def test_embedded_model_is_converted_once_and_fingerprinted(tiny_run):
    manifest = json.loads((tiny_run / "resources/models/smollm2-135m-instruct.json").read_text())
    folder = tiny_run / manifest["folder"]
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        path.name for path in folder.iterdir()
    }
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
    assert manifest["sha256"] == folder_sha256(folder)
    # The folder transformers' own GGUF loading wrote (before the fast conversion), byte for byte: the weights
    # bitwise, config and tokenizer alike (benchmarks/bench_conversion.py converts both ways and compares), with
    # the empty .snakemake_timestamp Snakemake leaves in a directory output.
    assert manifest["sha256"] == "932a658b711ba364abf74a362d7e61ddfcf457571323863a19e4621ab1f54050"
    assert set(stories(tiny_run)["model_sha256"]) == {manifest["sha256"]}
    assert set(stories(tiny_run)["model"]) == {"SmolLM2-135M-Instruct"}


def test_progress_is_shown_live_and_kept_in_the_log(tiny_run):
    assert "Generated stories: 100%" in (tiny_run / "snakemake.out").read_text()
    assert "14/14" in (tiny_run / "results/tiny/logs/generate_shard-0.log").read_text()
    assert "results/tiny/generations.parquet" in (tiny_run / "snakemake.out").read_text()


def test_rerun_with_nothing_changed_does_no_work(tiny_run):
    before = (tiny_run / GENERATIONS).stat().st_mtime_ns, (tiny_run / GENERATIONS).read_bytes()
    completed = run_snakemake(tiny_run, TINY_CONFIG)
    assert "Nothing to be done" in completed.stdout + completed.stderr
    assert ((tiny_run / GENERATIONS).stat().st_mtime_ns, (tiny_run / GENERATIONS).read_bytes()) == before


def test_adding_a_temperature_generates_only_the_new_stories(tiny_run, grown_run):
    assert stats(grown_run)["generated"] == 4 and stats(grown_run)["cached"] == 14
    grown, first = stories(grown_run), stories(tiny_run)
    assert grown.height == 18
    assert grown.filter(pl.col("temperature") == 2.0).height == 4
    assert grown.filter(pl.col("temperature") != 2.0).equals(first)


def test_same_config_from_scratch_is_byte_identical(tiny_run, tmp_path):
    share_converted_model(tiny_run, tmp_path)
    share_analysis_caches(tiny_run, tmp_path)  # (the job's embeddings and judge answers: not what is tested here)
    run_snakemake(tmp_path, TINY_CONFIG, str(GENERATIONS))
    assert stats(tmp_path)["generated"] == 14, "a fresh workdir has an empty cache: everything is generated again"
    assert (tmp_path / GENERATIONS).read_bytes() == (tiny_run / GENERATIONS).read_bytes()


def test_sharding_does_not_change_the_stories(tiny_run, sharded_run):
    """float32 on the CPU: the same tokens in any batch (logprobs can differ in the last float digits)."""
    assert stats(sharded_run, 0)["generated"] + stats(sharded_run, 1)["generated"] == 14
    assert min(stats(sharded_run, 0)["generated"], stats(sharded_run, 1)["generated"]) > 0
    sharded, single = stories(sharded_run), stories(tiny_run)
    assert sharded.select("story_id", "text", "token_ids").equals(single.select("story_id", "text", "token_ids"))


def kill_generation_job_once_stories_are_cached(snakemake: subprocess.Popen, cache: Path, stories: int) -> None:
    """SIGKILL the generation job (as the out-of-memory killer or a dead node would) once ``stories`` are cached."""
    import psutil

    deadline = time.monotonic() + 600
    while len(list(cache.glob("*/*.parquet"))) < stories:
        assert snakemake.poll() is None, "snakemake ended before the job could be killed"
        assert time.monotonic() < deadline, "no story was cached within 10 minutes"
        time.sleep(0.05)
    jobs = [
        child
        for child in psutil.Process(snakemake.pid).children(recursive=True)
        if any(part.endswith("generate.py") for part in child.cmdline())
    ]
    assert len(jobs) == 1, f"expected one generation job, found {[job.cmdline() for job in jobs]}"
    jobs[0].send_signal(signal.SIGKILL)


def test_a_killed_generation_job_keeps_its_finished_stories(tiny_run, tmp_path):
    share_converted_model(tiny_run, tmp_path)
    share_analysis_caches(tiny_run, tmp_path)
    # One story at a time, so that the job is killed with some stories finished and others not.
    config = {**TINY_CONFIG, "model": {"path": "embedded", "engine_args": {"max_num_seqs": 1}}}
    command = snakemake_command(tmp_path, config, str(GENERATIONS))
    with open(tmp_path / "killed-run.out", "w") as output:
        snakemake = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=snakemake_environment())
        try:
            kill_generation_job_once_stories_are_cached(snakemake, tmp_path / "results/cache/generations", 3)
            assert snakemake.wait(timeout=300) != 0
        finally:
            snakemake.kill()
    kept = len(list((tmp_path / "results/cache/generations").glob("*/*.parquet")))
    assert 3 <= kept < 14
    assert not (tmp_path / "results/tiny/shards/shard-0.parquet").exists(), "a killed job leaves no shard table"

    run_snakemake(tmp_path, TINY_CONFIG, str(GENERATIONS))  # batched again: max_num_seqs changes no token
    assert (stats(tmp_path)["cached"], stats(tmp_path)["generated"]) == (kept, 14 - kept)
    resumed, uninterrupted = stories(tmp_path), stories(tiny_run)
    assert resumed.select("story_id", "text", "token_ids").equals(uninterrupted.select("story_id", "text", "token_ids"))


def test_bad_config_stops_before_any_job_and_keeps_earlier_results(tiny_run):
    before = (tiny_run / GENERATIONS).read_bytes()
    completed = run_snakemake(tiny_run, {**TINY_CONFIG, "temperatures": [0.5, 2.5]}, check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "temperatures[1]: 2.5 is greater than the maximum of 2" in output
    assert "rule generate_shard" not in output
    assert (tiny_run / GENERATIONS).read_bytes() == before
    (tiny_run / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG, sort_keys=False))  # as the shared run had it


def test_a_prompt_longer_than_the_context_is_refused_before_the_engine_starts(tiny_run, tmp_path):
    """A 100k-character prompt used to take the job past 13 GB; now the job stops after tokenising, naming the
    prompt and both numbers, and leaves no shard table."""
    share_converted_model(tiny_run, tmp_path)
    config = {**TINY_CONFIG, "prompts": [{"id": "long", "text": "Write a story. " + "x" * 100_000}], "ratings": None}
    completed = run_snakemake(tmp_path, config, str(GENERATIONS), check=False)
    assert completed.returncode != 0
    log = (tmp_path / "results/tiny/logs/generate_shard-0.log").read_text()
    assert re.search(
        r"prompts: prompt 'long' is \d+ tokens .* model.max_model_len 2048 - decoding.max_tokens 32 "
        r"leaves room for 2016",
        log,
    ), log[-2000:]
    assert "Generated stories" not in log and "Initializing" not in log, "no engine was started"
    assert not (tmp_path / "results/tiny/shards/shard-0.parquet").exists()


def test_a_damaged_cache_entry_is_named_and_generated_again(tiny_run, tmp_path):
    """A truncated entry used to break every experiment sharing it with polars' 'File out of specification'."""
    share_converted_model(tiny_run, tmp_path)
    share_analysis_caches(tiny_run, tmp_path)
    shutil.copytree(tiny_run / "results/cache/generations", tmp_path / "results/cache/generations")
    damaged = sorted((tmp_path / "results/cache/generations").glob("*/*.parquet"))[0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    run_snakemake(tmp_path, TINY_CONFIG, str(GENERATIONS))
    assert (stats(tmp_path)["cached"], stats(tmp_path)["generated"]) == (13, 1)
    log = (tmp_path / "results/tiny/logs/generate_shard-0.log").read_text()
    assert f"cache entry {damaged.relative_to(tmp_path)} cannot be read" in log
    assert len(list((tmp_path / "results/cache/generations/quarantine").glob("*.parquet"))) == 1  # (+ its digest)
    again, first = stories(tmp_path), stories(tiny_run)
    assert again.select("story_id", "text", "token_ids").equals(first.select("story_id", "text", "token_ids"))


# --- scoring, figures and the report, on the same tiny run -------------------------------------------------


def test_every_story_is_scored_against_its_prompts_exemplar(tiny_run):
    scores = pl.read_parquet(tiny_run / "results/tiny/scores.parquet")
    assert scores["story_id"].to_list() == stories(tiny_run)["story_id"].to_list()
    exemplars = scores.filter(pl.col("is_exemplar"))
    assert exemplars["cosine_similarity"].to_numpy() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert exemplars["cosine_model"].to_numpy() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert exemplars["edit_distance"].to_list() == [0.0, 0.0]
    others = scores.filter(~pl.col("is_exemplar"))
    assert (others["edit_distance"] > 0).all() and (others["perplexity"] > 1).all()
    assert scores["cosine_similarity"].to_list() == scores["cosine_minilm"].to_list()


def test_summary_trends_and_pca_cover_the_grid(tiny_run):
    summary = pl.read_parquet(tiny_run / "results/tiny/summary.parquet")
    assert summary.select("prompt_id", "temperature").sort(["prompt_id", "temperature"]).rows() == [
        (prompt, t) for prompt in ("poem", "story") for t in (0.5, 1.0, 1.5)
    ]
    assert (summary["n"] == 2).all() and summary["diversity"].is_not_null().all()
    trend = pl.read_parquet(tiny_run / "results/tiny/trends.parquet")
    perplexity = trend.filter(pl.col("score") == "perplexity").row(0, named=True)
    assert perplexity["model"] == "mixedlm: (1 | prompt)" and perplexity["response"] == "log perplexity"  # two prompts
    assert perplexity["resampled"] == "stories within cells"  # independent seeding: stories are draws
    report = (tiny_run / "reports/tiny/index.html").read_text()
    assert "Seeding is <em>independent</em>" in report and "fitted on log perplexity" in report
    assert "seeding <code>independent</code>" in report  # in the setup's grid row
    pca = pl.read_parquet(tiny_run / "results/tiny/pca.parquet")
    assert pca.height == 14 and pca.filter(pl.col("is_exemplar")).height == 2


def test_figures_are_written_as_png_and_svg(tiny_run):
    for name in ("boxplots", "pca", "diversity", "trends", "frontier"):
        png, svg = (tiny_run / f"results/tiny/figures/{name}.{ext}" for ext in ("png", "svg"))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        assert "<svg" in svg.read_text()[:2000]
    figures = tiny_run / "results/tiny/figures"
    assert not list(figures.glob(".*partial")), "no temporary file left behind"
    assert sorted(path.name for path in figures.iterdir()) == sorted(
        f"{name}.{ext}" for name in ("boxplots", "pca", "diversity", "trends", "frontier") for ext in ("png", "svg")
    ), "the rules' declared outputs, nothing else"
    assert (tiny_run / "results/tiny/config.yaml").is_file()  # the tracking rule's declared copy of the config


def test_report_is_self_contained_and_states_the_findings(tiny_run):
    html = (tiny_run / "reports/tiny/index.html").read_text()
    manifest = json.loads((tiny_run / "resources/models/smollm2-135m-instruct.json").read_text())
    assert manifest["sha256"] in html and "Write a short poem." in html
    assert html.count('src="data:image/png;base64,') == 8  # 5 figures, 2 forest plots, the judge against people
    assert "http://" not in html.replace("http://www.w3.org", "") and 'src="results' not in html
    assert "Spearman ρ =" in html and "results/tiny/scores.parquet" in html
    table = stories(tiny_run)
    assert table.filter(pl.col("is_exemplar"))["text"][0].strip()[:40] in html
    # the study's own tables beside the paper's printed values, and what its hidden min-p would have removed
    assert "The study's own data" in html and "0.3078" in html and "0.639" in html
    assert "What the study's hidden min-p would have removed" in html and "Share below raw min-p 0.05" in html
    # the frontier of the one sampler, temperature: quality is the judge's coherence, since the judge ran
    assert "Samplers at equal diversity" in html and "From temperature 0.5 to 1.5, diversity goes from" in html
    assert "the LLM judge's mean coherence rating" in html  # (template text: not escaped)


def test_report_figures_render_in_a_real_browser(tiny_run, tmp_path, chromium):
    # The report, plus a script that records, once the page has loaded, whether each image decoded.
    probe = """<script>window.addEventListener('load', () => document.body.setAttribute('data-images',
      JSON.stringify([...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]))));</script>"""
    page = tmp_path / "report.html"
    page.write_text((tiny_run / "reports/tiny/index.html").read_text().replace("</body>", probe + "</body>"))
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    images = json.loads(re.search(r"data-images=\"([^\"]*)\"", dom).group(1).replace("&quot;", '"'))
    assert len(images) == 8, "five figures, a forest plot per source of ratings, the judge against people"
    assert all(complete and width > 500 and height > 200 for complete, width, height in images), images


def test_report_escapes_prompts_and_stories(tiny_run, tmp_path, chromium):
    """Model output and prompts are untrusted: they must reach the report as text, never as live markup."""
    from tempcreativity.report import render_report

    attack = (
        "Hi <script>document.body.setAttribute('data-pwned', 'script')</script> "
        "<img src=x onerror=\"document.body.setAttribute('data-pwned', 'img')\">"
    )
    config = validate_config(copy.deepcopy(TINY_CONFIG), SCHEMA)
    config["prompts"][0]["text"] = attack
    results = tiny_run / "results/tiny"
    html = render_report(
        config=config,
        manifest=json.loads((tiny_run / "resources/models/smollm2-135m-instruct.json").read_text()),
        generations=stories(tiny_run).with_columns(text=pl.lit(attack)),
        scores=pl.read_parquet(results / "scores.parquet"),
        summary=pl.read_parquet(results / "summary.parquet"),
        trend_table=pl.read_parquet(results / "trends.parquet"),
        figures={path.stem: path for path in (results / "figures").glob("*.png")},
        files={"stories <b>": "results/tiny/generations.parquet"},
        provenance={"git": {"commit": "abc", "dirty": False}, "packages": {}},
    )
    assert "<script>document" not in html and "<img src=x" not in html
    assert "&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;" in html and "onerror=&#34;" in html
    page = tmp_path / "report.html"
    page.write_text(html)
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert "<h1>" in dom and "Is temperature the creativity parameter?" in dom, "the report still renders"
    assert not re.search(r"<body[^>]*data-pwned", dom), "a script or event handler from a story ran"


def test_snakemake_report_has_the_captioned_figures(tiny_run):
    import zipfile

    completed = run_snakemake(tiny_run, TINY_CONFIG, "--report", "snakemake-report.html")
    report = (tiny_run / "snakemake-report.html").read_text()
    assert completed.returncode == 0 and "one panel per temperature" in report
    completed = run_snakemake(tiny_run, TINY_CONFIG, "--report", "report.zip")  # the catalog's form
    with zipfile.ZipFile(tiny_run / "report.zip") as archive:
        names = archive.namelist()
        pages = "".join(
            archive.read(name).decode(errors="replace") for name in names if name.endswith((".html", ".js"))
        )
    assert completed.returncode == 0 and any(name.endswith("boxplots.png") for name in names)
    assert "one panel per temperature" in pages


def test_the_generation_job_embeds_its_stories_as_declared_outputs(tiny_run):
    """Both embedders ran in the generation job, while vLLM was loaded, and wrote the shard's embeddings as its
    outputs; collect_embeddings only gathers them (no engine, no embedder)."""
    assert stats(tiny_run)["embedded_model"] == stats(tiny_run)["embedded_minilm"] == 14
    order = stories(tiny_run)["story_id"]
    for embedder in ("minilm", "model"):
        shard = pl.read_parquet(tiny_run / f"results/tiny/shards/shard-0.embeddings-{embedder}.parquet")
        gathered = pl.read_parquet(tiny_run / f"results/tiny/embeddings/{embedder}.parquet")
        assert gathered["story_id"].to_list() == order.to_list(), "in grid order"
        assert gathered.sort("story_id").equals(shard.sort("story_id")), embedder
        log = (tiny_run / f"results/tiny/logs/collect_embeddings-{embedder}.log").read_text()
        assert "14 stories from 1 shard(s)" in log and "Initializing a V1 LLM engine" not in log, embedder


def test_embeddings_of_old_stories_come_from_the_cache(grown_run):
    assert stats(grown_run)["embedded_minilm"] == stats(grown_run)["embedded_model"] == 4, "only the new stories"
    log = (grown_run / "results/tiny/logs/collect_embeddings-minilm.log").read_text()
    assert "18 stories from 1 shard(s)" in log


# --- ratings: the LLM judge and people's ratings ------------------------------------------------------------


def test_judge_rates_every_story_once_with_its_expected_score(tiny_run):
    judge = pl.read_csv(tiny_run / "results/tiny/ratings/judge_ratings.csv")
    assert judge.height == 12 and set(judge["participant_id"]) == {"judge"}, "one rating per story, not per seed"
    for item in ("novelty", "typicality", "cohesion", "coherence"):
        assert judge[item].is_between(1.0, 5.0).all(), item
    assert judge["rater"].str.starts_with("llm-judge:").all() and set(judge["method"]) == {"expected"}
    assert judge["digit_mass"].is_between(0.0, 1.0).all()
    assert sorted(judge["story_id"]) == sorted(stories(tiny_run).filter(~pl.col("is_exemplar"))["story_id"])


def test_the_judge_asks_its_questions_on_the_generation_engine(tiny_run):
    """The judge is the generating model: the generation job asked every question while its engine was up and wrote
    the ratings as its outputs, so the judge's own job took them and asked nothing, starting no engine."""
    stats = json.loads((tiny_run / "results/tiny/shards/shard-0.stats.json").read_text())
    assert stats["judge_answers"] == stats["judge_asked"] == 12 * 4, "each story x 4 criteria, once"
    assert stats["judge_study_answers"] == stats["judge_study_asked"] == 31 * 4, "and the study's 31 stories"
    assert 0 < stats["judge_seconds"] and 0 < stats["judge_study_seconds"]
    judge_log = (tiny_run / "results/tiny/logs/judge_stories.log").read_text()
    assert "judge: 43 stories rated by the generation jobs; the rest: 0 answers, 0 asked" in judge_log
    shard = pl.read_parquet(tiny_run / "results/tiny/shards/shard-0.judge.parquet")
    judged = pl.read_csv(tiny_run / "results/tiny/ratings/judge_ratings.csv")
    assert shard.height == 12 and judged.equals(pl.read_csv(shard.sort("story_id").write_csv().encode()))
    assert "Initializing a V1 LLM engine" not in judge_log


def test_judge_expected_scores_match_transformers(tiny_run):
    """vLLM's log-probabilities of the answers 1..5 against a transformers forward pass of the same prompt."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tempcreativity.judge import _judge_prompts, expected_score, scale_token_ids, truncate_tokens

    folder = tiny_run / "resources/models/smollm2-135m-instruct"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    generations = stories(tiny_run)
    exemplars = {
        (row["model_id"], row["prompt_id"]): truncate_tokens(tokenizer, row["text"], 96)
        for row in generations.filter(pl.col("is_exemplar")).iter_rows(named=True)
    }
    story = generations.filter(~pl.col("is_exemplar")).head(1)
    prompts, keys = _judge_prompts(story, exemplars, tokenizer, 96)
    judged = pl.read_csv(tiny_run / "results/tiny/ratings/judge_ratings.csv").filter(pl.col("story_id") == keys[0][0])
    digits = scale_token_ids(tokenizer)
    for prompt, (_, _, criterion) in zip(prompts, keys):
        with torch.no_grad():
            logits = model(torch.tensor([prompt])).logits[0, -1].double()
        logprobs = torch.log_softmax(logits, dim=-1)[digits].numpy()
        assert judged[criterion][0] == pytest.approx(expected_score(list(np.asarray(logprobs)))[0], abs=2e-3), criterion


def test_judge_is_checked_against_the_studys_people(tiny_run):
    table = pl.read_csv(tiny_run / "results/tiny/ratings/judge_vs_people.csv")
    assert table["criterion"].to_list() == ["novelty", "typicality", "cohesion", "coherence"]
    assert set(table["n"]) == {31} and table["rho"].is_between(-1, 1).all()
    assert (table["rho_ci_low"] <= table["rho"]).all() and (table["rho"] <= table["rho_ci_high"]).all()
    assert pl.read_csv(tiny_run / "results/tiny/ratings/judge_study_ratings.csv").height == 31
    assert (tiny_run / "results/tiny/ratings/judge_vs_people.png").stat().st_size > 10_000
    html = (tiny_run / "reports/tiny/index.html").read_text()
    assert "Is the judge informative?" in html and "On the study&#39;s stories the judge" in html
    assert "The judge is the model that generated the stories" in html


@pytest.mark.parametrize("source", ["human", "judge"])
def test_ratings_tables_for_people_and_judge(tiny_run, source):
    folder = tiny_run / "results/tiny/ratings" / source
    descriptives = pl.read_csv(folder / "ratings_descriptives.csv")
    assert descriptives["item"].to_list() == ["novelty", "typicality", "cohesion", "coherence", "mean"]
    lme = pl.read_csv(folder / "ratings_lme.csv")
    models = ["participant", "crossed"] if source == "human" else ["none"]  # people rated each story 3 times
    assert lme["random_effects"].unique(maintain_order=True).to_list() == models
    assert lme.height == len(models) * 4 * 4, "four ratings x temperature, perplexity, cosine similarity, edit distance"
    assert set(lme["predictor"]) == {"temperature", "perplexity", "cosine_similarity", "edit_distance"}
    assert (folder / "forest.png").stat().st_size > 10_000


def test_report_says_which_ratings_came_from_people_and_which_from_a_model(tiny_run):
    html = (tiny_run / "reports/tiny/index.html").read_text()
    assert "Ratings by people" in html and "Ratings by an LLM judge" in html
    assert "not by people" in html and html.count("Cronbach") >= 2


# The survey of the tiny grid (3 temperatures x 4 stories): 6 people x 3 of 6 stories, and a 2 x 2 power grid with
# few replicates, so that the simulation takes seconds.
SURVEY = {
    "enabled": True,
    "participants": 6,
    "stories_per_participant": 3,
    "stories_per_temperature": 2,
    "power": {"participants": [4, 8], "stories_per_participant": [3, 6], "replicates": 20},
}


def test_the_report_plans_a_human_evaluation(tiny_run, tmp_path, capsys):
    """survey.enabled on a copy of the tiny run (only the new rule and the report run): plan_human_study simulates
    the power of the grid, of the planned survey and of the ratings file's own design from that file's components
    (people.csv, as a pilot), writes the survey the `tempcreativity survey` command would, and the report has a
    section on it with the figure, one sentence per criterion, the design and the commands."""
    from tempcreativity import cli
    from tempcreativity.ratings import RATING_ITEMS

    workdir = tmp_path / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    survey = workdir / "results/tiny/survey"
    run_snakemake(workdir, TINY_CONFIG | {"survey": SURVEY}, "reports/tiny/index.html", "results/tiny/survey/forms")
    ran = dict(re.findall(r"^(\w+)\s+(\d+)$", (workdir / "snakemake.out").read_text(), flags=re.M))
    assert ran.get("plan_human_study") == "1" and ran.get("build_report") == "1" and "generate_shard" not in ran
    power = pl.read_csv(survey / "power.csv")
    assert power.group_by("design").len().sort("design").rows() == [("balanced", 16), ("observed", 4), ("planned", 4)]
    assert power["criterion"].unique(maintain_order=True).to_list() == list(RATING_ITEMS)
    assert (power["replicates"] == 20).all() and (power["temperatures"] == 3).all()
    grid = power.filter(pl.col("design") == "balanced")
    assert set(grid["participants"]) == {4, 8} and set(grid["stories_per_participant"]) == {3, 6}
    assert set(grid["stories_per_temperature"]) == {2}
    planned = power.filter(pl.col("design") == "planned")
    assert planned.select("participants", "stories_per_participant", "stories", "ratings").unique().rows() == [
        (6, 3, 6, 18)
    ]
    assert planned["power"].is_between(0, 1).all() and (planned["power_low"] <= planned["power_high"]).all()
    assert set(power.filter(pl.col("design") == "observed")["participants"]) == {3}, "people.csv: 3 raters"
    sentences = (survey / "power.txt").read_text().splitlines()
    assert len(sentences) == 4 and all(line.startswith("With people.csv's variance components") for line in sentences)
    assert all(
        "on the planned survey (6 raters rating 3 stories each, 18 ratings of 6 stories)" in line for line in sentences
    )
    assert (survey / "power.png").stat().st_size > 10_000 and (survey / "power.svg").read_text().count("<svg") == 1
    forms = sorted(path.name for path in (survey / "forms").glob("P*.html"))  # (Snakemake adds .snakemake_timestamp)
    assert forms == [f"P{index}.html" for index in range(1, 7)]
    key = pl.read_csv(survey / "key.csv")
    assert key.height == 6 and set(key["story_id"]) <= set(stories(workdir)["story_id"])
    assert key.group_by("temperature").len()["len"].to_list() == [2, 2, 2]
    assert pl.read_csv(survey / "assignments.csv").height == 18
    assert "6 participants x 3 stories = 18 ratings of 6 stories" in (survey / "design.txt").read_text()
    out = tmp_path / "by-hand"
    assert (
        cli.main(
            [
                "survey",
                str(workdir / GENERATIONS),
                "--participants",
                "6",
                "--stories-per-participant",
                "3",
                "--stories-per-temperature",
                "2",
                "--seed",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    for name in ("key.csv", "assignments.csv", "design.txt", "forms/P1.html"):
        assert (out / name).read_bytes() == (survey / name).read_bytes(), f"the command's survey: {name}"
    html = (workdir / "reports/tiny/index.html").read_text()
    section = html.split("<h2>Planning a human evaluation</h2>", 1)[1].split("<h2>", 1)[0]
    assert section.count("With people.csv&#39;s variance components") == 4
    assert 'src="data:image/png;base64,' in section and "Story pairs no participant rated both of" in section
    assert "6 participants, each rating 3 of\n6 stories" in section
    assert "tempcreativity power --ratings people.csv --temperatures 0.5,1,1.5 --participants 4,8" in section
    assert "tempcreativity survey results/tiny/generations.parquet --participants 6" in section
    assert "tempcreativity survey-import answers/ --key results/tiny/survey/key.csv" in section
    assert "<code>results/tiny/survey/</code>" in html, "the survey's folder among the report's files"
    assert "Planning a human evaluation" not in (tiny_run / "reports/tiny/index.html").read_text(), "off by default"
