"""Model identification: folder fingerprints and resource names."""

from __future__ import annotations

import pytest

from tempcreativity.model import convert_gguf_to_hf, embedded_gguf_path, folder_sha256, gguf_config, model_slug


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
    metadata = {"general.architecture": "llama", "general.name": "Tiny", "llama.block_count": 2,
                "llama.attention.head_count_kv": 1, "llama.rope.freq_base": 10000.0, "general.file_type": 3,
                "tokenizer.ggml.tokens": 320, "tokenizer.ggml.bos_token_id": 1}  # fmt: skip
    config = gguf_config(metadata, ("token_embd.weight", "blk.0.attn_q.weight"))
    assert config == {"tie_word_embeddings": True, "model_type": "llama", "_model_name_or_path": "Tiny",
                      "num_hidden_layers": 2, "num_key_value_heads": 1, "rope_theta": 10000.0, "bos_token_id": 1,
                      "vocab_size": 320}  # fmt: skip
    untied = gguf_config({**metadata, "llama.vocab_size": 300}, ("token_embd.weight", "output.weight"))
    assert not untied["tie_word_embeddings"] and untied["vocab_size"] == 300
    with pytest.raises(ValueError, match="only llama-architecture"):
        gguf_config({**metadata, "general.architecture": "qwen2"}, ())


@pytest.mark.e2e  # transformers' own GGUF loading, the reference, takes 30-60 CPU seconds on 2 cores
def test_embedded_conversion_is_transformers_own_bit_for_bit(tmp_path, embedded_tokenizer):
    """The fast conversion writes what transformers' GGUF loading gives: every weight bitwise after the bfloat16
    cast, the same config and the same tokenizer."""
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.integrations.gguf import read_gguf_metadata
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    gguf = embedded_gguf_path()
    convert_gguf_to_hf(gguf, tmp_path / "model")
    converted = load_file(tmp_path / "model" / "model.safetensors")
    reference = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    expected = {name: value.to(torch.bfloat16) for name, value in reference.state_dict().items()}
    assert reference.config.tie_word_embeddings  # the output layer is the embedding: saved once, as transformers does
    del expected["lm_head.weight"]
    assert converted.keys() == expected.keys() and len(converted) == 272
    for name, value in converted.items():
        assert value.dtype == torch.bfloat16 and torch.equal(value.view(torch.int16), expected[name].view(torch.int16))

    assert gguf_config(*read_gguf_metadata(str(gguf))) == load_gguf_checkpoint(str(gguf))["config"]
    config = AutoConfig.from_pretrained(tmp_path / "model").to_dict()
    assert config["dtype"] == "bfloat16" and config["architectures"] == ["LlamaForCausalLM"]
    for key, value in reference.config.to_dict().items():  # but what saving sets, and the GGUF quantisation
        if key not in ("dtype", "architectures", "quantization_config", "_name_or_path", "transformers_version"):
            assert config[key] == value, key
    written = Tokenizer.from_file(str(tmp_path / "model" / "tokenizer.json"))
    assert written.to_str() == embedded_tokenizer.backend_tokenizer.to_str()
