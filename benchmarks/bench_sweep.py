"""Time and peak memory of every analysis rule at the size of a real sweep, on synthetic stories (nothing generated):

    .venv/bin/python benchmarks/bench_sweep.py [--config config/samplers-gpu.yaml] [--stories N] [--seeds N]
                                               [--no-judge] [--no-mlflow] [--cores 1] [--workdir DIR]
                                               [--tokenizer FOLDER] [--seed 0]

1. **The generation side's products, written without an engine** (seeded; 6 s and 450 MB for 12,600 stories).
   The grid is the package's own (``config.load_config`` over config/config.yaml, as Snakemake merges them, then
   ``grid.expand_grid`` and ``grid.split_into_shards``), so story ids, seeds and shards are those of a real run.
   For every shard, what ``generate_shard`` declares: ``shards/shard-<n>.parquet`` (the generations table's
   columns), ``shard-<n>.stats.json``, ``shard-<n>.embeddings-<embedder>.parquet`` and the judge's two empty
   tables; one manifest per model under resources/models/ (``describe_model``'s; the sha256 is of the model's
   path, no weights are read); with the judge, ``ratings/judge_ratings.csv`` and ``judge_study_ratings.csv``
   (``judge_stories``'s); and the MiniLM vectors of the study's 32 stories in the embedding cache, as any run after
   the first has them (``study_tables`` reads them there; its MiniLM pass is a one-time cost of a few seconds that
   does not grow with the sweep).

   - Texts: sentences of the study's 32 released stories (resources/peeperkorn2024/), resampled. Each model's
     exemplar is one study story (lengthened to at least 500 tokens); a story starts with the exemplar's first k
     sentences (k geometric, shorter as temperature rises: stories diverge from the greedy one), then draws random
     sentences of the pool until it reaches its length (uniform in --min-tokens..--max-tokens). From T = 1 on,
     words are replaced by others of the pool's vocabulary and by junk fragments (up to 60% at T = 2), as
     high-temperature stories degrade. At T = 0.01, 95% of the stories are the exemplar itself (greedy-like).
   - Token ids: each pool sentence tokenised once with the embedded model's tokenizer
     (resources/models/smollm2-135m-instruct/tokenizer.json, or --tokenizer), a story's ids the concatenation of
     its sentences' ids; where that folder does not exist, random ids below SmolLM2's vocabulary size (49,152),
     about 1.3 per word (the analysis reads only their number; the output says which was used).
   - Log-probabilities (raw, before temperature): the most likely token's is -Exp(0.15); the sampled token is
     that one with probability exp(-1.5 T), else a Gamma draw below it, scaled so that a story's mean negative
     log-probability is about 0.25 + 1.6 T^2 (perplexity about 1.3 at T = 0.01, 6 at T = 1, 800 at T = 2) times a
     per-story factor (log-normal, sd 0.25). The exemplar's are those of greedy decoding.
   - Embeddings, one table per embedder of the config (MiniLM 384 dimensions, the model embedder 576, SmolLM2's
     hidden size): per model and prompt a random unit vector for the exemplar, each story that vector plus
     isotropic noise of norm (0.4 + 0.9 T), normalised (cosine to the exemplar about 0.93 at T = 0.01, 0.6 at
     T = 1, 0.4 at T = 2).
   - The judge's ratings (the study's four criteria, 1-5, expected values): coherence and cohesion rising with
     temperature (worse), novelty rising, typicality falling, with noise.

2. **Every downstream rule, by Snakemake, each job in its own process.** Snakemake runs the repository's Snakefile
   in the work folder with ``--allowed-rules`` naming only the analysis rules (ANALYSIS_RULES: collect_generations,
   collect_embeddings, score_stories, summarise_scores, plot_figures, frontier, study_tables, analyse_ratings,
   plot_ratings, judge_vs_people, plan_human_study, build_report, track_mlflow): the rules that make the files of
   step 1 (generate_shard, describe_model, convert_embedded_model, judge_stories) are then left out of the DAG, so
   their outputs are plain input files, as the study's resources are, and a missing one is an error
   (MissingInputException), never a generation. One exception: judge_vs_people's input names
   ``rules.judge_stories.output``, which brings judge_stories into the DAG whatever --allowed-rules says, and it
   would run (an engine) whenever generations.parquet is newer than its outputs. So Snakemake runs three times:
   the gathering rules first (generations.parquet, the embeddings); then, the judge's files touched, a dry run,
   whose job list must hold no rule outside ANALYSIS_RULES (else the benchmark stops and says which); then the
   analysis. (``--touch`` would need every file's producer to be runnable; mtimes alone leave the params and code
   triggers of rules whose outputs have no metadata.) ``--cores 1`` by default: one job at a time, so that each
   rule's time is its own.

   Measurement: most of these rules have no ``benchmark:`` directive (only score_stories and summarise_scores),
   and Snakemake's benchmark samples the memory of the job's processes every 0.5 s, then every 30 s after the
   first 15 s, which misses short peaks. So every job's Python process records its own numbers from the kernel
   at exit: a ``sitecustomize`` module placed on the jobs' PYTHONPATH (written into the work folder, active only
   in processes that hold Snakemake's ``snakemake`` object, i.e. script jobs) registers an ``atexit`` hook that
   writes the job's rule and wildcards, wall seconds from interpreter start to exit (imports included), CPU
   seconds, and its peak resident memory: the kernel's VmHWM of the job's process (/proc/self/status), or a
   child's getrusage maximum where larger. (The job's own getrusage ru_maxrss would not do: it keeps the
   high-water mark from before the exec, when the process was a fork of Snakemake and counted Snakemake's pages.)
   Where a rule has a ``benchmark:`` file Snakemake's numbers are printed beside.

3. **MLflow against a real server**: ``mlflow server`` on 127.0.0.1 (sqlite backend, proxied artifacts, one
   worker, as tests/conftest.py starts it) in the work folder, the run's ``mlflow.tracking_uri`` pointed at it;
   stopped at the end. It boots while the products are written and gathered. ``--no-mlflow``: no server, no
   tracking rule.

Default grid: config/samplers-gpu.yaml's shape (3 models x 7 temperatures x 3 min-p x 2 top-p x 100 seeds =
12,600 stories and 3 exemplars), the judge's ratings as there (``--no-judge``: none), stories of 500-1,500 tokens
(decoding.max_tokens is raised to 1,600 for them). ``--stories N`` sets the seeds to the most that keep the grid at
or under N (100000: 793 seeds, 99,918 stories, the pipeline's bound). Prints Markdown tables; the work folder (the
report, the figures, every table) is kept."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
STUDY_DATA = REPO / "resources" / "peeperkorn2024"
DEFAULT_TOKENIZER = REPO / "resources" / "models" / "smollm2-135m-instruct"
VOCABULARY = 49_152  # SmolLM2's vocabulary size, for random token ids without its tokenizer
DIMENSIONS = {"minilm": 384, "model": 576}  # all-MiniLM-L6-v2; SmolLM2-135M's hidden size
ANALYSIS_RULES = (
    "all",
    "collect_generations",
    "collect_embeddings",
    "score_stories",
    "summarise_scores",
    "plot_figures",
    "frontier",
    "study_tables",
    "analyse_ratings",
    "plot_ratings",
    "judge_vs_people",
    "plan_human_study",
    "build_report",
    "track_mlflow",
)
USAGE_VARIABLE = "TEMPCREATIVITY_BENCH_USAGE"
USAGE_HOOK = f'''"""Written by benchmarks/bench_sweep.py: a Snakemake script job (a process holding the ``snakemake``
object) records, at exit, its rule, wildcards, wall and CPU seconds and peak resident memory in ${USAGE_VARIABLE}."""
import atexit
import json
import os
import resource
import sys
import time

_STARTED = time.time()


def _record():
    job = getattr(sys.modules.get("__main__"), "snakemake", None)
    folder = os.environ.get("{USAGE_VARIABLE}")
    if job is None or not folder:
        return
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    # (getrusage's own ru_maxrss keeps the high-water mark of the process before its exec, which was a fork of
    # Snakemake and counted Snakemake's pages: the kernel's VmHWM is the job's own memory's)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    record = {{
        "rule": job.rule,
        "wildcards": dict(job.wildcards.items()),
        "started": _STARTED,
        "wall_s": time.time() - _STARTED,
        "cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
        "max_rss_kib": max(peak, children.ru_maxrss),
    }}
    with open(os.path.join(folder, f"{{os.getpid()}}.json"), "w") as handle:
        json.dump(record, handle)


atexit.register(_record)
'''


# --- the synthetic products ---------------------------------------------------------------------------------------


def bench_config(base: Path, max_tokens: int, judge: bool, tracking_uri: str | None) -> dict:
    """The run's config file: ``base`` with the benchmark's experiment name, room for stories of ``max_tokens``
    (and the sentence that crosses it), the judge on or off, no survey, and MLflow pointed at ``tracking_uri`` (or
    off)."""
    config = yaml.safe_load(base.read_text())
    config["experiment"] = "sweep-bench"
    config.setdefault("decoding", {})["max_tokens"] = max_tokens + 100
    config["judge"] = {**config.get("judge", {}), "enabled": judge}
    config["mlflow"] = {"enabled": tracking_uri is not None, "tracking_uri": tracking_uri}
    config["survey"] = {**config.get("survey", {}), "enabled": False}
    return config


def validated(written: dict, config_file: Path) -> dict:
    """``written`` saved to ``config_file`` and read back as Snakemake will see it: laid over config/config.yaml
    and validated (tempcreativity.config.load_config)."""
    from tempcreativity.config import load_config

    config_file.write_text(yaml.safe_dump(written, sort_keys=False))
    return load_config(REPO / "config/config.yaml", SCHEMA, config_file)


def stories_per_seed(config: dict) -> int:
    """Stories per seed index: models x prompts x swept settings x temperatures."""
    from tempcreativity.grid import sampler_cells, temperatures

    return len(config["models"]) * len(config["prompts"]) * len(sampler_cells(config)) * len(temperatures(config))


def sentence_pool(folder: Path) -> list[str]:
    """The sentences of the study's stories and exemplar, each with what follows it (a space, or a paragraph
    break)."""
    from tempcreativity.peeperkorn import load_study_stories

    pool = []
    for text in load_study_stories(folder)["text"].to_list():
        for paragraph in re.split(r"\n\s*\n", text):
            sentences = [s for s in re.split(r"(?<=[.!?\"”])\s+(?=[A-Z\"“])", paragraph.strip()) if s]
            pool += [sentence + " " for sentence in sentences[:-1]] + [sentences[-1] + "\n\n"] if sentences else []
    return pool


def corrupt(sentence: str, share: float, vocabulary: list[str], rng: np.random.Generator) -> str:
    """The sentence with ``share`` of its words replaced: mostly by words of ``vocabulary``, a quarter by junk."""
    words = sentence.split(" ")
    for index in np.flatnonzero(rng.random(len(words)) < share):
        if rng.random() < 0.25:
            words[index] = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789#<|_.-'"), rng.integers(2, 9)))
        else:
            words[index] = vocabulary[rng.integers(len(vocabulary))]
    return " ".join(words)


class TokenCounter:
    """Token ids of a piece of text: the embedded model's tokenizer where its folder exists, else random ids."""

    def __init__(self, folder: Path | None, rng: np.random.Generator):
        self.rng = rng
        path = folder / "tokenizer.json" if folder else None
        if path is not None and path.is_file():
            from tokenizers import Tokenizer

            self.tokenizer, self.source = Tokenizer.from_file(str(path)), f"{path.parent.name}'s tokenizer"
        else:
            self.tokenizer, self.source = None, f"random ids below {VOCABULARY:,} (no tokenizer.json found)"

    def ids(self, texts: list[str]) -> list[np.ndarray]:
        if self.tokenizer is not None:
            encoded = self.tokenizer.encode_batch(texts, add_special_tokens=False)
            return [np.asarray(item.ids, dtype=np.int32) for item in encoded]
        counts = [max(1, round(1.3 * len(text.split()))) for text in texts]
        return [self.rng.integers(0, VOCABULARY, count, dtype=np.int32) for count in counts]


