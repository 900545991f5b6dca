"""The workflow's own checks, as the snakemake-workflows catalogue runs them: format, lint, dry run."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO)]


def test_snakefiles_are_formatted():
    snakefmt = [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"]
    completed = subprocess.run(snakefmt, cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_lint_finds_nothing_but_the_per_rule_conda_advice():
    # One pinned environment (requirements/cpu.lock, environment.yml) serves every rule, so the advice to give
    # each rule a conda environment of its own is the only lint we accept.
    completed = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True)
    lints = set(re.findall(r"^\s+\* (.+)$", completed.stdout + completed.stderr, flags=re.M))
    assert lints <= {"Specify a conda environment or container for each rule.:"}, lints


def test_paper_config_plans_four_generation_shards():
    completed = subprocess.run(
        [*SNAKEMAKE, "--dry-run", "--configfile", str(REPO / "config/paper.yaml"), "--cores", "1"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", completed.stdout, flags=re.M))
    assert counts["generate_shard"] == "4" and counts["collect_generations"] == "1"
    assert counts["describe_model"] == "1" and "convert_embedded_model" not in counts
