"""Snakemake adapter: convert the embedded SmolLM2 GGUF into a Hugging Face folder vLLM loads."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

from tempcreativity.model import convert_gguf_to_hf, embedded_gguf_path

convert_gguf_to_hf(embedded_gguf_path(), Path(snakemake.output.folder), dtype=snakemake.params.dtype)
