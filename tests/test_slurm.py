"""SLURM: the plan of config/paper.yaml for a GPU cluster (a dry run through profiles/slurm), and the tiny grid
run through a real single-node SLURM cluster on this machine (tests/slurm/slurm_up.sh: Debian's Slurm 22.05 with
accounting) on the CPU with the real vLLM engine, compared with the local run of the same grid."""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SHARDED_CONFIG, TINY_CONFIG, run_snakemake, share_analysis_caches, share_converted_model

pytestmark = pytest.mark.e2e  # Snakemake subprocesses

HARNESS = REPO / "tests" / "slurm"
ACCOUNT_AND_PARTITION = {"SBATCH_ACCOUNT": "root", "SBATCH_PARTITION": "debug"}

# Two generation shards, so that the shards run as separate SLURM jobs; compared with the local run of the same.
SLURM_CONFIG = SHARDED_CONFIG

# The jobs the tiny grid submits; the light steps (collect, figures, report, MLflow) run on the submitting host.
SUBMITTED = {"generate_shard": 2, "judge_stories": 1, "score_stories": 1, "summarise_scores": 1, "analyse_ratings": 2}
LOCAL = {
    "collect_generations",
    "collect_embeddings",
    "plot_figures",
    "plot_ratings",
    "judge_vs_people",
    "build_report",
    "track_mlflow",
}


def cluster_is_up() -> bool:
    """A test cluster like ours is running: one idle node that offers one (fake) GPU."""
    try:
        states = subprocess.run(["sinfo", "-h", "-N", "-o", "%T %G"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return states.returncode == 0 and states.stdout.split() == ["idle", "gpu:1"]


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real SLURM cluster on this machine, its node offering one fake GPU: started (packages installed if
    needed) and stopped by the test, or one that the developer already runs with
    `SLURM_FAKE_GPUS=1 tests/slurm/slurm_up.sh`, left running."""
    if cluster_is_up():
        yield
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        reason = "starting the test SLURM cluster needs root and Debian's apt-get (tests/slurm/slurm_up.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    started = subprocess.run(
        ["bash", str(HARNESS / "slurm_up.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ | {"SLURM_FAKE_GPUS": "1"},
    )
    if started.returncode != 0:
        pytest.fail(f"tests/slurm/slurm_up.sh failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    try:
        yield
    finally:
        subprocess.run(["bash", str(HARNESS / "slurm_down.sh")], capture_output=True, text=True, timeout=300)


def slurm_jobs(since: str) -> list[dict[str, str]]:
    """The Snakemake jobs SLURM's accounting recorded since ``since`` (their comment names the rule)."""
    fields = ["JobID", "Comment", "State", "AllocCPUS", "ReqMem", "Timelimit", "AllocTRES"]
    listed = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-S", since, "-o", ",".join(fields)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    jobs = [dict(zip(fields, line.split("|"), strict=True)) for line in listed.stdout.splitlines() if line]
    return [job for job in jobs if job["Comment"].startswith("rule_")]


def rule_of(job: dict[str, str]) -> str:
    comment = job["Comment"].removeprefix("rule_")
    return comment.split("_wildcards_")[0]


@pytest.fixture(scope="session")
def slurm_run(tiny_run, sharded_run, slurm_cluster, tmp_path_factory):
    """The tiny grid (in two shards) through `snakemake --profile profiles/slurm`; returns its workdir and
    the SLURM jobs it submitted. Every job runs as a SLURM job, but the model's work comes from the caches of the
    same grid run locally (sharded_run): what is tested here is SLURM's part, the jobs, their resources and what
    they write; that the stories stay the same in shards is test_pipeline's."""
    workdir = tmp_path_factory.mktemp("slurm-run")
    share_converted_model(tiny_run, workdir)
    share_analysis_caches(tiny_run, workdir)
    shutil.copytree(sharded_run / "results/cache/generations", workdir / "results/cache/generations")
    shutil.copy(tiny_run / "people.csv", workdir / "people.csv")
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1))
    run_snakemake(
        workdir,
        SLURM_CONFIG,
        "--cores",
        "2",  # the CPU node's cores: each vLLM job takes them all (on GPUs: 4 CPUs per GPU)
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
        profile="slurm",
        env=ACCOUNT_AND_PARTITION,
        timeout=1500,
    )
    for _ in range(30):  # slurmdbd records the last job a moment after squeue reports it done
        jobs = slurm_jobs(since)
        if sum(SUBMITTED.values()) <= len(jobs) and all(job["State"] == "COMPLETED" for job in jobs):
            break
        time.sleep(1)
    return workdir, jobs, since


