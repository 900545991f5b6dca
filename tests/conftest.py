"""Shared fixtures. The end-to-end runs are session-scoped: an engine start costs 10-60 s on two cores."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

# The tiny grid of the end-to-end tests, a file a maintainer can also run by hand: 2 prompts x 3 temperatures x
# 2 seeds (+ 2 exemplars), 32 tokens, the judge on, and made-up survey ratings of its stories (.test/people.csv).
TEST_FOLDER = REPO / ".test"
TINY_CONFIG = yaml.safe_load((TEST_FOLDER / "config" / "config.yaml").read_text())


# Tests run as unit tests unless marked e2e (they start Snakemake, vLLM, an MLflow server or SLURM) or gpu:
# `make test PYTEST_ARGS="-m unit"` runs the fast ones (under a minute on 2 cores).
E2E_FIXTURES = {
    "tiny_run",
    "grown_run",
    "sharded_run",
    "slurm_run",
    "slurm_cluster",
    "study_runs",
    "mlflow_server",
    "sweep_run",
}


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)
        if not any(item.get_closest_marker(name) for name in ("e2e", "gpu")):
            item.add_marker(pytest.mark.unit)


def snakemake_command(workdir: Path, config: dict, *extra: str, profile: str = "local") -> list[str]:
    """The command that runs the repository's Snakefile in ``workdir`` with ``config`` (written to
    workdir/config.yaml), through one of the repository's profiles (by default the local one `make run` uses)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        *extra,  # first: --configfile takes every word after it
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--profile",
        str(REPO / "profiles" / profile),
        "--configfile",
        str(config_file),
    ]
    return command


def snakemake_environment(env: dict | None = None) -> dict:
    return {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"} | (env or {})


# The same grid in two generation shards (each shard one job with its own engine).
SHARDED_CONFIG = TINY_CONFIG | {"sharding": {"shards": 2}}


def run_snakemake(
    workdir: Path,
    config: dict,
    *extra: str,
    check: bool = True,
    env: dict | None = None,
    profile: str = "local",
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    """Run snakemake_command to its end; its output is kept in workdir/snakemake.out."""
    command = snakemake_command(workdir, config, *extra, profile=profile)
    environment = snakemake_environment(env)
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    (workdir / "snakemake.out").write_text(completed.stdout + completed.stderr)
    if check and completed.returncode != 0:
        raise AssertionError(f"snakemake failed ({completed.returncode}):\n{completed.stderr[-6000:]}")
    return completed


def share_converted_model(source: Path, workdir: Path) -> None:
    """Give another workdir the already-converted embedded model, so it does not convert it again."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source / "resources", workdir / "resources", symlinks=True)


def share_analysis_caches(source: Path, workdir: Path) -> None:
    """Give another run of the same stories the embedding and judge caches (not the stories': those it must
    generate itself), so its embedding and judge jobs still run but start no engine."""
    for name in ("embeddings", "judge"):
        shutil.copytree(source / "results" / "cache" / name, workdir / "results" / "cache" / name)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """The tiny grid run once from nothing (model conversion included); later tests copy from it."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    shutil.copy(TEST_FOLDER / "people.csv", workdir / "people.csv")
    run_snakemake(workdir, TINY_CONFIG)
    return workdir


@pytest.fixture(scope="session")
def grown_run(tiny_run, tmp_path_factory) -> Path:
    """A copy of the tiny run (results, cache and Snakemake's records) with one temperature added."""
    workdir = tmp_path_factory.mktemp("grown") / "run"
    shutil.copytree(tiny_run, workdir, symlinks=True)
    targets = ("results/tiny/generations.parquet", "results/tiny/embeddings/minilm.parquet")
    run_snakemake(workdir, {**TINY_CONFIG, "temperatures": [0.5, 1.0, 1.5, 2.0]}, *targets)
    return workdir


@pytest.fixture(scope="session")
def sharded_run(tiny_run, tmp_path_factory) -> Path:
    """The whole pipeline on SHARDED_CONFIG, run locally: what the SLURM run of the same config must equal."""
    workdir = tmp_path_factory.mktemp("sharded-run")
    share_converted_model(tiny_run, workdir)
    share_analysis_caches(tiny_run, workdir)
    shutil.copy(tiny_run / "people.csv", workdir / "people.csv")
    run_snakemake(workdir, SHARDED_CONFIG)
    return workdir


def sweep_config(tiny_llama: Path) -> dict:
    """Beyond temperature, as small as it gets: 2 models (the embedded one and a tiny random Llama) x 2
    temperatures x 2 min-p x 2 seeds, one prompt, 16 tokens; no judge, so quality is perplexity."""
    return {
        "experiment": "sweep",
        "models": [{"id": "smollm2", "path": "embedded"}, {"id": "tiny", "path": str(tiny_llama)}],
        "prompts": [{"id": "story", "text": "Write a story.", "assistant_prefix": "Here it is:\n\n"}],
        "temperatures": [0.7, 1.3],
        "sweep": {"min_p": [0.0, 0.1]},
        "seeds": 2,
        "decoding": {"max_tokens": 16},
        "scoring": {"bootstrap_resamples": 100},
        "judge": {"enabled": False},
    }


@pytest.fixture(scope="session")
def sweep_run(tiny_run, tmp_path_factory) -> Path:
    """sweep_config run once, with the tiny run's converted model and analysis caches (the study's stories are
    then embedded without an engine start); the tiny Llama is written into the workdir first."""
    from tiny_llama import save_tiny_llama

    workdir = tmp_path_factory.mktemp("sweep-run")
    share_converted_model(tiny_run, workdir)
    share_analysis_caches(tiny_run, workdir)
    tiny_llama = save_tiny_llama(
        workdir / "models" / "tiny-llama", workdir / "resources" / "models" / "smollm2-135m-instruct"
    )
    run_snakemake(workdir, sweep_config(tiny_llama))
    return workdir


@pytest.fixture(scope="session")
def embedded_tokenizer():
    """The embedded model's tokenizer, read straight from its GGUF file (no conversion needed)."""
    from transformers import AutoTokenizer

    from tempcreativity.model import embedded_gguf_path

    gguf = embedded_gguf_path()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium (Debian's package; `make test` installs it where it can). Missing in CI is a failure."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        message = "headless Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)

    def run(*arguments: str) -> str:
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
        ]
        try:
            completed = subprocess.run([binary, *flags, *arguments], capture_output=True, text=True, timeout=120)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        return completed.stdout

    return run


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 (sqlite backend, proxied artifacts) that tests can stop and restart."""

    def __init__(self, folder: Path):
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.folder / "artifacts"),
            "--workers",
            "1",
            "--allowed-hosts",
            f"localhost:{self.port},127.0.0.1:{self.port}",
        ]
        environment = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
        log = open(self.folder / "server.log", "a")
        self.process = subprocess.Popen(command, stdout=log, stderr=log, env=environment, start_new_session=True)
        import requests

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.uri}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError(f"mlflow server did not start:\n{(self.folder / 'server.log').read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    server.start()
    yield server
    server.stop()