def noise_share(temperature: float) -> float:
    return float(np.clip((temperature - 0.8) * 0.5, 0.0, 0.6))


class StoryMaker:
    """Seeded synthetic stories: text, token ids, log-probabilities and a vector per embedder (see the module's
    docstring for the model)."""

    VARIANTS = 3  # corrupted versions of each pool sentence per temperature

    def __init__(self, temperatures: list[float], tokenizer: Path | None, min_tokens: int, max_tokens: int, seed: int):
        rng = np.random.default_rng([seed, 0])
        self.seed, self.min_tokens, self.max_tokens = seed, min_tokens, max_tokens
        self.tokens = TokenCounter(tokenizer, rng)
        self.pool = sentence_pool(STUDY_DATA)
        self.pool_ids = self.tokens.ids(self.pool)
        vocabulary = sorted({word for sentence in self.pool for word in sentence.split()})
        self.noisy: dict[float, tuple[list[str], list[np.ndarray]]] = {}
        for temperature in temperatures:
            share = noise_share(temperature)
            if share > 0:
                texts = [corrupt(s, share, vocabulary, rng) for s in self.pool for _ in range(self.VARIANTS)]
                self.noisy[temperature] = (texts, self.tokens.ids(texts))
        self.exemplars: dict[tuple, dict] = {}
        self.directions: dict[tuple, np.ndarray] = {}

    def _sentences(self, indices: list[int], noisy: tuple | None, rng) -> tuple[str, np.ndarray]:
        if noisy is None:
            texts, ids = [self.pool[i] for i in indices], [self.pool_ids[i] for i in indices]
        else:
            variants = rng.integers(0, self.VARIANTS, len(indices))
            picked = [i * self.VARIANTS + v for i, v in zip(indices, variants)]
            texts, ids = [noisy[0][i] for i in picked], [noisy[1][i] for i in picked]
        return "".join(texts).strip(), np.concatenate(ids)

    def exemplar(self, owner: tuple, number: int, embedders: list[str]) -> dict:
        """The greedy story of a model x prompt (``number``: which of them, for a different study story)."""
        if owner not in self.exemplars:
            rng = np.random.default_rng([self.seed, 1, number])
            starts = [i for i, s in enumerate(self.pool) if i == 0 or self.pool[i - 1].endswith("\n\n")]
            start = starts[number % len(starts)]
            indices, count = [], 0
            while count < self.min_tokens or (indices and not self.pool[indices[-1]].endswith("\n\n")):
                index = (start + len(indices)) % len(self.pool)
                indices.append(index)
                count += len(self.pool_ids[index])
            text, ids = self._sentences(indices, None, rng)
            top = -rng.exponential(0.25, len(ids))
            for name in embedders:
                vector = rng.standard_normal(DIMENSIONS[name])
                self.directions[(owner, name)] = (vector / np.linalg.norm(vector)).astype(np.float32)
            self.exemplars[owner] = {
                "indices": indices,
                "text": text,
                "token_ids": ids,
                "logprobs": top,
                "top_logprobs": top,
                "vectors": {name: self.directions[(owner, name)] for name in embedders},
            }
        return self.exemplars[owner]

    def story(self, owner: tuple, temperature: float, number: int, embedders: list[str]) -> dict:
        """Story ``number`` (its index in the grid) of a model x prompt at ``temperature``."""
        rng = np.random.default_rng([self.seed, 2, number])
        exemplar = self.exemplars[owner]
        if rng.random() < np.clip(1 - 5 * temperature, 0, 1):
            return exemplar  # greedy-like: the exemplar itself
        target = int(rng.integers(self.min_tokens, self.max_tokens + 1))
        shared = int(rng.geometric(1 - np.exp(-3 * temperature))) - 1  # the exemplar's first sentences
        head = exemplar["indices"][:shared]
        head_tokens = sum(len(self.pool_ids[i]) for i in head)
        mean_length = np.mean([len(ids) for ids in self.pool_ids])
        tail = rng.integers(0, len(self.pool), max(1, int((target - head_tokens) / mean_length) + 1)).tolist()
        head_text, head_ids = self._sentences(head, None, rng) if head else ("", np.zeros(0, np.int32))
        tail_text, tail_ids = self._sentences(tail, self.noisy.get(temperature), rng)
        text = f"{head_text} {tail_text}".strip() if head else tail_text
        ids = np.concatenate([head_ids, tail_ids])
        top = -rng.exponential(0.15, len(ids))
        mean_nll = (0.25 + 1.6 * temperature**2) * rng.lognormal(0, 0.25)
        argmax = np.exp(-1.5 * temperature)
        scale = max(mean_nll - 0.15, 0.01) / ((1 - argmax) * 1.2 + 1e-9)
        extra = np.where(rng.random(len(ids)) < argmax, 0.0, rng.gamma(1.2, scale, len(ids)))
        vectors = {}
        for name in embedders:
            noise = rng.standard_normal(DIMENSIONS[name])
            noise *= (0.4 + 0.9 * temperature) / np.linalg.norm(noise)
            vector = self.directions[(owner, name)] + noise
            vectors[name] = (vector / np.linalg.norm(vector)).astype(np.float32)
        return {"text": text, "token_ids": ids, "logprobs": top - extra, "top_logprobs": top, "vectors": vectors}