def test_every_model_and_scoring_step_ran_as_a_slurm_job(slurm_run):
    _, jobs, _ = slurm_run
    assert collections.Counter(rule_of(job) for job in jobs) == SUBMITTED, jobs
    assert all(job["State"] == "COMPLETED" for job in jobs), jobs
    assert not LOCAL & {rule_of(job) for job in jobs}
    generation = [job for job in jobs if rule_of(job) == "generate_shard"]
    assert {job["AllocCPUS"] for job in generation} == {"2"}, "a vLLM job takes the node's cores (--cores 2)"
    # 3 GB and the 4 GiB KV cache that an engine keeps when the judge asks its questions on it (resources.py)
    assert {job["ReqMem"] for job in generation} == {"7096M"} and {job["Timelimit"] for job in generation} == {
        "02:00:00"
    }


def test_slurm_run_gives_the_same_results_as_the_local_run(slurm_run, sharded_run):
    workdir, _, _ = slurm_run
    ours, local = workdir / "results" / "tiny", sharded_run / "results" / "tiny"
    tables = [
        "generations.parquet",
        "scores.parquet",
        "summary.parquet",
        "trends.parquet",
        "pca.parquet",
        "embeddings/minilm.parquet",
        "embeddings/model.parquet",
        "ratings/judge_ratings.csv",
        "ratings/judge_study_ratings.csv",
        "ratings/judge_vs_people.csv",
        "ratings/judge/ratings_descriptives.csv",
        "ratings/judge/ratings_lme.csv",
        "ratings/human/ratings_descriptives.csv",
        "ratings/human/ratings_lme.csv",
    ]
    for name in tables:
        assert (ours / name).read_bytes() == (local / name).read_bytes(), f"{name} differs from the local run's"
    assert sorted(path.name for path in (ours / "shards").glob("shard-?.parquet")) == [
        "shard-0.parquet",
        "shard-1.parquet",
    ]
    assert (workdir / "reports" / "tiny" / "index.html").stat().st_size > 0
    assert (ours / "mlflow.json").exists()


def test_slurm_rerun_submits_nothing(slurm_run):
    workdir, jobs, since = slurm_run
    run_snakemake(workdir, SLURM_CONFIG, "--cores", "2", profile="slurm", env=ACCOUNT_AND_PARTITION, timeout=300)
    assert "Nothing to be done" in (workdir / "snakemake.out").read_text()
    assert len(slurm_jobs(since)) == len(jobs)


def test_gpu_config_asks_slurm_for_gpus_and_stops_where_vllm_cannot_use_them(tiny_run, slurm_cluster, tmp_path):
    """model.device: gpu makes the generation job ask SLURM for tensor_parallel_size GPUs; the test node offers a
    fake one, the job is scheduled with it, and stops with a clear error because the installed vLLM is the CPU
    build. Nothing that looks complete is left behind."""
    share_converted_model(tiny_run, tmp_path)
    config = TINY_CONFIG | {"model": {"path": "embedded", "device": "gpu"}, "ratings": None}
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 1))
    completed = run_snakemake(
        tmp_path,
        config,
        "results/tiny/generations.parquet",  # the generation path only: no other engine job is started meanwhile
        "--max-threads",
        "2",  # the node's 2 cores and 20 GB; a GPU job asks for 4 CPUs and 16 GB more per GPU
        "--set-resources",
        "generate_shard:mem_mb=8000",
        "--retries",
        "0",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "2",
        check=False,
        profile="slurm",
        env=ACCOUNT_AND_PARTITION,
        timeout=600,
    )
    assert completed.returncode != 0
    for _ in range(30):
        generation = [job for job in slurm_jobs(since) if rule_of(job) == "generate_shard"]
        if generation and all(job["State"] == "FAILED" for job in generation):
            break
        time.sleep(1)
    assert len(generation) == 1 and generation[0]["State"] == "FAILED", generation
    assert "gres/gpu=1" in generation[0]["AllocTRES"], generation
    log = (tmp_path / "results" / "tiny" / "logs" / "generate_shard-0.log").read_text()
    assert "model.device is 'gpu', but the installed vLLM is its CPU build" in log
    assert not list((tmp_path / "results" / "tiny").glob("shards/*.parquet"))


