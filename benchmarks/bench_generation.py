"""Generation throughput, side by side in one run on one grid: the pipeline's vLLM path with the pipeline's own
settings (config/config.yaml's dtype, its engine arguments, tcmalloc and Intel OpenMP preloaded as its jobs have
them) and the same in the other dtype (float32 and bfloat16 side by side), against Hugging Face transformers
`generate` (one story at a time, and batched) and the study's own engine, llama.cpp (one story at a time, as the
study ran it; only when llama-cpp-python is installed: `pip install -e ".[bench]"`). The machine's float32 and bf16
matrix-multiply ceilings are measured in the same run, and each row's tokens/s is reported as a fraction of its own
dtype's ceiling (2 x parameters FLOPs per generated token).

    .venv/bin/python benchmarks/bench_generation.py [--stories 225] [--max-tokens 128] [--one-at-a-time 4]
                                                    [--compiled] [--no-preload]

--compiled adds the pipeline's dtype without enforce_eager (torch.compile; its first start compiles for minutes).
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
REPO = Path(__file__).resolve().parents[1]

TEMPERATURES = [0.01, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0]


def matmul_ceiling(dtype: str, largest: int = 2048, budget_seconds: float = 2.0) -> float:
    """Peak matrix-multiply rate of this machine in ``dtype`` (float32 or bfloat16), in FLOP/s: the better of
    torch.matmul (MKL, which on AMD CPUs takes its AVX2 path: 108 GFLOP/s on a 2-core AVX-512 EPYC) and oneDNN's
    linear (the library of vLLM's CPU kernels: 455 GFLOP/s on the same cores). Each is the best of several timed
    square products, their size doubled from 256 up to ``largest`` while one product takes under 50 ms, and as many
    repeats as fit in ``budget_seconds`` (3 to 20). A CPU without bf16 instructions (AVX2 only: one bf16 product of
    2048 took 15 s) is measured at a smaller size instead of for minutes."""
    import torch

    kind = getattr(torch, dtype)

    def best_rate(product) -> float:
        def timed(size: int) -> tuple[float, tuple]:
            operands = product(size)
            operands[0](*operands[1:])  # warm-up
            start = time.perf_counter()
            operands[0](*operands[1:])
            return time.perf_counter() - start, operands

        size = 256
        elapsed, operands = timed(size)
        while size < largest and elapsed < 0.05:
            size *= 2
            elapsed, operands = timed(size)
        best = elapsed
        for _ in range(max(3, min(20, int(budget_seconds / max(elapsed, 1e-6)))) - 1):
            start = time.perf_counter()
            operands[0](*operands[1:])
            best = min(best, time.perf_counter() - start)
        return 2 * size**3 / best

    def mkl(size: int) -> tuple:
        return torch.matmul, torch.randn(size, size, dtype=kind), torch.randn(size, size, dtype=kind)

    def onednn(size: int) -> tuple:
        a, b = (torch.randn(size, size, dtype=kind).to_mkldnn() for _ in range(2))
        return torch._C._nn.mkldnn_linear, a, b, None

    rates = [best_rate(mkl)]
    if torch.backends.mkldnn.is_available():
        try:
            rates.append(best_rate(onednn))
        except RuntimeError:  # (a build whose oneDNN lacks this dtype)
            pass
    return max(rates)


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
    return render_prompt_ids(AutoTokenizer.from_pretrained(folder, trust_remote_code=False), request)


def pipeline_model() -> dict:
    """The default config's model settings (config/config.yaml, validated as the pipeline does)."""
    from tempcreativity.config import load_config

    first = load_config(REPO / "config/config.yaml", REPO / "workflow/schemas/config.schema.yaml")["models"][0]
    return {name: value for name, value in first.items() if name != "id"}


def bench_vllm(folder: Path, ids: list[int], pairs, max_tokens: int, dtype: str, compiled: bool) -> dict:
    """The pipeline's path: its engine settings, every story in one generate() call with seeded SamplingParams."""
    from vllm import LLM, SamplingParams

    from tempcreativity.engine import engine_arguments, on_cpu

    model = pipeline_model() | {"dtype": dtype}
    if compiled:
        model["engine_args"] = {**model["engine_args"], "enforce_eager": False}
    start = time.perf_counter()
    engine = LLM(**engine_arguments(model, folder, len(ids), on_cpu()))
    started = time.perf_counter()
    params = [
        SamplingParams(temperature=t, seed=s, top_k=50, top_p=1.0, max_tokens=max_tokens, ignore_eos=True, logprobs=0)
        for t, s in pairs
    ]
    outputs = engine.generate([{"prompt_token_ids": ids}] * len(pairs), params, use_tqdm=False)
    done = time.perf_counter()
    tokens = sum(len(output.outputs[0].token_ids) for output in outputs)
    del engine
    return {"stories": len(pairs), "tokens": tokens, "seconds": done - started, "start_seconds": started - start}


def bench_hf(folder: Path, ids: list[int], pairs, max_tokens: int, batch: int, dtype: str) -> dict:
    """transformers generate: stories of one temperature in batches of ``batch`` (1 = one at a time)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype), trust_remote_code=False).eval()
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
                output = model.generate(
                    inputs,
                    attention_mask=torch.ones_like(inputs),
                    do_sample=True,
                    temperature=temperature,
                    top_k=50,
                    top_p=1.0,
                    max_new_tokens=max_tokens,
                    min_new_tokens=max_tokens,
                    pad_token_id=model.config.eos_token_id,
                )
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


def run_engine(engine: str, arguments, folder: Path, preload: bool = False) -> dict | None:
    """One engine's measurement, in a fresh Python process (with the pipeline jobs' preloaded libraries when
    ``preload``); None when the engine is not installed."""
    from tempcreativity.engine import preloaded_environment

    command = [
        sys.executable,
        __file__,
        "--engine",
        engine,
        "--model-dir",
        str(folder),
        "--stories",
        str(arguments.stories),
        "--max-tokens",
        str(arguments.max_tokens),
        "--one-at-a-time",
        str(arguments.one_at_a_time),
        "--batch",
        str(arguments.batch),
        "--dtype",
        arguments.dtype,
    ]
    environment = preloaded_environment(dict(os.environ)) if preload else dict(os.environ)
    completed = subprocess.run(command, capture_output=True, text=True, check=True, env=environment)
    result = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(result.removeprefix("RESULT "))


def measure(engine: str, arguments) -> dict | None:
    folder = Path(arguments.model_dir)
    ids = prompt_ids(folder)
    pairs, few = grid(arguments.stories), grid(arguments.one_at_a_time)
    if engine in ("vllm", "vllm-compiled"):
        return bench_vllm(folder, ids, pairs, arguments.max_tokens, arguments.dtype, engine == "vllm-compiled")
    if engine == "hf-single":
        return bench_hf(folder, ids, few, arguments.max_tokens, 1, arguments.dtype)
    if engine == "hf-batched":
        return bench_hf(folder, ids, pairs, arguments.max_tokens, arguments.batch, arguments.dtype)
    return bench_llama_cpp(ids, few, arguments.max_tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=64, help="stories for vLLM and batched transformers")
    parser.add_argument("--max-tokens", type=int, default=128, help="new tokens per story (EOS ignored)")
    parser.add_argument("--one-at-a-time", type=int, default=4, help="stories for the one-at-a-time engines")
    parser.add_argument("--batch", type=int, default=16, help="batch size of batched transformers")
    parser.add_argument("--model-dir", help="converted model folder (default: resources/models/..., or convert)")
    parser.add_argument("--compiled", action="store_true", help="add the pipeline's dtype without enforce_eager")
    parser.add_argument("--no-preload", action="store_true", help="run vLLM without the jobs' preloaded libraries")
    parser.add_argument(
        "--rows",
        default="vllm,vllm-other-dtype,hf-single,hf-batched,llama-cpp",
        help="the rows to measure, of: vllm, vllm-other-dtype, hf-single, hf-batched, llama-cpp (default all; "
        "vllm and hf-single are always measured: the others are compared with them)",
    )
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.engine:  # a child process: measure one engine, print its result as JSON
        print("RESULT " + json.dumps(measure(arguments.engine, arguments)), flush=True)
        return

    from tempcreativity.engine import preload_libraries

    folder = model_folder(arguments.model_dir)
    default_dtype = pipeline_model()["dtype"]
    other_dtype = "bfloat16" if default_dtype == "float32" else "float32"
    ceilings = {dtype: matmul_ceiling(dtype) for dtype in ("float32", "bfloat16")}
    flops_per_token = 2 * parameter_count(folder)
    preload = not arguments.no_preload
    rows = []  # (name, dtype, result)

    chosen = (
        set(arguments.rows.split(",")) | {"vllm", "hf-single"} | ({"vllm-compiled"} if arguments.compiled else set())
    )

    def add(name: str, engine: str, dtype: str, with_preload: bool = False, row: str | None = None) -> dict | None:
        if (row or engine) not in chosen:
            return None
        result = run_engine(engine, argparse.Namespace(**{**vars(arguments), "dtype": dtype}), folder, with_preload)
        if result:
            rows.append((name, dtype, result))
        return result

    pipeline = add(f"vLLM, the pipeline's settings ({default_dtype})", "vllm", default_dtype, preload)
    add(f"vLLM, the pipeline's settings but {other_dtype}", "vllm", other_dtype, preload, row="vllm-other-dtype")
    if arguments.compiled:
        add(
            f"vLLM, the pipeline's settings, compiled (not eager), {default_dtype}",
            "vllm-compiled",
            default_dtype,
            preload,
        )
    baseline = add(f"transformers generate, one at a time ({default_dtype})", "hf-single", default_dtype)
    add(f"transformers generate, batched {arguments.batch} ({default_dtype})", "hf-batched", default_dtype)
    llama = add("llama.cpp (the study's engine), one at a time, Q4_1", "llama-cpp", "bfloat16")
    rows.append(
        (
            f"vLLM, the pipeline's settings ({default_dtype}), engine start included",
            default_dtype,
            {**pipeline, "seconds": pipeline["seconds"] + pipeline["start_seconds"]},
        )
    )

    baseline_rate = baseline["tokens"] / baseline["seconds"]
    print(
        f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}; "
        f"{flops_per_token / 2e6:.0f}M parameters; matmul ceilings float32 {ceilings['float32'] / 1e9:.0f} GFLOP/s "
        f"= {ceilings['float32'] / flops_per_token:.0f} tokens/s, bf16 {ceilings['bfloat16'] / 1e9:.0f} GFLOP/s = "
        f"{ceilings['bfloat16'] / flops_per_token:.0f} tokens/s"
    )
    preloaded = ", ".join(Path(path).name for path in preload_libraries()) if preload else "nothing"
    print(
        f"Grid: {arguments.stories} stories ({arguments.one_at_a_time} for one-at-a-time engines) x "
        f"{arguments.max_tokens} new tokens, the study's temperatures, top_k 50; vLLM with {preloaded} "
        "preloaded\n"
    )
    print(
        "| engine | stories | tokens | seconds | tokens/s | stories/s | x one-at-a-time generate "
        "| % of its dtype's ceiling |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, dtype, result in rows:
        rate = result["tokens"] / result["seconds"]
        print(
            f"| {name} | {result['stories']} | {result['tokens']} | {result['seconds']:.1f} | {rate:.0f} | "
            f"{result['stories'] / result['seconds']:.2f} | {rate / baseline_rate:.1f} | "
            f"{100 * rate * flops_per_token / ceilings[dtype]:.0f}% |"
        )
    if not llama:
        print("\n(llama.cpp row left out: llama-cpp-python is not installed; pip install -e '.[bench]')")


if __name__ == "__main__":
    main()
