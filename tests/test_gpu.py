"""The GPU path on a real CUDA GPU (vLLM's CUDA build, requirements/gpu.lock): `make test PYTEST_ARGS="-m gpu"` on a
GPU node. Skipped, with the reason, where torch sees no CUDA GPU (CI and laptops).

What runs here, each against the same code the CPU runs:
- the whole pipeline with Snakemake, bf16, every stage and the report: the generation job's one-engine-per-process
  hand-over (generation, the judge on the same engine, then the model embedder in a second engine);
- two models in one job: the second model's engine starts after the first's GPU memory is freed (NVML);
- raw min-p exactness: every sampled token is one raw min-p and raw top-k allow, by transformers on the same GPU;
- the judge's expected scores and the model embedder (`last` and `mean`) against transformers on the same GPU;
- reproducibility: 21 stories generated alone against the same stories among 225, with and without vLLM's
  batch-invariant mode (VLLM_BATCH_INVARIANT=1), each in a fresh process; the counts go to the test's output.

The model is the embedded one where its package is installed (requirements/gpu.lock installs it), else a model of
its architecture with random weights made on the machine (tests/gpu_model.py; TEMPCREATIVITY_GPU_MODEL_SOURCE names a
folder with its config.json and tokenizer files)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import REPO, TEST_FOLDER, TINY_CONFIG, run_snakemake


def _cuda_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not _cuda_gpu(),
        reason="needs a CUDA GPU and vLLM's CUDA build (torch sees no CUDA GPU here); "
        "on a GPU node: make test PYTEST_ARGS='-m gpu'",
    ),
]

STUDY_PROMPT = "[INST]Write a story.[/INST]Here it is:\n\n"
# Engines of these tests share the GPU with the test process's transformers models: each takes under half of it.
GPU_ENGINE = {
    "device": "gpu",
    "dtype": "bfloat16",
    "max_model_len": 2048,
    "tensor_parallel_size": 1,
    "engine_args": {"gpu_memory_utilization": 0.4},
}


@pytest.fixture(scope="session")
def gpu_model(tmp_path_factory) -> Path:
    """The embedded model (real weights) where its package is installed, else its architecture with random weights."""
    from gpu_model import embedded_source, save_random_model

    workdir = tmp_path_factory.mktemp("gpu-models")
    source = embedded_source(workdir)
    if (source / "model.safetensors").is_file():
        return source
    return save_random_model(workdir / "smollm2-random", source)


@pytest.fixture(scope="session")
def gpu_run(gpu_model, tmp_path_factory) -> Path:
    """The tests' tiny grid through Snakemake on the GPU, in bf16, with the judge, both embedders and the report."""
    workdir = tmp_path_factory.mktemp("gpu-run")
    shutil.copy(TEST_FOLDER / "people.csv", workdir / "people.csv")
    config = TINY_CONFIG | {"model": {"path": str(gpu_model), **GPU_ENGINE}, "mlflow": {"enabled": False}}
    run_snakemake(workdir, config, timeout=1800)
    return workdir


def nvml_used_bytes() -> int:
    """GPU 0's used memory as NVML sees it (all processes; this one initialises no CUDA to ask)."""
    import pynvml

    pynvml.nvmlInit()
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used)
    finally:
        pynvml.nvmlShutdown()


def requests_for(models: list[str], temperatures, seeds: int, **settings):
    from tempcreativity.grid import StoryRequest

    return [
        StoryRequest(
            prompt_id="story",
            prompt_text=settings.get("text", "Write a story."),
            system=None,
            assistant_prefix=settings.get("prefix", "Here it is:\n\n"),
            prompt_format=settings.get("format", "chat"),
            temperature=temperature,
            seed=seed,
            is_exemplar=False,
            sampling_seed=7919 * seed + int(1000 * temperature),
            model_id=model,
            sampler={"min_p": settings.get("min_p", 0.0), "truncation": settings.get("truncation", "scaled")},
            id_parts=(model, f"t{temperature}"),
        )
        for model in models
        for temperature in temperatures
        for seed in range(seeds)
    ]


