"""Validate a pipeline config against its JSON schema, fill defaults, and explain what is wrong.

The schema lives with the workflow (``workflow/schemas/config.schema.yaml``); Snakemake and the tests
pass its path. Errors name the field, the bad value and what is allowed, and are raised before any job runs.
"""

from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from tempcreativity.errors import ConfigError
from tempcreativity.grid import MAX_STORIES, sampler_cells, seeds, temperatures
from tempcreativity.model import model_slug


def _extend_with_defaults(validator_class):
    """A validator that also fills each missing property with its schema default (a copy of it)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _extend_with_defaults(jsonschema.Draft202012Validator)


def load_schema(schema_path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(schema_path).read_text())


def _field_name(path) -> str:
    name = ""
    for part in path:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "(top level)"


def _describe(error: jsonschema.ValidationError, schema: dict[str, Any]) -> str:
    field = _field_name(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return f"{field}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(allowed)}"
    if error.validator == "required":
        what = error.schema.get("properties", {}).get(error.message.split("'")[1], {}).get("description")
        return f"{field}: {error.message}" + (f" ({what})" if what else "")
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{field}: {error.instance!r} is not allowed; allowed values: {allowed}"
    description = error.schema.get("description") or _parent_description(error, schema)
    message = f"{field}: {error.message}"
    return f"{message}. Allowed: {' '.join(description.split())}" if description else message


def _parent_description(error: jsonschema.ValidationError, schema: dict[str, Any]) -> str | None:
    """The description of the nearest enclosing property in the schema, for errors in oneOf branches."""
    node, found = schema, None
    for part in error.absolute_path:
        if isinstance(part, int):
            node = node.get("items", {}) if isinstance(node, dict) else {}
        else:
            node = node.get("properties", {}).get(part, {}) if isinstance(node, dict) else {}
        found = node.get("description", found) if isinstance(node, dict) else found
    return found


# A number in exponent form that YAML 1.1 (PyYAML, which Snakemake uses too) reads as text: it takes 1.0e+9 as a
# number, but 1e9, 1.0e9 and 1e+9 as strings (its floats need a dot and a signed exponent).
_EXPONENT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _as_yaml_number(text: str, integer: bool) -> str:
    """How to write ``text`` (a number in exponent form) so that YAML 1.1 reads it as a number."""
    value = float(text)
    if integer and value.is_integer():
        return str(int(value))
    mantissa, exponent = f"{value:e}".split("e")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}{'0' if mantissa.endswith('.') else ''}e{int(exponent):+d}"


def _check_numbers_read_as_text(errors: list[jsonschema.ValidationError]) -> None:
    """A number written as 1e9 reaches the schema as the string '1e9' ('not of type number'): say why, and how to
    write it."""
    pending = list(errors)
    while pending:
        error = pending.pop(0)
        pending.extend(error.context or ())
        expected = error.validator_value if error.validator == "type" else None
        expected = [expected] if isinstance(expected, str) else expected or []
        numeric = {"number", "integer"} & set(expected)
        if not numeric or not isinstance(error.instance, str) or not _EXPONENT_TEXT.fullmatch(error.instance):
            continue
        written = _as_yaml_number(error.instance, "number" not in numeric)
        raise ConfigError(
            f"invalid config: {_field_name(error.absolute_path)}: {error.instance!r} was read as text, not as a "
            f"number: YAML 1.1 (PyYAML, which Snakemake uses) reads a number in exponent form only with a dot and "
            f"a signed exponent; allowed: a number, written as {written}"
        )


def validate_config(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError on the first problem.

    The generating models come out in one form whatever the config wrote: ``models``, a list of model sections
    each with its ``id``; ``model_given`` says whether the config gave one ``model:`` instead (its id is then its
    slug, and story ids and seeds leave it out, as they always did). ``as_written`` gives the config back in the form
    it was written in. A validated config validates again unchanged."""
    if isinstance(config, dict) and "model_given" in config:  # validated before: back to the form it was written in
        written = as_written(config)
        config.clear()
        config.update(written)
    _check_templating(config)
    _check_finite(config)
    given = _check_given_sections(config)
    schema = load_schema(schema_path)
    validator = _DefaultFillingValidator(schema)
    errors = list(validator.iter_errors(config))
    _check_numbers_read_as_text(errors)
    error = jsonschema.exceptions.best_match(errors)
    if error is not None:
        raise ConfigError(f"invalid config: {_describe(error, schema)}")
    if not isinstance(config["ratings"], dict):  # the short form: just the file
        config["ratings"] = {"file": config["ratings"], "random_effects": "auto"}
    for name in config["sweep"]:  # (filled in by the schema's defaults: a swept setting has no fixed value)
        config["decoding"].pop(name, None)
    _normalise_models(config)
    if len(config["models"]) > 1 and not given["embedders"]:
        config["scoring"]["embedders"] = ["minilm"]  # each model's own embedding is a space of its own
    _check_semantics(config)
    return config


