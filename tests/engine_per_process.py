"""Run by tests: generate a few stories with a model, then embed them with the model embedder, two engines one
after the other in one process (as the default config's generation job and each model of ``models:`` hand over),
each engine as the GPU path runs it or in this process (VLLM_ENABLE_V1_MULTIPROCESSING as set by the caller), and
print what came out as JSON: each story's token ids, the embedding vectors, and the engine statistics.

    python tests/engine_per_process.py MODEL CACHE_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(model: str, cache: str) -> None:
    from tempcreativity.embedding import embed_stories
    from tempcreativity.engine import engine_in_process
    from tempcreativity.generation import generate_stories
    from tempcreativity.grid import StoryRequest
    from tempcreativity.model import folder_sha256

    models = [
        {
            "id": "a",
            "path": model,
            "dtype": "float32",
            "max_model_len": 512,
            "tensor_parallel_size": 1,
            "device": "auto",
            "engine_args": {},
        }
    ]
    config = {"experiment": "engines", "models": models, "decoding": {"max_tokens": 12, "stop": []}}
    manifests = {
        m["id"]: {"model": m["id"], "folder": m["path"], "sha256": folder_sha256(Path(m["path"]))} for m in models
    }
    requests = [
        StoryRequest(
            prompt_id="story",
            prompt_text="Write a story.",
            system=None,
            assistant_prefix="",
            prompt_format="chat",
            temperature=1.0,
            seed=seed,
            is_exemplar=False,
            sampling_seed=1000 + seed,
            model_id=m["id"],
            id_parts=(m["id"], ""),
        )
        for m in models
        for seed in range(4)
    ]
    stories, stats = generate_stories(requests, config, manifests, Path(cache) / "generations")
    settings = {name: value for name, value in models[0].items() if name != "id"}
    vectors, _ = embed_stories(stories["text"].to_list(), "model", manifests["a"], settings, Path(cache) / "embeddings")
    print(
        json.dumps(
            {
                "in_process": engine_in_process(),
                "token_ids": stories["token_ids"].to_list(),
                "vectors": vectors.tolist(),
                "generated": stats["generated"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
