"""Snakemake adapter: write the self-contained HTML report."""

from pathlib import Path

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

from tempcreativity.io import write_text_atomic
from tempcreativity.report import build

html = build(
    snakemake.input,
    snakemake.params.config,
    files=snakemake.params.files,
    rating_sources=snakemake.params.rating_sources,
    survey=snakemake.params.survey,  # (None without survey.enabled)
    source_dir=Path(snakemake.scriptdir).parent,
)
write_text_atomic(html, snakemake.output.report)