def list_column(arrays: list[np.ndarray], dtype: pa.DataType) -> pl.Series:
    """A polars list column from per-row arrays (through one Arrow ListArray, without Python lists)."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int32)
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    return pl.from_arrow(pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=dtype)))


def write_products(workdir: Path, config: dict, maker: StoryMaker, judge: bool) -> dict:
    """Write every product of the generation side for ``config`` (validated) under ``workdir``; returns counts."""
    from tempcreativity.embedding import embedding_table
    from tempcreativity.generation import GENERATIONS_SCHEMA, REQUEST_SCHEMA
    from tempcreativity.grid import expand_grid, split_into_shards
    from tempcreativity.io import write_json_atomic, write_parquet_atomic, write_text_atomic
    from tempcreativity.judge import RATINGS_SCHEMA, empty_ratings
    from tempcreativity.model import model_slug

    results = workdir / "results" / config["experiment"]
    embedders = config["scoring"]["embedders"]
    manifests = {}
    for model in config["models"]:
        manifest = {
            "model": model["path"],
            "config_path": model["path"],
            "folder": "(synthetic: bench_sweep.py read no weights)",
            "sha256": hashlib.sha256(model["path"].encode()).hexdigest(),
        }
        write_json_atomic(manifest, workdir / "resources" / "models" / f"{model_slug(model['path'])}.json")
        manifests[model["id"]] = manifest
    requests = expand_grid(config)
    number_of = {request.story_id: index for index, request in enumerate(requests)}
    owners = list(dict.fromkeys((r.model_id, r.prompt_id) for r in requests))
    for index, owner in enumerate(owners):
        maker.exemplar(owner, index, embedders)
    counts = {"stories": 0, "exemplars": 0, "tokens": 0, "shards": 0}
    ratings = []
    for shard, plan in enumerate(split_into_shards(requests, config["sharding"]["shards"])):
        if not plan.requests:
            continue
        stories = [
            maker.exemplars[(r.model_id, r.prompt_id)]
            if r.is_exemplar
            else maker.story((r.model_id, r.prompt_id), r.temperature, number_of[r.story_id], embedders)
            for r in plan.requests
        ]
        described = pl.DataFrame(
            [
                {
                    "story_id": r.story_id,
                    "experiment": config["experiment"],
                    "model": manifests[r.model_id]["model"],
                    "model_sha256": manifests[r.model_id]["sha256"],
                    **r.to_dict(),
                    "max_tokens": config["decoding"]["max_tokens"],
                    "stop": config["decoding"]["stop"],
                }
                for r in plan.requests
            ],
            schema=REQUEST_SCHEMA,
        )
        lengths = [len(story["token_ids"]) for story in stories]
        generated = pl.DataFrame(
            {
                "cache_key": [hashlib.sha256(r.story_id.encode()).hexdigest() for r in plan.requests],
                "text": [story["text"] for story in stories],
                "token_ids": list_column([story["token_ids"] for story in stories], pa.int32()),
                "logprobs": list_column([story["logprobs"] for story in stories], pa.float64()),
                "top_logprobs": list_column([story["top_logprobs"] for story in stories], pa.float64()),
                "cumulative_logprob": [float(story["logprobs"].sum()) for story in stories],
                "num_tokens": lengths,
                "finish_reason": "stop",
                "prompt_num_tokens": 32,
            }
        )
        table = pl.concat([described, generated], how="horizontal").select(list(GENERATIONS_SCHEMA))
        table = table.cast(GENERATIONS_SCHEMA)
        shards = results / "shards"
        write_parquet_atomic(table, shards / f"shard-{shard}.parquet")
        for name in embedders:
            vectors = np.vstack([story["vectors"][name] for story in stories])
            write_parquet_atomic(
                embedding_table(table["story_id"], vectors), shards / f"shard-{shard}.embeddings-{name}.parquet"
            )
        for suffix in ("judge", "judge-study"):
            write_parquet_atomic(empty_ratings(), shards / f"shard-{shard}.{suffix}.parquet")
        tokens = int(sum(lengths))
        stats = {
            "shard": shard,
            "requested": len(stories),
            "cached": 0,
            "generated": len(stories),
            "generated_tokens": tokens,
            "engine_start_seconds": 60.0,
            "generate_seconds": round(tokens / 2000, 3),
            "tokens_per_second": 2000.0,
            "synthetic": True,
            **{f"embedded_{name}": len(stories) for name in embedders},
        }
        write_json_atomic(stats, shards / f"shard-{shard}.stats.json")
        if judge:
            ratings.append(judge_ratings(table.select("story_id", "temperature"), maker.seed + shard))
        exemplars = int(table["is_exemplar"].sum())
        counts = {
            "stories": counts["stories"] + table.height - exemplars,
            "exemplars": counts["exemplars"] + exemplars,
            "tokens": counts["tokens"] + tokens,
            "shards": counts["shards"] + 1,
        }
    if judge:
        from tempcreativity.peeperkorn import load_study_stories

        model_name = config["judge"]["model"] or config["models"][0]["path"]
        study = load_study_stories(STUDY_DATA).select("story_id", "temperature")
        for path, frame in (
            (results / "ratings" / "judge_ratings.csv", pl.concat(ratings)),
            (results / "ratings" / "judge_study_ratings.csv", judge_ratings(study, maker.seed - 1)),
        ):
            frame = frame.with_columns(rater=pl.lit(f"llm-judge:{model_name}")).select(list(RATINGS_SCHEMA))
            write_text_atomic(frame.sort("story_id").write_csv(), path)
    seed_study_vectors(workdir / "results" / "cache" / "embeddings", maker.seed)
    return counts


def judge_ratings(stories: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Expected-value ratings of the study's four criteria for ``stories`` (story_id, temperature)."""
    rng = np.random.default_rng([abs(seed), 3])
    t, n = stories["temperature"].to_numpy(), stories.height
    slopes = {"novelty": (2.0, 0.6), "typicality": (4.0, -0.7), "cohesion": (1.6, 0.8), "coherence": (1.5, 0.9)}
    return stories.with_columns(
        participant_id=pl.lit("judge"),
        **{name: np.clip(a + b * t + rng.normal(0, 0.5, n), 1, 5) for name, (a, b) in slopes.items()},
        method=pl.lit("expected"),
        samples=pl.lit(1, pl.Int32),
        digit_mass=rng.uniform(0.8, 1.0, n),
    )


