"""Snakemake adapter: score every story against the exemplar of its prompt."""

from tempcreativity.logs import log_to

log_to(snakemake.log[0])

from tempcreativity.embedding import read_vectors
from tempcreativity.io import read_parquet_without, write_parquet_atomic
from tempcreativity.scoring import score_stories

stories = read_parquet_without(snakemake.input.stories, {"token_ids", "top_logprobs"})  # (not used by the scores)
vectors = {
    name: read_vectors(path, stories["story_id"])
    for name, path in zip(snakemake.params.embedders, snakemake.input.embeddings)
}
write_parquet_atomic(score_stories(stories, vectors), snakemake.output.scores)
