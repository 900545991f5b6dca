"""The study's experiment on the CPU (config/paper-cpu.yaml, at test size): its raw prompt, llama.cpp's min-p
before temperature, its stop strings and its last-token embedding, each checked against an independent
recomputation with transformers on the same weights."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import yaml

from conftest import REPO, run_snakemake, share_converted_model

pytestmark = pytest.mark.e2e

STUDY_PROMPT = "[INST]Write a story.[/INST]Here it is:\n\n"
MODEL_DIR = "resources/models/smollm2-135m-instruct"
# paper-cpu.yaml at test size; the scaled run also stops at ".", so that every story ends at a stop string
RAW = yaml.safe_load((REPO / "config" / "paper-cpu.yaml").read_text()) | {
    "temperatures": [1.0, 2.0],
    "seeds": 3,
    "mlflow": {"enabled": False},
    "experiment": "paper-cpu",
}
RAW["decoding"] = RAW["decoding"] | {"max_tokens": 48}
SCALED = RAW | {
    "experiment": "paper-cpu-scaled",
    "decoding": RAW["decoding"] | {"truncation": "scaled", "stop": ["user", "system", "."]},
}


@pytest.fixture(scope="session")
def study_runs(tiny_run, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("paper-cpu")
    share_converted_model(tiny_run, workdir)
    run_snakemake(workdir, RAW, "results/paper-cpu/generations.parquet", "results/paper-cpu/embeddings/model.parquet")
    run_snakemake(workdir, SCALED, "results/paper-cpu-scaled/generations.parquet")
    return workdir


@pytest.fixture(scope="session")
def reference(study_runs):
    """transformers on the same weights, in float32 like the pipeline's engine."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = study_runs / MODEL_DIR
    return AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32
    ).eval()


def raw_logprobs(reference, prompt_ids: list[int], story_ids: list[int]) -> np.ndarray:
    """The model's own log-distribution at every story position (teacher forcing), one row per story token."""
    import torch

    _, model = reference
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + story_ids])).logits[0].double()
    return torch.log_softmax(logits, dim=-1)[len(prompt_ids) - 1 : len(prompt_ids) + len(story_ids) - 1].numpy()


def sampled_ranks_and_ratios(study_runs, experiment, reference):
    tokenizer, _ = reference
    table = pl.read_parquet(study_runs / f"results/{experiment}/generations.parquet")
    prompt_ids = tokenizer(STUDY_PROMPT)["input_ids"]
    checked = []
    for row in table.iter_rows(named=True):
        distribution = raw_logprobs(reference, prompt_ids, row["token_ids"])
        for position, token in enumerate(row["token_ids"]):
            logp = distribution[position]
            checked.append(
                {
                    "temperature": row["temperature"],
                    "rank": int((logp > logp[token]).sum()),
                    "log_ratio": float(logp[token] - logp.max()),
                    "ours": row["logprobs"][position],
                    "ours_top": row["top_logprobs"][position],
                    "logp": float(logp[token]),
                    "top": float(logp.max()),
                }
            )
    return table, pl.DataFrame(checked)


def test_a_raw_prompt_is_sent_exactly_as_written(study_runs, reference):
    tokenizer, _ = reference
    table = pl.read_parquet(study_runs / "results/paper-cpu/generations.parquet")
    assert set(table["prompt_format"]) == {"raw"} and set(table["truncation"]) == {"raw"}
    assert set(table["prompt_num_tokens"]) == {len(tokenizer(STUDY_PROMPT)["input_ids"])}


def test_raw_truncation_never_samples_below_raw_min_p_or_outside_raw_top_k(study_runs, reference):
    table, tokens = sampled_ranks_and_ratios(study_runs, "paper-cpu", reference)
    assert tokens.height > 100
    # the stored log-probabilities are the model's raw ones, sampled and most likely token alike
    assert np.allclose(tokens["ours"], tokens["logp"], atol=2e-3) and np.allclose(
        tokens["ours_top"], tokens["top"], atol=2e-3
    )
    sampled = tokens.filter(pl.col("temperature") > 0)
    assert (sampled["rank"] < 50).all()
    assert (sampled["log_ratio"] >= math.log(0.05) - 1e-3).all(), sampled.sort("log_ratio").head(3)
    assert (tokens.filter(pl.col("temperature") == 0)["rank"] == 0).all()  # the exemplar is greedy