def seed_study_vectors(cache_dir: Path, seed: int) -> None:
    """The MiniLM vectors of the study's stories in the embedding cache, under the keys embed_stories looks up
    (random unit vectors: study_tables then embeds nothing, as on any run after the first)."""
    from tempcreativity.cache import ContentStore, cache_key
    from tempcreativity.embedding import EMBEDDING_SCHEMA, embedder_identity
    from tempcreativity.peeperkorn import load_study_stories

    identity = embedder_identity("minilm", {}, "float32")
    texts = load_study_stories(STUDY_DATA)["text"].to_list()
    keys = [cache_key({**identity, "text": text}) for text in texts]
    rng = np.random.default_rng([seed, 4])

    def vectors(missing: list[str]) -> pl.DataFrame:
        raw = rng.standard_normal((len(missing), DIMENSIONS["minilm"]))
        unit = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
        return pl.DataFrame(
            {"cache_key": missing, "vector": unit.tolist(), "windows": [1] * len(missing)}, schema=EMBEDDING_SCHEMA
        )

    ContentStore(cache_dir, EMBEDDING_SCHEMA).fill(keys, vectors)


# --- running and measuring ----------------------------------------------------------------------------------------


@contextmanager
def mlflow_server(folder: Path):
    """A real ``mlflow server`` on 127.0.0.1 (sqlite backend, proxied artifacts, one worker), started in the
    background (it takes seconds to boot); yields its URI and a function that waits until it answers."""
    import requests

    folder.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--workers",
        "1",
        "--allowed-hosts",
        f"localhost:{port},127.0.0.1:{port}",
    ]
    environment = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with open(folder / "server.log", "a") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=environment, start_new_session=True)

    def ready() -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{uri}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"mlflow server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)

    try:
        yield uri, ready
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def snakemake(workdir: Path, config_file: Path, cores: int, targets: list[str], dry_run: bool = False) -> str:
    """Run Snakemake on ``targets`` with only ANALYSIS_RULES allowed (see the module's docstring); its output."""
    hook, usage = workdir / ".usage-hook", workdir / ".usage"
    hook.mkdir(exist_ok=True)
    usage.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(USAGE_HOOK)
    python_path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    environment = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"} | {
        "PYTHONPATH": python_path,
        USAGE_VARIABLE: str(usage),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,  # (first: --allowed-rules and --configfile take every word after them)
        *(["--dry-run"] if dry_run else []),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        "--show-failed-logs",
        "--allowed-rules",
        *ANALYSIS_RULES,
        "--configfile",
        str(config_file),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, env=environment)
    output = completed.stdout + completed.stderr
    with open(workdir / "snakemake.log", "a") as log:
        log.write(output)
    if completed.returncode != 0:
        raise SystemExit(f"snakemake failed (exit {completed.returncode}); its output ends:\n{output[-6000:]}")
    return output