def _normalise_models(config: dict[str, Any]) -> None:
    """The one ``model:`` as ``models:`` (in place, where it stood), with the id of its slug (``smollm2-135m-instruct``
    for the embedded model), and ``model_given``: whether the config gave ``model:``."""
    given = "model" in config
    sections = [
        ("models", [{"id": model_slug(value["path"]), **value}]) if name == "model" else (name, value)
        for name, value in config.items()
    ]
    config.clear()
    config.update(sections)
    config["model_given"] = given


def as_written(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a validated config in the form its files gave, keys in their order: ``model:`` again where they
    gave one model, and no ``model_given``. What MLflow logs and keys a run by, and what the run's config.yaml
    saves, so that they stay as they were before validation normalised the models (a config that was never
    validated comes back as it is)."""
    written = {}
    for name, value in config.items():
        if name == "models" and config.get("model_given"):
            written["model"] = {key: item for key, item in value[0].items() if key != "id"}
        elif name != "model_given":
            written[name] = value
    return written


def apply_command_line(config: dict[str, Any], command_line: dict[str, Any]) -> dict[str, Any]:
    """Snakemake merges the config files of the command line into the workflow's default config, key by key. Two
    choices of a later file replace what an earlier one set instead of joining it: ``models:`` replaces ``model:``
    (and the other way round), and a setting swept under ``sweep:`` replaces the same setting fixed in
    ``decoding:``. Setting both in the command line's own files stays an error (found by validate_config)."""
    for one, other in (("models", "model"), ("model", "models")):
        if one in command_line and other not in command_line:
            config.pop(other, None)
    fixed = command_line.get("decoding") if isinstance(command_line.get("decoding"), dict) else {}
    if isinstance(command_line.get("sweep"), dict) and isinstance(config.get("decoding"), dict):
        for name in command_line["sweep"]:
            if name not in fixed:
                config["decoding"].pop(name, None)
    return config


def _check_given_sections(config: dict[str, Any]) -> dict[str, bool]:
    """What only the config as written shows (before defaults are filled): model and models together, a setting
    both fixed in decoding and swept, and whether the embedders were chosen."""
    if not isinstance(config, dict):
        return {"embedders": False}
    if "model" in config and "models" in config:
        raise ConfigError(
            "invalid config: models: given together with model; allowed: either model (one generating model) or "
            "models (a list of {id, path, ...})"
        )
    if "model" not in config and "models" not in config:
        raise ConfigError(
            "invalid config: model: 'model' is a required property (the generating model: {path: "
            "embedded} or a Hugging Face folder or hub id), or give several under models"
        )
    decoding, sweep = config.get("decoding"), config.get("sweep")
    if isinstance(decoding, dict) and isinstance(sweep, dict):
        for name in sweep:
            if name in decoding:
                raise ConfigError(
                    f"invalid config: sweep.{name}: {name} is also set in decoding.{name} ({decoding[name]!r}); "
                    f"allowed: a setting either fixed in decoding or swept in sweep, not both (remove one)"
                )
    scoring = config.get("scoring")
    return {"embedders": isinstance(scoring, dict) and "embedders" in scoring}


def _check_finite(value: Any, path: tuple = ()) -> None:
    """NaN passes every JSON-schema bound (each comparison with it is false): refuse it, and infinities, anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"invalid config: {_field_name(path)}: {value} is not a finite number; allowed: a finite number"
        )
    if isinstance(value, dict):
        for name, item in value.items():
            _check_finite(item, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, (*path, index))


YTE_KEY = "__use_yte__"


def _check_templating(config: Any) -> None:
    """Refuse Snakemake's YAML templating (``__use_yte__: true`` makes Snakemake evaluate Python expressions written
    in the config file, code that nobody asked to run)."""
    if isinstance(config, dict) and YTE_KEY in config:
        raise ConfigError(
            f"invalid config: {YTE_KEY}: found {config[YTE_KEY]!r}; a config file may not use Snakemake's YAML "
            "templating (yte), which runs the Python expressions written in it; allowed: plain YAML values (remove "
            f"the {YTE_KEY} key and write the values out)"
        )


# The stores MLflow takes a tracking URI for; file: is its old file store (a local folder), which MLflow 3 opens only
# with MLFLOW_ALLOW_FILE_STORE=true.
MLFLOW_SCHEMES = ("http", "https", "sqlite", "file", "postgresql", "mysql", "mssql", "databricks")
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
TRACKING_URIS_ALLOWED = (
    "allowed: http://host:port or https://host/path (a tracking server), sqlite:////absolute/path/mlflow.db, "
    "postgresql://..., mysql://..., mssql://..., databricks, file:///absolute/folder (MLflow's file store, with "
    "MLFLOW_ALLOW_FILE_STORE=true), or null (the MLFLOW_TRACKING_URI environment variable, else results/mlflow.db)"
)


def _check_tracking_uri(uri: str | None) -> None:
    """A malformed ``mlflow.tracking_uri`` used to reach MLflow, whose message for it is that its file store is in
    maintenance mode; say what is wrong here instead, before any job runs."""
    if uri is None or uri == "databricks":
        return
    field, allowed = "invalid config: mlflow.tracking_uri", TRACKING_URIS_ALLOWED
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme:
        typo = re.match(r"(https?)//(.+)", uri)
        hint = f" (did you mean {typo.group(1)}://{typo.group(2)}?)" if typo else ""
        raise ConfigError(f"{field}: {uri!r} has no scheme{hint}; {allowed}")
    if scheme not in MLFLOW_SCHEMES:
        raise ConfigError(f"{field}: {uri!r} has the scheme {scheme!r}, which is no MLflow tracking store; {allowed}")
    if scheme in ("http", "https") and (not parts.hostname or any(character.isspace() for character in uri)):
        raise ConfigError(f"{field}: {uri!r} names no host (or holds spaces); {allowed}")
    if scheme == "file" and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        raise ConfigError(
            f"{field}: {uri!r} is MLflow's file store, which MLflow 3 opens only with MLFLOW_ALLOW_FILE_STORE=true "
            f"(it is in maintenance mode); {allowed}"
        )
    if scheme in ("sqlite", "file"):
        _check_store_path(uri, scheme, parts)


def _check_store_path(uri: str, scheme: str, parts) -> None:
    """A sqlite: or file: tracking URI must name a path where a store can be: absolute for file:, not on a kernel
    file system (/proc, /sys, /dev), a database file that is not a folder, and folders above it that are folders."""
    field, allowed = "invalid config: mlflow.tracking_uri", TRACKING_URIS_ALLOWED
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{field}: {uri!r} names a host ({parts.netloc}); a file: URI is a local folder; {allowed}"
            )
        path = parts.path
    else:  # sqlite:///relative.db, sqlite:////absolute.db; sqlite:// alone is an in-memory store, lost at exit
        path = uri.split(":///", 1)[1] if ":///" in uri else ""
    if not path or (scheme == "file" and not path.startswith("/")):
        raise ConfigError(f"{field}: {uri!r} names no {'absolute ' if scheme == 'file' else ''}path; {allowed}")
    store = Path(os.path.abspath(path))
    for root in PSEUDO_FILESYSTEMS:
        if store == Path(root) or Path(root) in store.parents:
            raise ConfigError(
                f"{field}: {uri!r} is under {root}, a kernel file system that cannot hold a tracking store; {allowed}"
            )
    if scheme == "sqlite" and store.is_dir():
        raise ConfigError(f"{field}: {uri!r}: {store} is a folder; a sqlite: URI names the database file; {allowed}")
    folder = store if scheme == "file" else store.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{field}: {uri!r}: {existing} is a file, where the store needs the folder {folder}; {allowed}"
        )


def _check_model_folders(config: dict[str, Any], grid_models: list[dict[str, Any]]) -> None:
    """Every local model folder (the generating models' and the judge's) must be one a run can load: a folder, not a
    file, with config.json and a tokenizer, and no code of its own unless its entry trusts it."""
    from tempcreativity.model import EMBEDDED, check_model_folder, trusts_remote_code

    for index, model in enumerate(grid_models):
        field = "model" if config["model_given"] else f"models[{index}]"
        if "trust_remote_code" in model.get("engine_args", {}):
            found = model["engine_args"]["trust_remote_code"]
            raise ConfigError(
                f"invalid config: {field}.engine_args.trust_remote_code: found {found!r}; allowed: not set here (set "
                f"{field}.trust_remote_code: true to let the model run its own code)"
            )
        path = model["path"]
        if path != EMBEDDED and (_looks_local(path) or Path(path).expanduser().exists()):
            check_model_folder(path, f"{field}.path", trusts_remote_code(model))
    judge = config["judge"]
    if judge["model"] and judge["model"] != EMBEDDED and judge["model"] not in [m["path"] for m in grid_models]:
        if _looks_local(judge["model"]) or Path(judge["model"]).expanduser().exists():
            check_model_folder(
                judge["model"], "judge.model", trusts_remote_code(judge), trust_field="judge.trust_remote_code"
            )


def _looks_local(path: str) -> bool:
    """A model path written as a file-system path (a hub id is 'name' or 'org/name')."""
    return path.startswith(("/", "./", "../", "~")) or path in (".", "..")


def _check_semantics(config: dict[str, Any]) -> None:
    """What JSON schema cannot say: unique prompt ids, log grids that start at 0, vLLM's temperature floor, room
    for max_tokens in the context, the size of the grid, a survey the grid can supply, and a local model folder that
    exists."""
    ids = [prompt["id"] for prompt in config["prompts"]]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"invalid config: prompts: duplicate id(s) {', '.join(duplicated)}; ids must be unique")
    spec = config["temperatures"]
    if isinstance(spec, dict) and spec.get("scale") == "log" and spec["start"] == 0:
        raise ConfigError(
            "invalid config: temperatures.start: a log-spaced grid needs start > 0. Allowed: 0 < start <= 2"
        )
    grid_models, cells = config["models"], sampler_cells(config)
    ids = [model["id"] for model in grid_models]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"invalid config: models: duplicate id(s) {', '.join(duplicated)}; ids must be unique")
    if len(grid_models) > 1 and "model" in config["scoring"]["embedders"]:
        raise ConfigError(
            "invalid config: scoring.embedders: 'model' embeds each story with its own generating model, whose "
            "vectors cannot be compared across models; allowed with several models: [minilm]"
        )
    grid_size = (
        len(config["prompts"]) * len(grid_models) * len(cells) * len(temperatures(config)) * len(seeds(config))
    )  # (temperatures() raises below vLLM's floor)
    if grid_size > MAX_STORIES:
        raise ConfigError(
            f"invalid config: the grid holds {grid_size} stories (prompts x models x swept settings x temperatures "
            "x seeds); allowed: at most "
            f"{MAX_STORIES} per experiment. Run a bigger study as several experiments (one per prompt, or each with "
            "its own list of seeds): they share the cache, and each is sharded over jobs with sharding.shards"
        )
    for name, values in config["sweep"].items():  # values name cells in story ids, MLflow runs and labels
        shown = [value if isinstance(value, str) else f"{value:g}" for value in values]
        if len(set(shown)) < len(shown):
            raise ConfigError(
                f"invalid config: sweep.{name}: {values} has values that are the same to 6 significant digits "
                "(they name the cells); allowed: values that differ within their first 6 significant digits"
            )
    decoding = config["decoding"]
    for cell in cells:
        if cell["truncation"] == "raw" and cell["top_p"] != 1.0:
            where = "sweep.top_p" if "top_p" in config["sweep"] else "decoding.top_p"
            raise ConfigError(
                f"invalid config: {where}: {cell['top_p']} cannot be applied before temperature in vLLM (raw top-p "
                "has no exact equivalent); allowed with truncation raw: top_p 1.0. Use truncation scaled for top-p"
            )
    for index, prompt in enumerate(config["prompts"]):
        if prompt["format"] == "raw" and prompt["system"] is not None:
            raise ConfigError(
                f"invalid config: prompts[{index}].system: a raw prompt has no system message; allowed with format "
                "raw: null (write any system text into the prompt's text)"
            )
    for index, model in enumerate(grid_models):
        field = "model" if config["model_given"] else f"models[{index}]"
        if decoding["max_tokens"] >= model["max_model_len"]:
            raise ConfigError(
                f"invalid config: decoding.max_tokens: {decoding['max_tokens']} leaves no room for the prompt in "
                f"{field}.max_model_len {model['max_model_len']}; allowed: max_tokens below max_model_len (prompt "
                "tokens + max_tokens must fit in it, so that no story is cut short by the context)"
            )
    _check_survey(config, len(grid_models) * len(cells))
    _check_model_folders(config, grid_models)
    _check_tracking_uri(config["mlflow"]["tracking_uri"])


def _check_survey(config: dict[str, Any], samplers: int) -> None:
    """A planned survey the run's grid can supply (checked only where survey.enabled): two temperatures or more,
    enough stories per temperature and sampler, and enough ratings to link every rater and story."""
    survey = config["survey"]
    if not survey["enabled"]:
        return
    count = len(temperatures(config))
    if count < 2:
        raise ConfigError(
            f"invalid config: survey.enabled: the grid has {count} temperature; allowed with a survey: at least two "
            "temperatures (its power is that of the temperature effect)"
        )
    per_stratum = len(config["prompts"]) * len(seeds(config))
    if survey["stories_per_temperature"] > per_stratum:
        raise ConfigError(
            f"invalid config: survey.stories_per_temperature: {survey['stories_per_temperature']}, but each "
            f"temperature{' and sampler' if samplers > 1 else ''} has {per_stratum} stories (prompts x seeds); "
            f"allowed: at most {per_stratum} (or more seeds)"
        )
    stories = samplers * count * survey["stories_per_temperature"]
    participants, width = survey["participants"], survey["stories_per_participant"]
    if width > stories:
        raise ConfigError(
            f"invalid config: survey.stories_per_participant: {width}, but the survey has {stories} stories "
            f"(stories_per_temperature x temperatures{' x samplers' if samplers > 1 else ''}); allowed: at most "
            f"{stories}"
        )
    if participants * width < stories + participants - 1:
        raise ConfigError(
            f"invalid config: survey.participants x survey.stories_per_participant: {participants} x {width} = "
            f"{participants * width} ratings cannot link {participants} raters and {stories} stories (that takes at "
            f"least {stories + participants - 1}); allowed: more participants or stories per participant, or fewer "
            "stories_per_temperature"
        )


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one YAML mapping."""

    def __init__(self, key: Any, first: yaml.Mark, again: yaml.Mark):
        super().__init__(f"key {key!r} given twice")
        self.key, self.first, self.again = key, first, again


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently). Keys
    brought in by a merge (``<<: *anchor``) may be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], key_node.start_mark)
            except TypeError:  # an unhashable key: the base loader reports it
                continue
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep)