def dry_run_jobs(output: str) -> list[dict]:
    """Jobs of a `snakemake --dry-run` printout: rule, wildcards, threads and resources of each."""
    jobs = []
    for block in re.split(r"\n(?=\[.*\]\n(?:local)?rule )", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.MULTILINE)
        if rule is None or rule.group(1) == "all":
            continue
        resources = re.search(r"^    resources: (.*)$", block, re.MULTILINE)
        wildcards = re.search(r"^    wildcards: (.*)$", block, re.MULTILINE)
        threads = re.search(r"^    threads: (\d+)$", block, re.MULTILINE)
        jobs.append(
            {
                "rule": rule.group(1),
                "wildcards": dict(item.split("=", 1) for item in wildcards.group(1).split(", ")) if wildcards else {},
                "threads": int(threads.group(1)) if threads else 1,
                "resources": dict(item.split("=", 1) for item in resources.group(1).split(", ")) if resources else {},
            }
        )
    return jobs


def plan_paper(workdir: Path, env: dict[str, str]) -> list[dict]:
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    # a dry run caps threads at --cores (1 when unset); a real SLURM run does not
    completed = run_snakemake(workdir, config, "--dry-run", "--cores", "64", profile="slurm", env=env, timeout=300)
    return dry_run_jobs(completed.stdout)


def test_paper_config_plans_gpu_jobs_for_slurm(tmp_path):
    env = ACCOUNT_AND_PARTITION | {"SBATCH_GPU_PARTITION": "gpu"}
    jobs = plan_paper(tmp_path, env)
    counts = collections.Counter(job["rule"] for job in jobs)
    assert counts == {
        "describe_model": 1,
        "generate_shard": 4,
        "collect_generations": 1,
        "collect_embeddings": 2,
        "score_stories": 1,
        "summarise_scores": 1,
        "study_tables": 1,
        "plot_figures": 1,
        "frontier": 1,
        "build_report": 1,
        "track_mlflow": 1,
    }  # (the study had people, no judge)
    # the shards embed their own stories: gathering the embeddings is a CPU job like the rest
    model_jobs = [job for job in jobs if job["rule"] in ("generate_shard", "judge_stories")]
    assert len(model_jobs) == 4
    for job in model_jobs:  # tensor parallel 4: four GPUs, one task, 4 CPUs per GPU, on the GPU partition
        resources = job["resources"]
        assert resources["gpu"] == "4" and resources["tasks_per_gpu"] == "0" and job["threads"] == 16, job
        assert resources["mem_mb"] == "72000" and resources["runtime"] == "120", job
        assert resources["slurm_partition"] == "gpu" and resources["slurm_account"] == "root", job
    assert sorted(job["wildcards"]["shard"] for job in jobs if job["rule"] == "generate_shard") == ["0", "1", "2", "3"]
    cpu_jobs = [job for job in jobs if job not in model_jobs]
    for job in cpu_jobs:  # scoring, statistics and report: no GPU, the CPU partition
        assert job["resources"].get("gpu", "0") == "0", job
        assert job["resources"]["slurm_partition"] == "debug" and job["resources"]["slurm_account"] == "root", job
        assert int(job["resources"]["mem_mb"]) <= 8000 and "runtime" in job["resources"], job


def test_account_and_partition_are_left_to_slurm_when_not_given(tmp_path):
    env = {name: "" for name in ("SBATCH_ACCOUNT", "SBATCH_PARTITION", "SBATCH_GPU_PARTITION")}
    jobs = plan_paper(tmp_path, env)
    generation = next(job for job in jobs if job["rule"] == "generate_shard")
    assert "slurm_account" not in generation["resources"] and "slurm_partition" not in generation["resources"]
    assert generation["resources"]["gpu"] == "4"


def test_a_cpu_job_without_cores_asks_for_no_more_cpus_than_a_node_has(slurm_cluster):
    """Without --cores a vLLM job on the CPU asked for 8 CPUs and, on smaller nodes, pended forever
    (PartitionConfig). It now asks for at most the largest node's CPUs, read from sinfo."""
    from tempcreativity.cluster import DEFAULT_ENGINE_CPUS, cluster_engine_cpus, largest_node_cpus

    node_cpus = int(subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True).stdout.split()[0])
    largest_node_cpus.cache_clear()  # (read once per process: an earlier test may have read it before SLURM was up)
    assert largest_node_cpus() == node_cpus
    assert cluster_engine_cpus() == min(DEFAULT_ENGINE_CPUS, node_cpus)