def planned_rules(output: str) -> set[str]:
    """The rules of the jobs a Snakemake run lists in its "Job stats" table."""
    table = output.split("Job stats:", 1)[1].splitlines() if "Job stats:" in output else []
    rows = [line.split() for line in table[3:]]
    return {row[0] for row in itertools.takewhile(lambda row: row and row[0] != "total", rows)}


def run_analysis(workdir: Path, config_file: Path, cores: int, config: dict, ready=lambda: None) -> float:
    """The analysis in two Snakemake runs; seconds of both. First the gathering rules (generations.parquet, the
    embeddings). Then the rest, once the judge's ratings (if any) are newer than generations.parquet: rule
    judge_vs_people names ``rules.judge_stories.output``, which brings judge_stories into the DAG whatever
    --allowed-rules says, and it must find its outputs up to date. A dry run checks first that no job of another
    rule would run (a generation or the judge would start an engine). ``ready`` is called before the second run
    (the MLflow server's wait)."""
    results = Path("results") / config["experiment"]
    shutil.rmtree(workdir / ".usage", ignore_errors=True)  # (an earlier run's jobs, in a --workdir used again)
    started = time.perf_counter()
    gathered = [str(results / "generations.parquet")] + [
        str(results / "embeddings" / f"{name}.parquet") for name in config["scoring"]["embedders"]
    ]
    snakemake(workdir, config_file, cores, gathered)
    for path in (workdir / results / "ratings").glob("judge_*ratings.csv"):
        os.utime(path)
    ready()
    planned = planned_rules(snakemake(workdir, config_file, cores, ["all"], dry_run=True))
    unexpected = sorted(planned - set(ANALYSIS_RULES))
    if unexpected:
        raise SystemExit(
            f"snakemake would run {', '.join(unexpected)} (only the analysis rules should run: a product of the "
            f"generation side is missing or older than its inputs); see {workdir}/snakemake.log"
        )
    snakemake(workdir, config_file, cores, ["all"])
    return time.perf_counter() - started


