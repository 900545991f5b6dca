"""The README's figure: config/paper-cpu.yaml with the study's raw min-p (truncation raw) against the same config
with vLLM's order (truncation scaled), per temperature, with shared seeds (so that each story of one run has a
paired story in the other, drawn with the same random numbers). Run both experiments first:

    make run ARGS="--configfile config/paper-cpu.yaml docs/shared-seeds.yaml"
    make run ARGS="--configfile config/paper-cpu.yaml docs/paper-cpu-scaled.yaml docs/shared-seeds.yaml"
    .venv/bin/python docs/compare_truncation.py
"""

import polars as pl

from tempcreativity.figures import compare_runs, save

runs = {
    "raw min-p 0.05 before T (the study)": "results/paper-cpu/summary.parquet",
    "min-p 0.05 after T (vLLM's order)": "results/paper-cpu-scaled/summary.parquet",
}
save(
    compare_runs({label: pl.read_parquet(path) for label, path in runs.items()}),
    "docs/truncation.png",
    "docs/truncation.svg",
)
print("docs/truncation.png, docs/truncation.svg")
