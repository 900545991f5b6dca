"""Generation throughput, side by side in one process on one grid: the pipeline's vLLM path against Hugging Face
transformers `generate` (one story at a time, and batched) and the study's own engine, llama.cpp (one story at a
time, as the study ran it; only when llama-cpp-python is installed: `pip install -e ".[bench]"`). The machine's
bf16 matrix-multiply ceiling is measured in the same run, and each engine's tokens/s is reported as a fraction of it
(2 x parameters FLOPs per generated token).

    .venv/bin/python benchmarks/bench_generation.py [--stories 64] [--max-tokens 128] [--one-at-a-time 4]

Prints a Markdown table. Timings include nothing but generation, except the row that adds the engine start.
Each engine runs in a fresh subprocess (vLLM's CPU backend pins the process's threads), one after another."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

TEMPERATURES = [0.01, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0]


def matmul_ceiling(size: int = 2048, repeats: int = 20) -> float:
    """Peak bf16 matrix-multiply rate of this machine, in FLOP/s (best of several timed products)."""
    import torch

    a, b = torch.randn(size, size, dtype=torch.bfloat16), torch.randn(size, size, dtype=torch.bfloat16)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def grid(stories: int) -> list[tuple[float, int]]:
    """(temperature, seed) pairs: the study's temperatures, seeds 0.. until ``stories`` are reached."""
    return [(TEMPERATURES[i % len(TEMPERATURES)], i // len(TEMPERATURES)) for i in range(stories)]


def model_folder(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    converted = Path("resources/models/smollm2-135m-instruct")
    if converted.is_dir():
        return converted
    from tempcreativity.model import convert_gguf_to_hf, embedded_gguf_path

    target = Path(tempfile.mkdtemp(prefix="bench-model-")) / "smollm2"
    convert_gguf_to_hf(embedded_gguf_path(), target)
    return target


def prompt_ids(folder: Path) -> list[int]:
    from transformers import AutoTokenizer

    from tempcreativity.generation import render_prompt_ids
    from tempcreativity.grid import StoryRequest

    request = StoryRequest("story", "Write a story.", None, "Here it is:\n\n", "chat", 1.0, 0, False)
    return render_prompt_ids(AutoTokenizer.from_pretrained(folder), request)


def bench_vllm(folder: Path, ids: list[int], pairs, max_tokens: int) -> dict:
    """The pipeline's path: its engine settings, every story in one generate() call with seeded SamplingParams."""
    from vllm import LLM, SamplingParams

    from tempcreativity.engine import engine_arguments, on_cpu

    model = {"dtype": "bfloat16", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    start = time.perf_counter()
    engine = LLM(**engine_arguments(model, folder, len(ids), on_cpu()))
    started = time.perf_counter()
    params = [SamplingParams(temperature=t, seed=s, top_k=50, top_p=1.0, max_tokens=max_tokens, ignore_eos=True,
                             logprobs=0) for t, s in pairs]  # fmt: skip
    outputs = engine.generate([{"prompt_token_ids": ids}] * len(pairs), params, use_tqdm=False)
    done = time.perf_counter()
    tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    del engine
    return {"stories": len(pairs), "tokens": tokens, "seconds": done - started, "start_seconds": started - start}


def bench_hf(folder: Path, ids: list[int], pairs, max_tokens: int, batch: int) -> dict:
    """transformers generate: stories of one temperature in batches of ``batch`` (1 = one at a time)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).eval()
    tokens, elapsed = 0, 0.0
    by_temperature: dict[float, list[int]] = {}
    for temperature, seed in pairs:
        by_temperature.setdefault(temperature, []).append(seed)
    for temperature, seeds in by_temperature.items():
        for start in range(0, len(seeds), batch):
            count = len(seeds[start : start + batch])
            inputs = torch.tensor([ids] * count)
            torch.manual_seed(seeds[start])
            begin = time.perf_counter()
            with torch.inference_mode():
                output = model.generate(inputs, attention_mask=torch.ones_like(inputs), do_sample=True,
                                        temperature=temperature, top_k=50, top_p=1.0, max_new_tokens=max_tokens,
                                        min_new_tokens=max_tokens, pad_token_id=model.config.eos_token_id)  # fmt: skip
            elapsed += time.perf_counter() - begin
            tokens += (output.shape[1] - inputs.shape[1]) * count
    return {"stories": len(pairs), "tokens": tokens, "seconds": elapsed}


def bench_llama_cpp(ids: list[int], pairs, max_tokens: int) -> dict | None:
    """llama.cpp (the study's engine) on the GGUF the embedded model comes from, one story at a time."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from tempcreativity.model import embedded_gguf_path

    model = Llama(model_path=str(embedded_gguf_path()), n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
    tokens, elapsed = 0, 0.0
    for temperature, seed in pairs:
        begin = time.perf_counter()
        generated = 0
        for token in model.generate(ids, top_k=50, top_p=1.0, temp=temperature, reset=True):
            generated += 1
            if generated >= max_tokens:
                break
        elapsed += time.perf_counter() - begin
        tokens += generated
    return {"stories": len(pairs), "tokens": tokens, "seconds": elapsed}


def parameter_count(folder: Path) -> int:
    from safetensors.torch import load_file

    return sum(tensor.numel() for tensor in load_file(folder / "model.safetensors").values())


def run_engine(engine: str, arguments, folder: Path) -> dict | None:
    """One engine's measurement, in a fresh Python process; None when the engine is not installed."""
    command = [sys.executable, __file__, "--engine", engine, "--model-dir", str(folder), "--stories", str(arguments.stories),
               "--max-tokens", str(arguments.max_tokens), "--one-at-a-time", str(arguments.one_at_a_time),
               "--batch", str(arguments.batch)]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    result = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(result.removeprefix("RESULT "))


def measure(engine: str, arguments) -> dict | None:
    folder = Path(arguments.model_dir)
    ids = prompt_ids(folder)
    pairs, few = grid(arguments.stories), grid(arguments.one_at_a_time)
    if engine == "vllm":
        return bench_vllm(folder, ids, pairs, arguments.max_tokens)
    if engine == "hf-single":
        return bench_hf(folder, ids, few, arguments.max_tokens, batch=1)
    if engine == "hf-batched":
        return bench_hf(folder, ids, pairs, arguments.max_tokens, arguments.batch)
    return bench_llama_cpp(ids, few, arguments.max_tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=64, help="stories for vLLM and batched transformers")
    parser.add_argument("--max-tokens", type=int, default=128, help="new tokens per story (EOS ignored)")
    parser.add_argument("--one-at-a-time", type=int, default=4, help="stories for the one-at-a-time engines")
    parser.add_argument("--batch", type=int, default=16, help="batch size of batched transformers")
    parser.add_argument("--model-dir", help="converted model folder (default: resources/models/..., or convert)")
    parser.add_argument("--engine", choices=["vllm", "hf-single", "hf-batched", "llama-cpp"], help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.engine:  # a child process: measure one engine, print its result as JSON
        print("RESULT " + json.dumps(measure(arguments.engine, arguments)), flush=True)
        return

    folder = model_folder(arguments.model_dir)
    ceiling = matmul_ceiling()
    flops_per_token = 2 * parameter_count(folder)
    results = {
        "vLLM (pipeline), generation": run_engine("vllm", arguments, folder),
        "transformers generate, one at a time": run_engine("hf-single", arguments, folder),
        f"transformers generate, batched {arguments.batch}": run_engine("hf-batched", arguments, folder),
    }
    llama = run_engine("llama-cpp", arguments, folder)
    if llama:
        results["llama.cpp (the study's engine), one at a time, Q4_1"] = llama
    vllm = results["vLLM (pipeline), generation"]
    results["vLLM (pipeline), engine start included"] = {**vllm, "seconds": vllm["seconds"] + vllm["start_seconds"]}

    baseline = results["transformers generate, one at a time"]
    baseline_rate = baseline["tokens"] / baseline["seconds"]
    print(f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
          f"bf16 matmul ceiling {ceiling / 1e9:.0f} GFLOP/s = {ceiling / flops_per_token:.0f} tokens/s for "
          f"{flops_per_token / 2e6:.0f}M parameters")  # fmt: skip
    print(f"Grid: {arguments.stories} stories ({arguments.one_at_a_time} for one-at-a-time engines) x "
          f"{arguments.max_tokens} new tokens, the study's temperatures, top_k 50\n")  # fmt: skip
    print("| engine | stories | tokens | seconds | tokens/s | stories/s | x one-at-a-time generate | % of ceiling |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, result in results.items():
        rate = result["tokens"] / result["seconds"]
        print(f"| {name} | {result['stories']} | {result['tokens']} | {result['seconds']:.1f} | {rate:.0f} | "
              f"{result['stories'] / result['seconds']:.2f} | {rate / baseline_rate:.1f} | "
              f"{100 * rate * flops_per_token / ceiling:.0f}% |")  # fmt: skip
    if not llama:
        print("\n(llama.cpp row left out: llama-cpp-python is not installed; pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
