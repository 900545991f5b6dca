"""One engine per process, as on GPUs, checked on the CPU: with VLLM_ENABLE_V1_MULTIPROCESSING=1 (vLLM's default,
which tempcreativity.engine keeps for its CUDA build) every engine core runs in a child process that exits when the
engine stops. A job that starts one engine after another (generation, then the model embedder: what crashed on an
H200 with in-process engines, as did two models in one job) must run to its end and give the stories the in-process
engine gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

pytestmark = pytest.mark.e2e


def run_job(model: Path, workdir: Path, in_process: bool) -> dict:
    """tests/engine_per_process.py in a fresh process, its engines in-process or each in a child process."""
    completed = subprocess.run(
        [sys.executable, str(REPO / "tests" / "engine_per_process.py"), str(model), str(workdir)],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ | {"VLLM_ENABLE_V1_MULTIPROCESSING": "0" if in_process else "1"},
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])  # (vLLM logs to stdout before it)


def test_engines_in_child_processes_hand_over_and_give_the_same_stories(tiny_run, tmp_path):
    from tiny_llama import save_tiny_llama

    embedded = tiny_run / "resources/models/smollm2-135m-instruct"
    tiny = save_tiny_llama(tmp_path / "tiny", embedded)
    result = run_job(tiny, tmp_path, in_process=False)
    assert result["in_process"] is False and result["generated"] == 4
    vectors = np.asarray(result["vectors"])
    assert vectors.shape[0] == 4 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    # The same requests with the engine in-process (the CPU's mode) find every story and vector in the cache the
    # child engines filled: same cache keys, same stories, no engine started.
    replay = run_job(tiny, tmp_path, in_process=True)
    assert replay["in_process"] is True and replay["generated"] == 0
    assert replay["token_ids"] == result["token_ids"] and np.allclose(replay["vectors"], vectors)