def read_yaml(config_path: str | Path) -> dict[str, Any]:
    """One YAML config file as a mapping; a syntax error is reported with its file, line and column, a key given
    twice in one mapping with both lines, and Snakemake's code-running templating (``__use_yte__``) is refused."""
    try:
        config = yaml.load(Path(config_path).read_text(), Loader=UniqueKeyLoader) or {}
    except _DuplicateKey as error:
        raise ConfigError(
            f"invalid config: {config_path}, line {error.again.line + 1}: key {error.key!r} is given twice in the "
            f"same mapping (first on line {error.first.line + 1}); allowed: each key once (YAML readers would "
            "silently keep the last one)"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"invalid config: {config_path}{where}: not valid YAML ({problem})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"invalid config: {config_path} must hold a mapping of keys to values")
    try:
        _check_templating(config)
    except ConfigError as error:
        raise ConfigError(str(error).replace("invalid config: ", f"invalid config: {config_path}: ", 1)) from None
    return config


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` key by key, nested mappings merged, as Snakemake merges --configfile files."""
    merged = dict(base)
    for name, value in override.items():
        both_mappings = isinstance(value, dict) and isinstance(merged.get(name), dict)
        merged[name] = merge(merged[name], value) if both_mappings else value
    return merged


def load_config(config_path: str | Path, schema_path: str | Path, *overrides: str | Path) -> dict[str, Any]:
    """Read a YAML config file, lay any override files over it (as Snakemake's --configfile does), and validate
    the result (the tests, the standalone tools and `make run`'s check use this)."""
    command_line: dict[str, Any] = {}
    for override in overrides:
        command_line = merge(command_line, read_yaml(override))
    config = apply_command_line(merge(read_yaml(config_path), command_line), command_line)
    return validate_config(config, schema_path)
