"""Model identification: folder fingerprints and resource names."""

from __future__ import annotations

from tempcreativity.model import embedded_gguf_path, folder_sha256, model_slug


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
