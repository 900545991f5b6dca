"""The code digests that make Snakemake re-run a step when the library code behind it changes."""

from __future__ import annotations

import shutil

from conftest import REPO
from tempcreativity import provenance
from tempcreativity.provenance import imports_of, module_closure


def test_a_scripts_digest_covers_every_module_it_reaches():
    reached = module_closure(*imports_of(REPO / "scripts" / "generate.py"))
    assert {"embedding", "engine", "model", "cache"} <= set(reached)  # missing once: steps went stale silently
    assert {"ratings", "judge_validation"} <= set(module_closure(*imports_of(REPO / "scripts" / "build_report.py")))
    assert "model" in module_closure(*imports_of(REPO / "scripts" / "judge_stories.py"))


def test_changing_an_imported_module_changes_the_digest(tmp_path, monkeypatch):
    package = tmp_path / "tempcreativity"
    shutil.copytree(REPO / "src" / "tempcreativity", package)
    monkeypatch.setattr(provenance, "__file__", str(package / "provenance.py"))
    script = REPO / "scripts" / "generate.py"
    before = provenance.script_digest(script)
    (package / "engine.py").write_text((package / "engine.py").read_text() + "\n# changed\n")
    after_engine = provenance.script_digest(script)
    assert after_engine != before
    (package / "figures.py").write_text((package / "figures.py").read_text() + "\n# changed\n")
    assert provenance.script_digest(script) == after_engine  # figures is not behind generate
