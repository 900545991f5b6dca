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
from tempcreativity.grid import MAX_STORIES, seeds, temperatures


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
    schema = load_schema(schema_path)
    validator = _DefaultFillingValidator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(f"invalid config: {_describe(error, schema)}")
    if not isinstance(config["ratings"], dict):  # the short form: just the file
        config["ratings"] = {"file": config["ratings"], "random_effects": "auto"}
    _check_semantics(config)
    return config


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
    grid_size = len(config["prompts"]) * len(temperatures(config)) * len(seeds(config))  # raises below vLLM's floor
    if grid_size > MAX_STORIES:
        raise ConfigError(
            f"invalid config: the grid holds {grid_size} stories (prompts x temperatures x seeds); allowed: at most "
            f"{MAX_STORIES} per experiment. Run a bigger study as several experiments (one per prompt, or each with "
            "its own list of seeds): they share the cache, and each is sharded over jobs with sharding.shards"
        )
    model, decoding = config["model"], config["decoding"]
    if decoding["truncation"] == "raw" and decoding["top_p"] != 1.0:
        raise ConfigError(
            f"invalid config: decoding.top_p: {decoding['top_p']} cannot be applied before temperature in vLLM "
            "(raw top-p has no exact equivalent); allowed with decoding.truncation raw: top_p 1.0. Use truncation "
            "scaled for top-p"
        )
    for index, prompt in enumerate(config["prompts"]):
        if prompt["format"] == "raw" and prompt["system"] is not None:
            raise ConfigError(
                f"invalid config: prompts[{index}].system: a raw prompt has no system message; allowed with format "
                "raw: null (write any system text into the prompt's text)"
            )
    if decoding["max_tokens"] >= model["max_model_len"]:
        raise ConfigError(
            f"invalid config: decoding.max_tokens: {decoding['max_tokens']} leaves no room for the prompt in "
            f"model.max_model_len {model['max_model_len']}; allowed: max_tokens below max_model_len (prompt tokens "
            "+ max_tokens must fit in it, so that no story is cut short by the context)"
        )
    if _looks_local(model["path"]) and not Path(model["path"]).expanduser().is_dir():
        raise ConfigError(
            f'invalid config: model.path: the local folder {model["path"]!r} does not exist; allowed: "embedded", '
            "an existing Hugging Face model folder, or a hub id such as org/name"
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
    config = read_yaml(config_path)
    for override in overrides:
        config = merge(config, read_yaml(override))
    return validate_config(config, schema_path)
