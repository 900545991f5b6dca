"""Generation throughput on a CUDA GPU, side by side in one run: the pipeline's vLLM path (its engine settings for
the GPU, bf16, every story in one generate() call with seeded SamplingParams) against transformers `generate` one
story at a time on the same GPU, for two architectures with random weights made on the machine (throughput does
not depend on the weights; stories run to max_tokens, EOS ignored):

- SmolLM2-135M's (the embedded model's), from its config.json;
- an 8B Llama (Llama 3.1 8B's shape, tests/gpu_model.py), the size the paper's GPU-hours estimate scales from.

Two grids: the 225-story grid (7 temperatures x 32 seeds + 1, 128 tokens) and the paper's shape (7 x 100 stories,
up to 4096 tokens; --paper-tokens lowers it). Each row is compared with the GPU's memory-bandwidth bound for decoding:
every step reads every weight once, so one sequence cannot exceed bandwidth / weight bytes tokens/s, and a batch of
B sequences B times that (KV-cache reads not counted: an upper bound). The last lines estimate paper.yaml's GPU hours
(Llama 2 70B on tensor-parallel GPUs) from the measured 8B rate.

    python benchmarks/bench_gpu.py [--source MODEL_FOLDER] [--paper-tokens 4096] [--hf-stories 3] [--skip-8b]

Each engine runs in a fresh process (one engine per process); prints a Markdown table and writes it as JSON to
$OUT/bench_gpu.json where OUT is set."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
TEMPERATURES = [0.01, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0]
H200_BANDWIDTH = 4.8e12  # bytes/s, NVIDIA's figure for the H200's HBM3e
PAPER_STORIES = 700  # 7 temperatures x 100 stories
PAPER_PARAMETERS = 70e9  # Llama 2-Chat 70B


def grid(stories: int) -> list[tuple[float, int]]:
    return [(TEMPERATURES[i % len(TEMPERATURES)], i // len(TEMPERATURES)) for i in range(stories)]


def weight_bytes(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "pt") as tensors:
            for name in tensors.keys():
                piece = tensors.get_slice(name)
                count = 1
                for size in piece.get_shape():
                    count *= size
                total += count * 2  # bf16
    return total


def bench_vllm(folder: Path, stories: int, max_tokens: int) -> dict:
    from vllm import SamplingParams

    from tempcreativity.engine import start_engine, stop_engine

    model = {
        "dtype": "bfloat16",
        "max_model_len": max_tokens + 64,
        "tensor_parallel_size": 1,
        "device": "gpu",
        "engine_args": {},
    }
    begin = time.perf_counter()
    running = [start_engine(model, folder, 32)]
    started = time.perf_counter()
    params = [
        SamplingParams(temperature=t, seed=s, top_k=50, top_p=1.0, max_tokens=max_tokens, ignore_eos=True, logprobs=1)
        for t, s in grid(stories)
    ]
    outputs = running[0].generate([{"prompt_token_ids": [1, 9690, 198, 2683, 253, 1837, 30]}] * stories, params)
    done = time.perf_counter()
    stop_engine(running.pop())
    tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    return {"stories": stories, "tokens": tokens, "seconds": done - started, "start_seconds": started - begin}


def bench_hf(folder: Path, stories: int, max_tokens: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, trust_remote_code=False).to("cuda")
    inputs = torch.tensor([[1, 9690, 198, 2683, 253, 1837, 30]], device="cuda")
    tokens, elapsed = 0, 0.0
    for temperature, seed in grid(stories):
        torch.manual_seed(seed)
        torch.cuda.synchronize()
        begin = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                do_sample=True,
                top_k=50,
                temperature=temperature,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                pad_token_id=0,
            )
        torch.cuda.synchronize()
        elapsed += time.perf_counter() - begin
        tokens += output.shape[1] - inputs.shape[1]
    return {"stories": stories, "tokens": tokens, "seconds": elapsed}


def run(kind: str, folder: Path, stories: int, max_tokens: int) -> dict:
    """One measurement in a fresh process."""
    command = [
        sys.executable,
        __file__,
        "--measure",
        kind,
        "--folder",
        str(folder),
        "--stories",
        str(stories),
        "--max-tokens",
        str(max_tokens),
    ]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": completed.stderr[-1500:]}
    return json.loads([line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", help="folder with the embedded model's config.json and tokenizer files")
    parser.add_argument("--paper-tokens", type=int, default=4096, help="new tokens per story of the paper's shape")
    parser.add_argument("--hf-stories", type=int, default=3, help="stories for transformers one at a time")
    parser.add_argument("--skip-8b", action="store_true", help="only SmolLM2-135M's architecture")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--stories", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-tokens", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        measure = bench_vllm if arguments.measure == "vllm" else bench_hf
        print("RESULT " + json.dumps(measure(Path(arguments.folder), arguments.stories, arguments.max_tokens)))
        return

    from gpu_model import LLAMA_8B, embedded_source, save_random_model

    workdir = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    source = Path(arguments.source) if arguments.source else embedded_source(workdir)
    architectures = {"SmolLM2-135M": save_random_model(workdir / "smollm2", source)}
    if not arguments.skip_8b:
        architectures["Llama 8B"] = save_random_model(workdir / "llama-8b", source, shape=LLAMA_8B)
    rows = []
    for name, folder in architectures.items():
        size = weight_bytes(folder)
        single_bound = H200_BANDWIDTH / size
        for grid_name, stories, tokens in (
            ("225 x 128", 225, 128),
            ("paper 700", PAPER_STORIES, arguments.paper_tokens),
        ):
            result = run("vllm", folder, stories, tokens)
            rows.append(
                {
                    "architecture": name,
                    "engine": "vLLM (bf16, one generate call)",
                    "grid": grid_name,
                    "weight_gb": size / 1e9,
                    "bound_tokens_per_second": single_bound * stories,
                    **result,
                }
            )
        result = run("hf", folder, arguments.hf_stories, 128)
        rows.append(
            {
                "architecture": name,
                "engine": "transformers generate, one story at a time",
                "weight_gb": size / 1e9,
                "grid": f"{arguments.hf_stories} x 128",
                "bound_tokens_per_second": single_bound,
                **result,
            }
        )
    print("| architecture | engine | grid | tokens/s | of the bandwidth bound | engine start s |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for row in rows:
        if "error" in row:
            print(f"| {row['architecture']} | {row['engine']} | {row['grid']} | failed: {row['error'][-200:]!r} | | |")
            continue
        rate = row["tokens"] / row["seconds"]
        start = f"{row['start_seconds']:.1f}" if "start_seconds" in row else ""
        print(
            f"| {row['architecture']} | {row['engine']} | {row['grid']} | {rate:,.0f} | "
            f"{rate / row['bound_tokens_per_second']:.1%} | {start} |"
        )
    paper_8b = [
        row for row in rows if row["architecture"] == "Llama 8B" and row["grid"] == "paper 700" and "tokens" in row
    ]
    if paper_8b:
        row = paper_8b[0]
        hours_8b = row["seconds"] / 3600
        # decoding reads every weight once per step: 70/8 times the bytes per step; tensor parallelism over 4 GPUs
        # divides the wall time by about 4, not the GPU hours
        hours_70b = hours_8b * PAPER_PARAMETERS / 8e9
        print(
            f"\npaper.yaml estimate: the 8B model wrote {row['tokens']:,} tokens in {row['seconds']:.0f} s on one GPU; "
            f"scaled by weight bytes to Llama 2 70B: about {hours_70b:.1f} GPU hours of generation "
            f"(decoding is bound by reading the weights; 4-way tensor parallelism splits them, not the total)."
        )
    if "OUT" in os.environ:
        Path(os.environ["OUT"], "bench_gpu.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
