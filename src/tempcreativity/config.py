"""Validate a pipeline config against its JSON schema, fill defaults, and explain what is wrong.

The schema lives with the workflow (``workflow/schemas/config.schema.yaml``); Snakemake and the tests
pass its path. Errors name the field, the bad value and what is allowed, and are raised before any job runs.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tempcreativity.errors import ConfigError
from tempcreativity.grid import MAX_STORIES, models, sampler_cells, seeds, temperatures


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


def validate_config(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults) and return it; raise ConfigError on the first problem."""
    _check_finite(config)
    given = _check_given_sections(config)
    schema = load_schema(schema_path)
    validator = _DefaultFillingValidator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(f"invalid config: {_describe(error, schema)}")
    if not isinstance(config["ratings"], dict):  # the short form: just the file
        config["ratings"] = {"file": config["ratings"], "random_effects": "auto"}
    for name in config["sweep"]:  # (filled in by the schema's defaults: a swept setting has no fixed value)
        config["decoding"].pop(name, None)
    if len(models(config)) > 1 and not given["embedders"]:
        config["scoring"]["embedders"] = ["minilm"]  # each model's own embedding is a space of its own
    _check_semantics(config)
    return config


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
        raise ConfigError("invalid config: model: 'model' is a required property (the generating model: {path: "
                          "embedded} or a Hugging Face folder or hub id), or give several under models")  # fmt: skip
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


def _looks_local(path: str) -> bool:
    """A model path written as a file-system path (a hub id is 'name' or 'org/name')."""
    return path.startswith(("/", "./", "../", "~")) or path in (".", "..")


def _check_semantics(config: dict[str, Any]) -> None:
    """What JSON schema cannot say: unique prompt ids, log grids that start at 0, vLLM's temperature floor, room
    for max_tokens in the context, the size of the grid, and a local model folder that exists."""
    ids = [prompt["id"] for prompt in config["prompts"]]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ConfigError(f"invalid config: prompts: duplicate id(s) {', '.join(duplicated)}; ids must be unique")
    spec = config["temperatures"]
    if isinstance(spec, dict) and spec.get("scale") == "log" and spec["start"] == 0:
        raise ConfigError(
            "invalid config: temperatures.start: a log-spaced grid needs start > 0. Allowed: 0 < start <= 2"
        )
    grid_models, cells = models(config), sampler_cells(config)
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
    )  # fmt: skip  (temperatures() raises below vLLM's floor)
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
        field = "model" if "model" in config else f"models[{index}]"
        if decoding["max_tokens"] >= model["max_model_len"]:
            raise ConfigError(
                f"invalid config: decoding.max_tokens: {decoding['max_tokens']} leaves no room for the prompt in "
                f"{field}.max_model_len {model['max_model_len']}; allowed: max_tokens below max_model_len (prompt "
                "tokens + max_tokens must fit in it, so that no story is cut short by the context)"
            )
        if _looks_local(model["path"]) and not Path(model["path"]).expanduser().is_dir():
            raise ConfigError(
                f"invalid config: {field}.path: the local folder {model['path']!r} does not exist; allowed: "
                '"embedded", an existing Hugging Face model folder, or a hub id such as org/name'
            )


def read_yaml(config_path: str | Path) -> dict[str, Any]:
    """One YAML config file as a mapping; a syntax error is reported with its file, line and column."""
    try:
        config = yaml.safe_load(Path(config_path).read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"invalid config: {config_path}{where}: not valid YAML ({problem})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"invalid config: {config_path} must hold a mapping of keys to values")
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
