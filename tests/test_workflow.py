"""The workflow's own checks, as the snakemake-workflows catalogue runs them: format, lint, dry run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.e2e  # Snakemake subprocesses

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO)]


def test_snakefiles_are_formatted():
    snakefmt = [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"]
    completed = subprocess.run(snakefmt, cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_python_code_is_linted_and_formatted():
    """ruff check and ruff format --check (settings in pyproject.toml), as CI would run them."""
    for command in (["check", "."], ["format", "--check", "."]):
        completed = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=REPO, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr


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


def test_the_readmes_rule_graph_is_the_workflows(tmp_path):
    """The mermaid rule graph in the README has exactly the edges of `--rulegraph` with the judge and ratings on."""
    override = tmp_path / "all-rules.yaml"
    override.write_text(f"judge: {{enabled: true}}\nratings: {REPO / 'resources/peeperkorn2024/survey_ratings.csv'}\n")
    completed = subprocess.run(
        [*SNAKEMAKE, "--configfile", str(REPO / "config/config.yaml"), str(override), "--rulegraph", "mermaid-js"],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    names = dict(re.findall(r"(id\d+)\[(\w+)\]", completed.stdout))
    workflow = {(names[a], names[b]) for a, b in re.findall(r"(id\d+) --> (id\d+)", completed.stdout)}
    block = (REPO / "README.md").read_text().split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert set(re.findall(r"(\w+) --> (\w+)", block)) == workflow


def test_the_judges_job_takes_one_core_where_the_generation_job_asks_its_questions(tmp_path):
    """One shard, the judge the generating model: the generation job asks every question, so the judge's job only
    reads the answers and takes one core, beside the scores and figures. With two shards a story's exemplar may be in
    the other shard, so the judge's job may have to ask, and takes an engine's cores."""

    def judge_threads(overlay: dict) -> int:
        overlay_file = tmp_path / "overlay.yaml"
        overlay_file.write_text(yaml.safe_dump({"judge": {"enabled": True}, **overlay}))
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--dry-run",
            "--cores",
            "2",
            "--configfile",
            str(REPO / "config/config.yaml"),
            str(overlay_file),
        ]
        completed = subprocess.run(command, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stderr
        job = completed.stdout.split("rule judge_stories:\n", 1)[1].split("\n[", 1)[0]
        threads = re.search(r"^\s+threads: (\d+)$", job, flags=re.M)
        return int(threads.group(1)) if threads else 1  # Snakemake prints threads only above one

    assert judge_threads({}) == 1
    assert judge_threads({"sharding": {"shards": 2}}) == 2


def test_the_survey_is_planned_only_when_configured(tmp_path):
    """survey.enabled adds plan_human_study, whose files the report takes; off (the default), the run plans none."""

    def dry_run(overlay: dict) -> str:
        overlay_file = tmp_path / "overlay.yaml"
        overlay_file.write_text(yaml.safe_dump(overlay))
        command = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--dry-run",
            "--cores",
            "2",
            "--configfile",
            str(REPO / "config/config.yaml"),
            str(overlay_file),
        ]
        completed = subprocess.run(command, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    assert "plan_human_study" not in dry_run({}) and "survey/" not in dry_run({"survey": {"enabled": False}})
    planned = dry_run({"survey": {"enabled": True}})
    assert dict(re.findall(r"^(\w+)\s+(\d+)$", planned, flags=re.M))["plan_human_study"] == "1"
    job = planned.split("rule plan_human_study:\n", 1)[1].split("\n[", 1)[0]
    assert "results/default/generations.parquet" in job and "peeperkorn2024/survey_ratings.csv" in job
    assert "results/default/survey/forms" in job and "results/default/survey/key.csv" in job
    report = planned.split("rule build_report:\n", 1)[1].split("\n[", 1)[0]
    assert "results/default/survey/power.png" in report and "results/default/survey/power.txt" in report
    (tmp_path / "pilot.csv").write_text("")  # (a dry run reads no input)
    pilot = dry_run({"survey": {"enabled": True}, "ratings": "pilot.csv"})  # a pilot's components when given
    assert "pilot.csv" in pilot.split("rule plan_human_study:\n", 1)[1].split("\n[", 1)[0]
    study = dry_run({"survey": {"enabled": True, "components": "study"}, "ratings": "pilot.csv"})
    assert "pilot.csv" not in study.split("rule plan_human_study:\n", 1)[1].split("\n[", 1)[0]