def manifest(model_id: str, folder: Path) -> dict:
    from tempcreativity.model import folder_sha256

    return {"model": model_id, "folder": str(folder), "sha256": folder_sha256(folder)}


@pytest.fixture(scope="session")
def reference(gpu_model):
    """transformers on the same weights and GPU, in bf16 like the engines."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gpu_model, dtype=torch.bfloat16, trust_remote_code=False)
    return AutoTokenizer.from_pretrained(gpu_model, trust_remote_code=False), model.to("cuda").eval()


def raw_logprobs(reference, prompt_ids: list[int], story_ids: list[int]) -> np.ndarray:
    import torch

    _, model = reference
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + story_ids], device="cuda")).logits[0].double()
    return torch.log_softmax(logits, dim=-1)[len(prompt_ids) - 1 : len(prompt_ids) + len(story_ids) - 1].cpu().numpy()


def test_the_whole_pipeline_runs_on_the_gpu(gpu_run):
    stories = pl.read_parquet(gpu_run / "results/tiny/generations.parquet")
    assert stories.height == 14 and (stories["num_tokens"] > 0).all()
    stats = json.loads((gpu_run / "results/tiny/shards/shard-0.stats.json").read_text())
    assert stats["device"] != "cpu" and stats["generated"] == 14
    assert stats["judge_asked"] > 0 and stats["embedded_model"] > 0, stats  # the second engine of the job ran
    for name in ("minilm", "model"):
        assert pl.read_parquet(gpu_run / f"results/tiny/embeddings/{name}.parquet").height == 14
    assert pl.read_csv(gpu_run / "results/tiny/ratings/judge_ratings.csv").height == 12
    assert (gpu_run / "reports/tiny/index.html").stat().st_size > 10_000
    logs = "".join(path.read_text() for path in (gpu_run / "results/tiny/logs").glob("*.log"))
    assert "CUDACachingAllocator" not in logs and "INTERNAL ASSERT" not in logs


def test_two_models_in_one_job_each_engine_starts_on_a_freed_gpu(gpu_model, tmp_path):
    from tiny_llama import save_tiny_llama

    from tempcreativity.generation import generate_stories

    tiny = save_tiny_llama(tmp_path / "tiny", gpu_model)
    models = [{"id": "first", "path": str(gpu_model), **GPU_ENGINE}, {"id": "second", "path": str(tiny), **GPU_ENGINE}]
    config = {"experiment": "gpu", "models": models, "decoding": {"max_tokens": 32, "stop": []}}
    baseline = nvml_used_bytes()
    used_while_up = {}

    def while_up(model_id, rows, engine):
        used_while_up[model_id] = nvml_used_bytes()
        return {}

    stories, stats = generate_stories(
        requests_for(["first", "second"], [1.0], 4),
        config,
        {"first": manifest("first", gpu_model), "second": manifest("second", tiny)},
        tmp_path / "cache",
        while_up,
    )
    assert stats["generated"] == 8 and set(stories["model_id"]) == {"first", "second"}
    gib = 1 << 30
    assert used_while_up["first"] > baseline + 10 * gib and used_while_up["second"] > baseline + 10 * gib
    assert nvml_used_bytes() < baseline + gib, "an engine's memory was not freed when it stopped"


def test_raw_min_p_is_exact_on_the_gpu(gpu_model, reference, tmp_path):
    from tempcreativity.generation import generate_stories

    tokenizer, _ = reference
    config = {
        "experiment": "raw",
        "models": [{"id": "model", "path": str(gpu_model), **GPU_ENGINE}],
        "decoding": {"max_tokens": 64, "stop": ["user", "system"]},
    }
    requests = requests_for(
        ["model"], [1.0, 2.0], 6, text=STUDY_PROMPT, prefix="", format="raw", min_p=0.05, truncation="raw"
    )
    stories, _ = generate_stories(requests, config, {"model": manifest("model", gpu_model)}, tmp_path / "cache")
    prompt_ids = tokenizer(STUDY_PROMPT)["input_ids"]
    checked = 0
    for row in stories.iter_rows(named=True):
        distribution = raw_logprobs(reference, prompt_ids, row["token_ids"])
        for position, token in enumerate(row["token_ids"]):
            logp = distribution[position]
            assert int((logp > logp[token] + 0.05).sum()) < 50  # raw top-k 50 (bf16: ties within 0.05 allowed)
            assert logp[token] - logp.max() >= math.log(0.05) - 0.15  # raw min-p 0.05, bf16 tolerance
            assert row["logprobs"][position] == pytest.approx(float(logp[token]), abs=0.15)  # the raw log-probability
            checked += 1
    assert checked > 300


def test_judge_expected_scores_and_model_embeddings_match_transformers_on_the_gpu(gpu_run, gpu_model, reference):
    import torch

    from tempcreativity.embedding import embed_stories
    from tempcreativity.judge import _judge_prompts, expected_score, scale_token_ids, truncate_tokens

    tokenizer, model = reference
    generations = pl.read_parquet(gpu_run / "results/tiny/generations.parquet")
    exemplars = {
        (row["model_id"], row["prompt_id"]): truncate_tokens(tokenizer, row["text"], 96)
        for row in generations.filter(pl.col("is_exemplar")).iter_rows(named=True)
    }
    story = generations.filter(~pl.col("is_exemplar")).head(1)
    prompts, keys = _judge_prompts(story, exemplars, tokenizer, 96)
    judged = pl.read_csv(gpu_run / "results/tiny/ratings/judge_ratings.csv").filter(pl.col("story_id") == keys[0][0])
    digits = scale_token_ids(tokenizer)
    for prompt, (_, _, criterion) in zip(prompts, keys):
        with torch.no_grad():
            logits = model(torch.tensor([prompt], device="cuda")).logits[0, -1].double()
        logprobs = torch.log_softmax(logits, dim=-1)[digits].cpu().numpy()
        assert judged[criterion][0] == pytest.approx(expected_score(list(logprobs))[0], abs=0.05), criterion

    texts = generations["text"].to_list()[:4]
    settings = {"path": str(gpu_model), **GPU_ENGINE}
    for pooling in ("last", "mean"):
        vectors, _ = embed_stories(
            texts,
            "model",
            manifest("model", gpu_model),
            settings,
            gpu_run / f"results/cache/embeddings-{pooling}",
            {"pooling": pooling},
        )
        for text, vector in zip(texts, vectors):
            ids = tokenizer(text, add_special_tokens=pooling == "last")["input_ids"]
            with torch.no_grad():
                hidden = model.model(torch.tensor([ids], device="cuda")).last_hidden_state[0].double()
            expected = (hidden[-1] if pooling == "last" else hidden.mean(dim=0)).cpu().numpy()
            cosine = float(np.dot(vector, expected) / (np.linalg.norm(vector) * np.linalg.norm(expected)))
            assert cosine > 0.99, (pooling, cosine)


@pytest.mark.parametrize("batch_invariant", ["0", "1"])
def test_stories_alone_equal_the_same_stories_among_225(gpu_model, tmp_path, batch_invariant, record_property):
    """Each mode in a fresh process (vLLM reads VLLM_BATCH_INVARIANT when it starts). Batch-invariant mode must
    reproduce every story; the default mode's count is reported (it decides the GPU default, docs/gpu.md)."""
    environment = os.environ | {"VLLM_BATCH_INVARIANT": batch_invariant}
    completed = subprocess.run(
        [sys.executable, str(REPO / "tests" / "gpu_reproducibility.py"), str(gpu_model), str(tmp_path), "512"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=1200,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    record_property("reproducibility", result)
    print(f"VLLM_BATCH_INVARIANT={batch_invariant}: {result}")
    if "OUT" in os.environ:  # the device machine's output folder
        Path(os.environ["OUT"], f"reproducibility-{batch_invariant}.json").write_text(json.dumps(result))
    if batch_invariant == "1":
        assert result["identical"] == result["alone"] == 21, result
