"""The documentation stays in step with the code: every config key of the schema is in docs/config.md (and no
key the schema lost), the README stays a short front door, and every relative link in it and in docs/ resolves."""

from __future__ import annotations

import re

import yaml

from conftest import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIG_DOC = REPO / "docs" / "config.md"
README = REPO / "README.md"
KEY = re.compile(r"[a-z_]+(?:\[\])?(?:\.[a-z_]+(?:\[\])?)*")  # model.dtype, prompts[].id, temperatures.num
LINK = re.compile(r"!?\[(?:[^\]]|\\\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")  # [text](target) and ![alt](target)


def schema_key_paths(node: dict, prefix: str = "") -> set[str]:
    """Every key a config can set, as docs/config.md names it: nested keys dotted (`judge.method`), the keys of an
    array's items after `[]` (`prompts[].id`), the keys of each `oneOf` form under the same name
    (`temperatures.num`, `ratings.file`)."""
    paths: set[str] = set()
    for form in node.get("oneOf", []) + node.get("anyOf", []):
        paths |= schema_key_paths(form, prefix)
    for name, child in node.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        paths.add(path)
        paths |= schema_key_paths(child, path)
    if isinstance(node.get("items"), dict):
        paths |= schema_key_paths(node["items"], f"{prefix}[]")
    return paths


def schema_keys() -> set[str]:
    return schema_key_paths(yaml.safe_load(SCHEMA.read_text()))  # safe_load resolves the `<<: *model_properties`


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row, header and separator rows left out."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return [row for row in rows if row and row[0] not in ("key", "")]


def test_schema_keys_are_found_by_the_walk():
    """The walk reaches nested objects, array items and oneOf forms (so the next test checks what it should)."""
    keys = schema_keys()
    for key in (
        "experiment",
        "model.dtype",
        "models[].id",
        "prompts[].format",
        "temperatures.decimals",
        "scoring.model_embedder.pooling",
        "ratings.random_effects",
        "judge.method",
        "mlflow.tracking_uri",
    ):
        assert key in keys


def test_every_config_key_of_the_schema_is_documented():
    documented = set(re.findall(r"`([^`\n]+)`", CONFIG_DOC.read_text()))
    missing = sorted(schema_keys() - documented)
    assert not missing, f"config keys of {SCHEMA.name} that docs/config.md does not name (as `key`): {missing}"


def test_every_documented_config_key_is_in_the_schema():
    """A key the schema dropped leaves the docs: every backticked name in the first column of docs/config.md's tables
    is a schema key, and so is every backticked dotted name in its tables that starts with a top-level key."""
    keys = schema_keys()
    top_level = {key for key in keys if "." not in key and "[" not in key}
    unknown = set()
    for row in table_rows(CONFIG_DOC.read_text()):
        unknown |= {name for name in re.findall(r"`([^`]+)`", row[0]) if name not in keys}
        for cell in row[1:]:
            for name in re.findall(r"`([^`]+)`", cell):
                looks_like_a_key = KEY.fullmatch(name) and ("." in name or "[" in name)
                if looks_like_a_key and re.split(r"[.\[]", name)[0] in top_level and name not in keys:
                    unknown.add(name)
    assert not unknown, f"docs/config.md names config keys the schema does not have: {sorted(unknown)}"


def test_the_readme_is_a_short_front_door():
    lines = len(README.read_text().splitlines())
    assert lines < 200, f"README.md has {lines} lines: move reference text into docs/ and link it"


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as '-', repeats numbered."""
    anchors: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
            anchor, n = slug, 0
            while anchor in anchors:
                n += 1
                anchor = f"{slug}-{n}"
            anchors.add(anchor)
    return anchors


def relative_links(markdown: str) -> list[str]:
    """Link and image targets outside code blocks and code spans that are not URLs."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z][a-z0-9+.-]*:", t, flags=re.IGNORECASE)]


def test_every_relative_link_in_the_readme_and_docs_resolves():
    broken = []
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        for target in relative_links(page.read_text()):
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in github_anchors(file.read_text()):
                broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)
