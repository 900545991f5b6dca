"""The one-time conversion of the embedded model (SmolLM2-135M-Instruct, Q4_1 GGUF) into the bfloat16 folder vLLM
loads, side by side in one run, each in a fresh Python process (imports included, as the rule pays them):

1. transformers' own GGUF loading and ``save_pretrained`` (the conversion before issue 27, kept here);
2. ``tempcreativity.model.convert_gguf_to_hf`` (transformers' fast GGUF reader once, gguf-py's dequantisation);
3. the floor: read the GGUF file and write the converted folder's bytes again, nothing else.

    .venv/bin/python benchmarks/bench_conversion.py [--repeats N] [--workdir DIR]

Prints a Markdown table: wall and CPU seconds (user + system) and peak resident memory of each process, the best
of --repeats runs, and whether the folders are byte-identical (``folder_sha256``, which every cache key uses)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "before": "transformers: from_pretrained(gguf_file=...) + save_pretrained (before)",
    "now": "convert_gguf_to_hf: fast GGUF reader + gguf-py dequantisation (now)",
    "floor": "floor: read the GGUF, write the folder's bytes",
}


def convert_with_transformers(gguf_file: Path, out_dir: Path, dtype: str = "bfloat16") -> None:
    """The conversion before issue 27: dequantise with transformers' GGUF loading, rebuild a plain model (its
    save_pretrained refuses a GGUF-quantised one) and save it with the tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source_dir, file_name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=file_name, trust_remote_code=False)
    quantised = AutoModelForCausalLM.from_pretrained(
        source_dir, gguf_file=file_name, dtype=torch.float32, trust_remote_code=False
    )
    config = AutoConfig.from_pretrained(source_dir, gguf_file=file_name, trust_remote_code=False)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = dtype
    model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype), trust_remote_code=False)
    model.load_state_dict(quantised.state_dict())
    model.generation_config = quantised.generation_config
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def copy_bytes(gguf_file: Path, source: Path, out_dir: Path) -> None:
    """Read the GGUF file whole, then write every file of an already converted folder again."""
    gguf_file.read_bytes()
    out_dir.mkdir(parents=True)
    for file in sorted(source.iterdir()):
        (out_dir / file.name).write_bytes(file.read_bytes())


def child(variant: str, out_dir: Path, source: Path | None) -> None:
    """One variant in this process (run by ``measure``)."""
    from tempcreativity.model import convert_gguf_to_hf, embedded_gguf_path

    gguf_file = embedded_gguf_path()
    if variant == "before":
        convert_with_transformers(gguf_file, out_dir)
    elif variant == "now":
        convert_gguf_to_hf(gguf_file, out_dir)
    else:
        copy_bytes(gguf_file, source, out_dir)


def measure(variant: str, out_dir: Path, source: Path | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak resident MiB) of one variant in a fresh process."""
    command = [sys.executable, __file__, "--child", variant, "--out", str(out_dir)]
    command += ["--source", str(source)] if source else []
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{variant} failed:\n{process.stderr.read().decode()[-3000:]}")
    process.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant; the best is reported")
    parser.add_argument("--workdir", type=Path, default=None, help="where the folders are written (a temp folder)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.out, args.source)
        return

    from tempcreativity.model import embedded_gguf_path, folder_sha256

    workdir = Path(tempfile.mkdtemp(prefix="bench-conversion-", dir=args.workdir))
    embedded_gguf_path().read_bytes()  # every variant starts with the file in the page cache
    best, digests = {}, {}
    for repeat in range(args.repeats):
        for variant in VARIANTS:
            out_dir = workdir / f"{variant}-{repeat}"
            source = workdir / "now-0" if variant == "floor" else None
            wall, cpu, peak = measure(variant, out_dir, source)
            digests[variant] = folder_sha256(out_dir)
            if variant not in best or wall < best[variant][0]:
                best[variant] = (wall, cpu, peak)
    size = sum(file.stat().st_size for file in (workdir / "now-0").iterdir()) / 2**20
    print(
        f"Embedded model: {embedded_gguf_path().stat().st_size / 2**20:.0f} MiB GGUF -> {size:.0f} MiB folder; "
        f"best of {args.repeats}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| conversion | wall (s) | CPU (s) | peak memory (MiB) | folder sha256 |")
    print("| --- | ---: | ---: | ---: | --- |")
    for variant, label in VARIANTS.items():
        wall, cpu, peak = best[variant]
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {peak:.0f} | {digests[variant][:12]} |")
    same = digests["before"] == digests["now"] == digests["floor"]
    print(f"\nFolders byte-identical: {'yes' if same else 'NO'} (folder_sha256 {digests['now']})")
    shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
