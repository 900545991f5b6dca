"""Smoke test: the benchmark script runs end to end on a tiny grid and prints its table (no timing asserts)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


def test_generation_benchmark_prints_its_table(tiny_run):
    completed = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/bench_generation.py"), "--stories", "2", "--max-tokens", "4",
         "--one-at-a-time", "1", "--batch", "2", "--model-dir", str(tiny_run / "resources/models/smollm2-135m-instruct")],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    table = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| engine | stories | tokens | seconds | tokens/s")
    rows = {line.split(" | ")[0].strip("| ") for line in table[2:]}
    assert {
        "vLLM (pipeline), generation",
        "transformers generate, one at a time",
        "transformers generate, batched 2",
    } <= rows
    assert "bf16 matmul ceiling" in completed.stdout
