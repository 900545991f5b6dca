"""Smoke test: the benchmark script runs end to end on a tiny grid and prints its table (no timing asserts)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


def test_generation_benchmark_prints_its_table(tiny_run):
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/bench_generation.py"),
            "--stories",
            "2",
            "--max-tokens",
            "4",
            "--one-at-a-time",
            "1",
            "--batch",
            "2",
            "--model-dir",
            str(tiny_run / "resources/models/smollm2-135m-instruct"),
            "--rows",
            "vllm,hf-batched",  # (and hf-single, always; the bfloat16 engine's start is the slow one on AVX2)
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    table = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| engine | stories | tokens | seconds | tokens/s")
    rows = {line.split(" | ")[0].strip("| "): line for line in table[2:]}
    assert {
        "vLLM, the pipeline's settings (float32)",  # the default config's dtype
        "transformers generate, one at a time (float32)",
        "transformers generate, batched 2 (float32)",
        "vLLM, the pipeline's settings (float32), engine start included",
    } <= set(rows)
    assert not [name for name in rows if "bfloat16" in name], "--rows leaves the other dtype's engine out"
    assert all(line.rstrip(" |").endswith("%") for line in rows.values()), "each row against its dtype's ceiling"
    assert "matmul ceilings float32" in completed.stdout and ", bf16 " in completed.stdout
    assert re.search(r"vLLM with (libtcmalloc_minimal\.so\.4, )?libiomp5\.so preloaded", completed.stdout)
