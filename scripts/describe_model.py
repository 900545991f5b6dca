"""Snakemake adapter: record the model's folder and sha256 in a manifest that every result refers to."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

from tempcreativity.io import write_json_atomic
from tempcreativity.model import model_manifest, path_trusts_remote_code, resolve_model_folder

embedded = Path(snakemake.input.folder) if "folder" in snakemake.input.keys() else None
# (a hub id's download is checked here, before any engine job: no code of its own unless the config trusts it)
trusted = path_trusts_remote_code(snakemake.config, snakemake.params.path)
folder = resolve_model_folder(snakemake.params.path, embedded, trusted)
manifest = model_manifest(snakemake.params.path, folder)
print(f"model {manifest['model']} in {folder}: sha256 {manifest['sha256']}")
write_json_atomic(manifest, snakemake.output.manifest)
