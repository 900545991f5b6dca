"""A second generating model for the tests: a tiny randomly initialised Llama (2 layers, 128 wide, head size 64 as
the CPU attention needs) saved as a Hugging Face folder with the embedded model's tokenizer and chat template,
which vLLM loads like any other model. Its stories are random tokens; what matters is that it is a different model
with its own weights and sha256."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")


def save_tiny_llama(folder: Path, embedded_folder: Path, seed: int = 0) -> Path:
    """Write the tiny Llama into ``folder`` (float32 safetensors, ~26 MB) and return it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    source = __import__("json").loads((embedded_folder / "config.json").read_text())
    config = LlamaConfig(
        vocab_size=source["vocab_size"],
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=4096,
        bos_token_id=source["bos_token_id"],
        eos_token_id=source["eos_token_id"],
        pad_token_id=source["pad_token_id"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    for name in TOKENIZER_FILES:
        if (embedded_folder / name).exists():
            shutil.copy(embedded_folder / name, folder / name)
    return folder
