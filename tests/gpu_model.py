"""Models for the GPU tests and the GPU benchmark: the embedded model's weights where its package is installed, or
a model of the same architecture with random weights made from its config.json with a fixed seed (weights cannot
travel to a GPU machine that lacks the package; throughput and every code path are the same, the texts are noise),
and an 8B Llama architecture with random weights for the benchmark. bfloat16 safetensors, vLLM loads them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "generation_config.json",
    "special_tokens_map.json",
)
# Llama 3.1 8B's shape (hidden 4096, 32 layers, 32 heads with 8 key-value heads, MLP 14336, vocabulary 128256),
# here with SmolLM2's tokenizer ids inside its vocabulary: the benchmark's tokens/s and memory are those of an 8B model.
LLAMA_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
}


def embedded_source(workdir: Path) -> Path:
    """A folder with the embedded model's config.json and tokenizer files: TEMPCREATIVITY_GPU_MODEL_SOURCE where set,
    else the embedded model converted from its package into ``workdir`` (once)."""
    import os

    from tempcreativity.model import convert_gguf_to_hf, embedded_gguf_path

    if os.environ.get("TEMPCREATIVITY_GPU_MODEL_SOURCE"):
        return Path(os.environ["TEMPCREATIVITY_GPU_MODEL_SOURCE"])
    folder = workdir / "smollm2-135m-instruct"
    if not (folder / "config.json").is_file():
        convert_gguf_to_hf(embedded_gguf_path(), folder)
    return folder


def save_random_model(folder: Path, source: Path, seed: int = 0, shape: dict | None = None) -> Path:
    """A Llama model with ``source``'s config.json (changed by ``shape``) and random weights (``seed``), bfloat16,
    with ``source``'s tokenizer files, in ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file():
        return folder
    settings = json.loads((source / "config.json").read_text())
    settings = {
        key: value
        for key, value in settings.items()
        if key not in ("architectures", "torch_dtype", "dtype", "quantization_config", "transformers_version")
    }
    config = LlamaConfig(**(settings | (shape or {})))
    torch.manual_seed(seed)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # an 8B model initialises in seconds on a GPU
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy(source / name, folder / name)
    del model
    return folder
