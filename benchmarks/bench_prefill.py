"""Prefill throughput, side by side in one run: the model embedder (vLLM's pooling runner) and the study's teacher
forcing (vLLM's prompt log-probabilities) with the pipeline's engine settings, each against the machine's float32
matrix-multiply ceiling measured in the same run (benchmarks/bench_generation.py's measurement), and transformers'
batched forward pass on the same tokens as an independent reference.

    .venv/bin/python benchmarks/bench_prefill.py [--stories 225] [--tokens 128] [--generations FILE]

The texts: a generations.parquet's stories (--generations, e.g. a run of benchmarks/grid-225.yaml), else
--stories pieces of about --tokens tokens cut from the study's 31 stories (the 225-story grid's shape). Work per
token = the FLOPs of its matrix products: 2 x the non-embedding weights (and, for log-probabilities, the output
layer over the vocabulary) plus attention over the tokens before it. Times leave out the engine start. Each row
runs in a fresh process with the pipeline jobs' preloaded libraries, prefix caching off. Prints a Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

ROWS = {
    "embedder": "model embedder, vLLM pooling (pipeline settings: steps of 8,192 tokens)",
    "embedder-65536": "model embedder, vLLM pooling, steps of 65,536 tokens (before)",
    "teacher-forcing": "teacher forcing, vLLM prompt log-probabilities (pipeline settings)",
    "hf-forward": "transformers forward pass, batches of 16 padded stories (reference)",
}


def texts(arguments) -> list[str]:
    import polars as pl

    if arguments.generations:
        return pl.read_parquet(arguments.generations)["text"].to_list()[: arguments.stories]
    from tempcreativity.peeperkorn import load_study_stories

    stories = load_study_stories(REPO / "resources/peeperkorn2024")["text"].to_list()
    width = arguments.tokens * 4  # about four characters a token
    pieces: dict[str, str] = {}  # by their first 64 characters: no two share a prefix (prefix caching)
    for shift in range(0, width, 37):  # each pass cuts the stories at other places
        for story in stories:
            for start in range(shift, len(story) - width + 1, width):
                pieces.setdefault(story[start : start + 64], story[start : start + width])
        if len(pieces) >= arguments.stories:
            break
    return list(pieces.values())[: arguments.stories]


def run_row(row: str, folder: Path, arguments) -> dict:
    """One row's measurement in this process."""
    from bench_generation import pipeline_model
    from transformers import AutoTokenizer

    import tempcreativity.engine as engine_settings

    # every token computed: no prefix caching (the pipeline's stories rarely share a 32-token block; these never do)
    model = pipeline_model() | {"engine_args": {"enable_prefix_caching": False}}
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    story_ids = [tokenizer(text)["input_ids"] for text in texts(arguments)]
    tokens = sum(map(len, story_ids))
    lengths = [len(ids) for ids in story_ids]
    if row == "hf-forward":
        import torch
        from transformers import AutoModel

        network = AutoModel.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False).eval()
        torch.set_num_threads(os.cpu_count() or 1)
        started = time.perf_counter()
        with torch.inference_mode():
            for first in range(0, len(story_ids), 16):
                batch = story_ids[first : first + 16]
                width = max(map(len, batch))
                ids = torch.tensor([ids + [0] * (width - len(ids)) for ids in batch])
                mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch])
                network(input_ids=ids, attention_mask=mask)
        return {"tokens": tokens, "seconds": time.perf_counter() - started, "lengths": lengths}
    from vllm import SamplingParams
    from vllm.config import PoolerConfig

    if row == "embedder-65536":
        engine_settings.CPU_PREFILL_BATCHED_TOKENS = engine_settings.CPU_MAX_BATCHED_TOKENS
    longest = max(lengths)
    if row.startswith("embedder"):
        pooler = PoolerConfig(pooling_type="MEAN", use_activation=True)
        engine = engine_settings.start_engine(
            model, folder, longest, lengths, True, runner="pooling", convert="embed", pooler_config=pooler
        )
        started = time.perf_counter()
        engine.embed([{"prompt_token_ids": ids} for ids in story_ids], use_tqdm=False)
    else:
        engine = engine_settings.start_engine(model, folder, longest, [n + 1 for n in lengths], True)
        started = time.perf_counter()
        engine.generate(
            [{"prompt_token_ids": ids} for ids in story_ids],
            SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0),
            use_tqdm=False,
        )
    return {"tokens": tokens, "seconds": time.perf_counter() - started, "lengths": lengths}


def flops_per_token(folder: Path, lengths: list[int], with_vocabulary: bool) -> float:
    """Matrix-product FLOPs per token: 2 x non-embedding weights (+ the output layer) + attention (QK and AV: 4 x
    layers x width x the tokens before it, averaged over the stories' tokens)."""
    from safetensors.torch import load_file

    config = json.loads((folder / "config.json").read_text())
    weights = load_file(folder / "model.safetensors")
    total = sum(tensor.numel() for tensor in weights.values())
    vocabulary = config["vocab_size"] * config["hidden_size"]
    linear = 2 * (total - vocabulary + (vocabulary if with_vocabulary else 0))
    width = config["num_attention_heads"] * config.get(
        "head_dim", config["hidden_size"] // config["num_attention_heads"]
    )
    attention = sum(4 * config["num_hidden_layers"] * width * n * (n - 1) / 2 for n in lengths) / sum(lengths)
    return linear + attention


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=225)
    parser.add_argument("--tokens", type=int, default=128, help="tokens per synthetic story")
    parser.add_argument("--generations", help="a generations.parquet whose stories to read")
    parser.add_argument("--model-dir", help="converted model folder (default: resources/models/...)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    from bench_generation import matmul_ceiling, model_folder

    folder = model_folder(arguments.model_dir)
    if arguments.row:
        print("RESULT " + json.dumps(run_row(arguments.row, folder, arguments)))
        return

    from tempcreativity.engine import preloaded_environment

    ceiling = matmul_ceiling("float32")
    results = {}
    for row in arguments.rows.split(","):
        command = [sys.executable, __file__, "--row", row, "--model-dir", str(folder)]
        command += ["--stories", str(arguments.stories), "--tokens", str(arguments.tokens)]
        command += ["--generations", arguments.generations] if arguments.generations else []
        completed = subprocess.run(
            command, capture_output=True, text=True, check=True, env=preloaded_environment(dict(os.environ))
        )
        line = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1]
        results[row] = json.loads(line.removeprefix("RESULT "))
    any_result = next(iter(results.values()))
    print(
        f"{len(any_result['lengths'])} stories, {any_result['tokens']:,} tokens; float32 matrix-multiply ceiling "
        f"{ceiling / 1e9:.0f} GFLOP/s, measured in this run\n"
    )
    print("| prefill | tokens/s | GFLOP/s | % of the float32 ceiling |\n| --- | ---: | ---: | ---: |")
    for row, result in results.items():
        rate = result["tokens"] / result["seconds"]
        flops = rate * flops_per_token(folder, result["lengths"], row == "teacher-forcing")
        print(f"| {ROWS[row]} | {rate:,.0f} | {flops / 1e9:.1f} | {100 * flops / ceiling:.0f}% |")


if __name__ == "__main__":
    main()
