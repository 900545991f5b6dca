"""Run by tests/test_gpu.py in a fresh process (vLLM reads VLLM_BATCH_INVARIANT at its start): 21 stories generated
alone, then the same 21 among 225 (the study's 7 temperatures x 32 seeds + 1), each with its own engine, in one
process (one engine per process on GPUs: each engine core is a child process). Prints one JSON line: how many of the
21 have the same token ids, the throughput of the 225, and the mode.

    python tests/gpu_reproducibility.py MODEL_FOLDER WORK_FOLDER MAX_TOKENS"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(folder: str, workdir: str, max_tokens: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_gpu import GPU_ENGINE, manifest

    from tempcreativity.generation import generate_stories
    from tempcreativity.grid import StoryRequest

    temperatures = [0.01, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0]
    requests = [
        StoryRequest(
            prompt_id="story",
            prompt_text="Write a story.",
            system=None,
            assistant_prefix="Here it is:\n\n",
            prompt_format="chat",
            temperature=temperatures[i % 7],
            seed=i // 7,
            is_exemplar=False,
            sampling_seed=1_000_003 * i + 17,
            id_parts=("", f"{i}"),
        )
        for i in range(225)
    ]
    alone_indices = list(range(0, 225, 11))[:21]
    config = {
        "experiment": "repro",
        "models": [{"id": "model", "path": folder, **GPU_ENGINE}],
        "decoding": {"max_tokens": int(max_tokens), "stop": []},
    }
    manifests = {"model": manifest("model", Path(folder))}
    alone, _ = generate_stories([requests[i] for i in alone_indices], config, manifests, Path(workdir) / "alone")
    among, stats = generate_stories(requests, config, manifests, Path(workdir) / "among")
    identical = sum(alone["token_ids"][k] == among["token_ids"][i] for k, i in enumerate(alone_indices))
    print(
        json.dumps(
            {
                "batch_invariant": os.environ.get("VLLM_BATCH_INVARIANT", "0"),
                "alone": len(alone_indices),
                "identical": identical,
                "tokens_per_second": stats.get("tokens_per_second"),
                "engine_start_seconds": stats["engine_start_seconds"],
                "device": stats["device"],
                "mean_tokens": float(among["num_tokens"].mean()),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