def usage_rows(workdir: Path, experiment: str) -> list[dict]:
    """One row per job, in the order they started: the hook's numbers and, where the rule has a benchmark: file,
    Snakemake's."""
    rows = []
    for path in (workdir / ".usage").glob("*.json"):
        record = json.loads(path.read_text())
        label = record["rule"] + "".join(f" ({value})" for value in record["wildcards"].values())
        row = {**record, "rule": label}
        benchmark = workdir / "results" / experiment / "benchmarks" / f"{record['rule']}.tsv"
        if benchmark.is_file():
            measured = pl.read_csv(benchmark, separator="\t")
            row["snakemake"] = f"{float(measured['s'][0]):.1f} s, {float(measured['max_rss'][0]):,.0f} MiB"
        rows.append(row)
    return sorted(rows, key=lambda row: row["started"])


def size_mib(path: Path) -> float:
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file()) / 2**20
    return path.stat().st_size / 2**20 if path.exists() else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config/samplers-gpu.yaml", help="the grid's shape")
    parser.add_argument("--stories", type=int, help="as many seeds as keep the grid at or under this many stories")
    parser.add_argument("--seeds", type=int, help="seeds per cell (instead of --stories; default: the config's)")
    parser.add_argument("--min-tokens", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=1500)
    parser.add_argument("--no-judge", action="store_true", help="no judge ratings (and none of the judge's rules)")
    parser.add_argument("--no-mlflow", action="store_true", help="no MLflow server, no tracking rule")
    parser.add_argument("--cores", type=int, default=1, help="Snakemake's --cores (1: one job at a time)")
    parser.add_argument("--workdir", type=Path, help="where to run (default: a new temporary folder; kept)")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="a folder with tokenizer.json")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()

    from tempcreativity.grid import temperatures

    workdir = (arguments.workdir or Path(tempfile.mkdtemp(prefix="bench-sweep-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    judge = not arguments.no_judge
    with (
        nullcontext((None, lambda: None)) if arguments.no_mlflow else mlflow_server(workdir / "mlflow") as (uri, ready)
    ):
        written = bench_config(arguments.config, arguments.max_tokens, judge, uri)
        config_file = workdir / "bench-config.yaml"
        if arguments.seeds or arguments.stories:
            per_seed = stories_per_seed(validated(written | {"seeds": 1}, config_file))
            written["seeds"] = arguments.seeds or max(1, arguments.stories // per_seed)
        config = validated(written, config_file)
        started = time.perf_counter()
        maker = StoryMaker(
            temperatures(config), arguments.tokenizer, arguments.min_tokens, arguments.max_tokens, arguments.seed
        )
        counts = write_products(workdir, config, maker, judge)
        written_seconds = time.perf_counter() - started
        total = run_analysis(workdir, config_file, arguments.cores, config, ready)
    rows = usage_rows(workdir, config["experiment"])
    results = workdir / "results" / config["experiment"]
    report = workdir / "reports" / config["experiment"] / "index.html"
    cells = pl.read_parquet(results / "summary.parquet").height

    print(
        f"Grid: {arguments.config.relative_to(REPO) if arguments.config.is_relative_to(REPO) else arguments.config}'s "
        f"shape, {config['seeds']} seeds: {counts['stories']:,} stories + {counts['exemplars']} exemplars in "
        f"{counts['shards']} shards, {cells} cells, {counts['tokens']:,} tokens (token ids: {maker.tokens.source}); "
        f"embedders {', '.join(config['scoring']['embedders'])}; judge {'on' if judge else 'off'}; MLflow "
        f"{'on, a local server' if uri else 'off'}; {config['scoring']['bootstrap_resamples']} bootstrap resamples; "
        f"snakemake --cores {arguments.cores}; workdir {workdir}\n"
    )
    print("| rule | wall (s) | CPU (s) | peak memory (MiB) | Snakemake's benchmark: file |")
    print("| --- | ---: | ---: | ---: | --- |")
    for row in rows:
        print(
            f"| {row['rule']} | {row['wall_s']:.1f} | {row['cpu_s']:.1f} | {row['max_rss_kib'] / 1024:,.0f} | "
            f"{row.get('snakemake', '')} |"
        )
    print(
        f"| **all jobs** | {sum(row['wall_s'] for row in rows):.1f} | {sum(row['cpu_s'] for row in rows):.1f} | "
        f"{max((row['max_rss_kib'] for row in rows), default=0) / 1024:,.0f} (largest) | |"
    )
    print()
    print("| what | value |\n| --- | ---: |")
    print(f"| writing the synthetic products (s) | {written_seconds:.1f} |")
    print(f"| snakemake, its three runs (gathering, dry run, analysis), start to end (s) | {total:.1f} |")
    for label, path in (
        ("generations.parquet (MiB)", results / "generations.parquet"),
        ("scores.parquet (MiB)", results / "scores.parquet"),
        ("report index.html (MiB)", report),
        ("figures/ (MiB)", results / "figures"),
        ("MLflow artifacts (MiB)", workdir / "mlflow" / "artifacts"),
    ):
        if path.exists():
            print(f"| {label} | {size_mib(path):,.1f} |")


if __name__ == "__main__":
    main()