def test_scaled_truncation_at_t2_samples_what_raw_min_p_would_remove(study_runs, reference):
    _, tokens = sampled_ranks_and_ratios(study_runs, "paper-cpu-scaled", reference)
    hot = tokens.filter(pl.col("temperature") == 2.0)
    assert (hot["log_ratio"] < math.log(0.05)).sum() > 0, "scaled min-p 0.05 at T = 2 keeps tokens raw min-p removes"
    assert (hot["log_ratio"] >= 2 * math.log(0.05) - 1e-3).all()  # after temperature 2: raw ratio >= 0.05^2


def test_stop_strings_end_stories_as_llama_cpp_did(study_runs, reference):
    tokenizer, _ = reference
    table = pl.read_parquet(study_runs / "results/paper-cpu-scaled/generations.parquet")
    assert (table["finish_reason"] == "stop").sum() >= table.height // 2, "most stories end at a '.'"
    for row in table.iter_rows(named=True):
        assert not any(stop in row["text"] for stop in ("user", "system", ".")), row["text"]
        # the tokens and log-probabilities cover exactly the kept text: no stop string, no end-of-sequence token
        assert tokenizer.decode(row["token_ids"], skip_special_tokens=True) == row["text"]
        assert tokenizer.eos_token_id not in row["token_ids"]
        assert len(row["logprobs"]) == len(row["top_logprobs"]) == row["num_tokens"] == len(row["token_ids"])
        assert row["cumulative_logprob"] == pytest.approx(sum(row["logprobs"]))


def test_last_token_embedding_is_the_final_hidden_state_of_the_last_token(study_runs, reference):
    import torch

    tokenizer, model = reference
    stories = pl.read_parquet(study_runs / "results/paper-cpu/generations.parquet")
    vectors = pl.read_parquet(study_runs / "results/paper-cpu/embeddings/model.parquet")
    for text, vector in zip(stories["text"].to_list()[:4], vectors["vector"].to_list()[:4]):
        with torch.no_grad():
            hidden = model.model(torch.tensor([tokenizer(text)["input_ids"]])).last_hidden_state  # after the final norm
        expected = hidden[0, -1].double().numpy()
        assert np.linalg.norm(vector) == pytest.approx(np.linalg.norm(expected), rel=1e-3), "not normalised"
        assert np.allclose(vector, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_the_studys_stories_are_teacher_forced_after_its_prompt(study_runs, reference):
    """`make study`'s perplexity: vLLM's prompt log-probabilities of each released story after the study's raw
    prompt, checked against transformers on the same weights."""
    from tempcreativity.peeperkorn import load_study_stories
    from tempcreativity.study import teacher_forced_logprobs

    tokenizer, _ = reference
    texts = load_study_stories(REPO / "resources" / "peeperkorn2024")["text"].to_list()[:3]
    model = {"dtype": "float32", "max_model_len": 2048, "tensor_parallel_size": 1, "engine_args": {}}
    token_ids, logprobs = teacher_forced_logprobs(texts, study_runs / MODEL_DIR, model)
    prompt_ids = tokenizer(STUDY_PROMPT)["input_ids"]
    for text, ids, ours in zip(texts, token_ids, logprobs):
        assert ids == tokenizer(text, add_special_tokens=False)["input_ids"] and len(ours) == len(ids) > 300
        expected = raw_logprobs(reference, prompt_ids, ids)[np.arange(len(ids)), ids]
        assert np.allclose(ours, expected, atol=2e-3)
        assert 1 < math.exp(-np.mean(ours)) < 100  # a finite perplexity of a real story
