"""Model identification: folder fingerprints and resource names."""

from __future__ import annotations

import pytest

from tempcreativity.model import embedded_gguf_path, folder_sha256, gguf_config, model_slug


def test_folder_sha256_depends_on_names_and_contents(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text("{}")
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01")
    first = folder_sha256(tmp_path)
    assert first == folder_sha256(tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"\x00\x02")
    assert folder_sha256(tmp_path) != first
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01")
    (tmp_path / "a" / "config.json").rename(tmp_path / "a" / "other.json")
    assert folder_sha256(tmp_path) != first


def test_model_slug_is_safe_and_distinct():
    assert model_slug("embedded") == "smollm2-135m-instruct"
    slug = model_slug("meta-llama/Llama-2-70b-chat-hf")
    assert "/" not in slug and slug.startswith("meta-llama-llama-2-70b-chat-hf-")
    assert model_slug("/models/a b") != model_slug("/models/a-b")


def test_embedded_gguf_ships_in_its_package():
    path = embedded_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_gguf_config_renames_the_llama_keys_as_transformers_does():
    metadata = {
        "general.architecture": "llama",
        "general.name": "Tiny",
        "llama.block_count": 2,
        "llama.attention.head_count_kv": 1,
        "llama.rope.freq_base": 10000.0,
        "general.file_type": 3,
        "tokenizer.ggml.tokens": 320,
        "tokenizer.ggml.bos_token_id": 1,
    }
    config = gguf_config(metadata, ("token_embd.weight", "blk.0.attn_q.weight"))
    assert config == {
        "tie_word_embeddings": True,
        "model_type": "llama",
        "_model_name_or_path": "Tiny",
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rope_theta": 10000.0,
        "bos_token_id": 1,
        "vocab_size": 320,
    }
    untied = gguf_config({**metadata, "llama.vocab_size": 300}, ("token_embd.weight", "output.weight"))
    assert not untied["tie_word_embeddings"] and untied["vocab_size"] == 300
    with pytest.raises(ValueError, match="only llama-architecture"):
        gguf_config({**metadata, "general.architecture": "qwen2"}, ())
