"""Config parsing, defaults, and every validation error (each must name the field and what is allowed)."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO, SCHEMA
from tempcreativity.config import ConfigError, as_written, load_config, validate_config

MINIMAL = {"experiment": "x", "model": {"path": "embedded"}}


def validated(**changes):
    config = copy.deepcopy(MINIMAL)
    config.update(changes)
    return validate_config(config, SCHEMA)


def test_minimal_config_gets_the_study_defaults():
    config = validated()
    assert config["temperatures"] == [0.01, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0]
    assert config["seeds"] == 10
    assert config["prompts"] == [
        {"id": "story", "text": "Write a story.", "system": None, "assistant_prefix": "", "format": "chat"}
    ]
    assert config["decoding"] == {
        "top_k": 50,
        "top_p": 1.0,
        "min_p": 0.0,
        "max_tokens": 256,
        "repetition_penalty": 1.0,
        "truncation": "scaled",
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "stop": [],
    }
    assert (
        config["models"]
        == [
            {
                "id": "smollm2-135m-instruct",
                "path": "embedded",
                "dtype": "float32",
                "max_model_len": 2048,
                "tensor_parallel_size": 1,
                "device": "auto",
                "engine_args": {},
            }
        ]
        and config["model_given"]
        and "model" not in config
    )
    assert config["sharding"] == {"shards": 1}
    assert config["scoring"] == {
        "embedders": ["minilm", "model"],
        "bootstrap_resamples": 2000,
        "examples_per_temperature": 2,
        "model_embedder": {"pooling": "mean", "normalise": True},
    }
    assert config["ratings"] == {"file": None, "random_effects": "auto"}
    assert config["mlflow"] == {"enabled": True, "tracking_uri": None}
    assert config["judge"] == {
        "enabled": False,
        "model": None,
        "method": "expected",
        "samples": 3,
        "temperature": 1.0,
        "max_story_tokens": 1024,
    }
    assert config["seeding"] == "independent"
    assert config["survey"] == {
        "enabled": False,
        "participants": 36,
        "stories_per_participant": 5,
        "stories_per_temperature": 5,
        "seed": 0,
        "title": "Rate short stories",
        "components": "auto",
        "power": {
            "participants": [20, 40, 80, 160],
            "stories_per_participant": [5, 10],
            "replicates": 200,
            "alpha": 0.05,
            "target": 0.8,
        },
    }


def test_a_survey_is_checked_against_the_grid_only_when_enabled():
    assert validated(survey={"stories_per_temperature": 50}, temperatures=[1.0])["survey"]["enabled"] is False
    config = validated(
        survey={"enabled": True, "participants": 6, "stories_per_participant": 3, "stories_per_temperature": 2},
        temperatures=[0.5, 1.0, 1.5],
        seeds=2,
    )
    assert config["survey"]["power"]["replicates"] == 200


def test_ratings_file_alone_is_the_short_form():
    assert validated(ratings="people.csv")["ratings"] == {"file": "people.csv", "random_effects": "auto"}
    assert validated(ratings={"file": "p.csv", "random_effects": "crossed"})["ratings"]["random_effects"] == "crossed"


def test_partial_sections_are_completed_with_defaults():
    config = validated(decoding={"max_tokens": 32}, prompts=[{"id": "a", "text": "Write."}])
    assert config["decoding"]["top_k"] == 50 and config["decoding"]["max_tokens"] == 32
    assert config["prompts"][0]["assistant_prefix"] == "" and config["prompts"][0]["system"] is None


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "paper-cpu.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(REPO / "config" / name, SCHEMA)
    assert config["decoding"]["top_k"] == 50 and config["decoding"]["top_p"] == 1.0


def test_the_benchmark_grid_is_the_issues_225_stories():
    from tempcreativity.grid import expand_grid

    config = load_config(REPO / "config/config.yaml", SCHEMA, REPO / "benchmarks/grid-225.yaml")
    assert len(expand_grid(config)) == 7 * 32 + 1 and config["decoding"]["max_tokens"] == 128
    assert config["models"][0]["dtype"] == "float32", "the default dtype, as the benchmark's rows say"


@pytest.mark.parametrize("name", ["paper.yaml", "paper-cpu.yaml"])
def test_paper_configs_are_the_studys_experiment(name):
    """scripts/temperatures.py of the study: llm(prompt, temperature=t, top_k=50, top_p=1.0, repeat_penalty=1.0,
    stop=["user", "system"], max_tokens=4096), llama-cpp-python 0.2.32's default min_p 0.05 before temperature."""
    config = load_config(REPO / "config" / name, SCHEMA)
    prompt = config["prompts"][0]
    assert (prompt["format"], prompt["text"] + prompt["assistant_prefix"]) == (
        "raw",
        "[INST]Write a story.[/INST]Here it is:\n\n",
    )
    assert prompt["system"] is None
    decoding = config["decoding"]
    assert (decoding["top_k"], decoding["top_p"], decoding["min_p"], decoding["truncation"]) == (50, 1.0, 0.05, "raw")
    assert decoding["stop"] == ["user", "system"] and decoding["repetition_penalty"] == 1.0
    assert config["scoring"]["embedders"][0] == "model"  # the study's embedding drives cosine, diversity and PCA
    assert config["scoring"]["model_embedder"] == {"pooling": "last", "normalise": False}
    assert config["temperatures"] == [0.01, 0.334, 0.667, 1.0, 1.334, 1.667, 2.0]
    if name == "paper.yaml":
        assert config["seeds"] == 100 and decoding["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"foo": 1}, ["unknown key", "'foo'", "allowed keys", "temperatures"]),
        ({"model": {"path": "embedded", "gpu": 1}}, ["model", "'gpu'", "allowed keys", "dtype"]),
        ({"model": {"dtype": "bfloat16"}}, ["model", "'path' is a required property"]),
        ({"model": {"path": "embedded", "dtype": "float8"}}, ["model.dtype", "float8", "bfloat16, float16"]),
        ({"model": {"path": "embedded", "device": "cuda"}}, ["model.device", "cuda", "auto, cpu, gpu"]),
        ({"temperatures": [0.5, 2.5]}, ["temperatures[1]", "2.5", "maximum of 2", "[0, 2]"]),
        ({"temperatures": [-0.1]}, ["temperatures[0]", "-0.1", "minimum of 0"]),
        ({"temperatures": [0.001]}, ["temperatures", "0.001", "0.01"]),
        ({"temperatures": []}, ["temperatures", "[0, 2]"]),
        ({"temperatures": {"start": 0, "stop": 3, "num": 4}}, ["temperatures.stop", "3", "maximum of 2"]),
        ({"temperatures": {"start": 0, "stop": 2, "num": 4, "scale": "log"}}, ["temperatures.start", "log"]),
        ({"temperatures": {"start": 0.001, "stop": 2, "num": 4, "decimals": 3}}, ["0.001", "0.01"]),
        ({"seeds": 0}, ["seeds", "0", "minimum of 1", "1 to 10000"]),
        ({"seeds": 10_000_000}, ["seeds", "10000000", "maximum of 10000", "several experiments"]),
        ({"seeds": [2**63]}, ["seeds[0]", str(2**63), "[0, 2^63 - 1]"]),
        (
            {"seeds": 10_000, "temperatures": {"start": 0.5, "stop": 2, "num": 11}},
            ["110000 stories", "at most 100000", "several experiments"],
        ),
        ({"temperatures": {"start": 0.5, "stop": 2, "num": 1000}}, ["temperatures.num", "1 to 201"]),
        ({"temperatures": [0.5, float("nan")]}, ["temperatures[1]", "nan", "finite number"]),
        ({"decoding": {"top_p": float("nan")}}, ["decoding.top_p", "nan", "finite number"]),
        ({"decoding": {"repetition_penalty": float("inf")}}, ["decoding.repetition_penalty", "inf", "finite"]),
        (
            {"decoding": {"max_tokens": 200}, "model": {"path": "embedded", "max_model_len": 64}},
            ["decoding.max_tokens", "200", "max_model_len 64", "below max_model_len"],
        ),
        ({"model": {"path": "/no/such/model-folder"}}, ["model.path", "/no/such/model-folder", "does not exist"]),
        ({"model": {"path": "./missing-model"}}, ["model.path", "./missing-model", "does not exist"]),
        ({"decoding": {"truncation": "raw", "top_p": 0.9}}, ["decoding.top_p", "0.9", "truncation raw: top_p 1.0"]),
        ({"decoding": {"truncation": "before"}}, ["decoding.truncation", "'before'", "scaled, raw"]),
        ({"decoding": {"stop": [""]}}, ["decoding.stop[0]", "at least one character"]),
        (
            {"prompts": [{"id": "a", "text": "x", "format": "raw", "system": "You are"}]},
            ["prompts[0].system", "raw prompt has no system message"],
        ),
        ({"prompts": [{"id": "a", "text": "x", "format": "jinja"}]}, ["prompts[0].format", "chat, raw"]),
        ({"scoring": {"model_embedder": {"pooling": "cls"}}}, ["scoring.model_embedder.pooling", "mean, last"]),
        ({"experiment": "tiny\n"}, ["experiment", "does not match", "Letters, digits"]),
        ({"prompts": [{"id": "a\n", "text": "x"}]}, ["prompts[0].id", "letters, digits"]),
        ({"seeds": [1, 1]}, ["seeds", "non-unique"]),
        ({"seeds": [-1]}, ["seeds[0]", "-1", "[0, 2^63 - 1]"]),
        ({"decoding": {"top_p": 0}}, ["decoding.top_p", "(0, 1]"]),
        ({"decoding": {"max_tokens": 0}}, ["decoding.max_tokens", "at least 1"]),
        ({"decoding": {"temperature": 1}}, ["decoding", "'temperature'", "allowed keys", "top_k"]),
        ({"prompts": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, ["prompts", "duplicate", "a"]),
        ({"prompts": [{"id": "has space", "text": "x"}]}, ["prompts[0].id", "letters, digits"]),
        ({"experiment": "a/b"}, ["experiment", "Letters, digits"]),
        ({"sharding": {"shards": 0}}, ["sharding.shards", "minimum of 1"]),
        ({"scoring": {"embedders": ["bert"]}}, ["scoring.embedders[0]", "'bert'", "minilm, model"]),
        ({"scoring": {"embedders": []}}, ["scoring.embedders", "minilm"]),
        ({"scoring": {"bootstrap_resamples": 10}}, ["scoring.bootstrap_resamples", "at least 100"]),
        ({"judge": {"participants": 3}}, ["judge", "'participants'", "allowed keys", "samples"]),
        ({"judge": {"samples": 0}}, ["judge.samples", "1 to 100"]),
        ({"judge": {"method": "vote"}}, ["judge.method", "'vote'", "expected, sample"]),
        ({"seeding": "common"}, ["seeding", "'common'", "independent, shared"]),
        ({"ratings": {"file": "p.csv", "random_effects": "story"}}, ["ratings.random_effects", "'story'", "crossed"]),
        ({"judge": {"temperature": 0}}, ["judge.temperature", "(0, 2]"]),
        ({"judge": {"enabled": "yes"}}, ["judge.enabled", "'yes'", "boolean"]),
        ({"ratings": 3}, ["ratings", "CSV"]),
        ({"sweep": {"temperature": [1.0]}}, ["sweep", "'temperature'", "allowed keys", "min_p", "top_p"]),
        ({"sweep": {"min_p": []}}, ["sweep.min_p", "min-p values"]),
        ({"sweep": {"min_p": [0.1, 1.5]}}, ["sweep.min_p[1]", "1.5", "[0, 1]"]),
        ({"sweep": {"top_p": [0.5, 0.5]}}, ["sweep.top_p", "non-unique"]),
        ({"sweep": {"min_p": [0.1234561, 0.1234564]}}, ["sweep.min_p", "same to 6 significant digits"]),
        ({"sweep": {"truncation": ["before"]}}, ["sweep.truncation[0]", "'before'", "scaled, raw"]),
        ({"decoding": {"presence_penalty": 3}}, ["decoding.presence_penalty", "3", "maximum of 2", "[-2, 2]"]),
        ({"sweep": {"frequency_penalty": [0, 5]}}, ["sweep.frequency_penalty[1]", "5", "maximum of 2", "[-2, 2]"]),
        ({"sweep": {"presence_penalty": [-2.5]}}, ["sweep.presence_penalty[0]", "-2.5", "minimum of -2", "[-2, 2]"]),
        (
            {"sweep": {"frequency_penalty": [0.0, 1.5]}, "decoding": {"frequency_penalty": 1.0}},
            ["sweep.frequency_penalty", "also set in decoding.frequency_penalty", "not both"],
        ),
        (
            {"sweep": {"min_p": [0.0, 0.1]}, "decoding": {"min_p": 0.05}},
            ["sweep.min_p", "also set in decoding.min_p", "not both"],
        ),
        ({"sweep": {"top_p": [1.0, 0.9]}, "decoding": {"truncation": "raw"}}, ["sweep.top_p", "0.9", "truncation raw"]),
        ({"models": [{"id": "a", "path": "embedded"}]}, ["models", "together with model", "either model"]),
        (
            {"seeds": 10_000, "sweep": {"min_p": [0.0, 0.1]}, "temperatures": [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]},
            ["120000 stories", "swept settings", "at most 100000"],
        ),
        ({"survey": {"enabled": True}, "temperatures": [1.0]}, ["survey.enabled", "1 temperature", "at least two"]),
        (
            {"survey": {"enabled": True, "stories_per_temperature": 11}},
            ["survey.stories_per_temperature: 11", "10 stories (prompts x seeds)", "at most 10"],
        ),
        (
            {"survey": {"enabled": True, "stories_per_temperature": 6}, "sweep": {"min_p": [0.0, 0.1]}, "seeds": 5},
            ["survey.stories_per_temperature: 6", "each temperature and sampler has 5 stories"],
        ),
        (
            {
                "survey": {"enabled": True, "stories_per_temperature": 2, "stories_per_participant": 5},
                "temperatures": [0.5, 1.0],
            },
            ["survey.stories_per_participant: 5", "4 stories", "at most 4"],
        ),
        (
            {"survey": {"enabled": True, "participants": 2}},
            ["survey.participants x survey.stories_per_participant: 2 x 5 = 10 ratings", "35 stories", "at least 36"],
        ),
        ({"survey": {"power": {"participants": [1, 20]}}}, ["survey.power.participants[0]", "at least 2"]),
        ({"survey": {"components": "pilot"}}, ["survey.components", "'pilot'", "auto, study"]),
        ({"survey": {"power": {"target": 1.0}}}, ["survey.power.target", "0.01 to 0.999"]),
        ({"survey": {"size": 3}}, ["survey", "'size'", "allowed keys", "stories_per_participant"]),
    ],
)
def test_bad_config_names_the_field_and_what_is_allowed(changes, expected):
    config = copy.deepcopy(MINIMAL)
    config.update(changes)
    with pytest.raises(ConfigError) as raised:
        validate_config(config, SCHEMA)
    message = str(raised.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


MODELS = [{"id": "a", "path": "embedded"}, {"id": "b", "path": "embedded"}]


@pytest.mark.parametrize(
    ("models", "changes", "expected"),
    [
        ([{"id": "a", "path": "embedded"}, {"id": "a", "path": "x/y"}], {}, ["models", "duplicate", "a"]),
        ([{"path": "embedded"}], {}, ["models[0]", "'id' is a required property"]),
        ([{"id": "a b", "path": "embedded"}], {}, ["models[0].id", "letters, digits"]),
        ([{"id": "a", "path": "embedded", "dtype": "int4"}], {}, ["models[0].dtype", "'int4'", "float32"]),
        (
            [{"id": "a", "path": "embedded"}, {"id": "b", "path": "/no/such/folder"}],
            {},
            ["models[1].path", "/no/such/folder", "does not exist"],
        ),
        (MODELS, {"scoring": {"embedders": ["minilm", "model"]}}, ["scoring.embedders", "'model'", "[minilm]"]),
        (
            [{"id": "a", "path": "embedded", "max_model_len": 64}],
            {"decoding": {"max_tokens": 100}},
            ["decoding.max_tokens", "models[0].max_model_len 64"],
        ),
    ],
)
def test_bad_models_name_the_model_field(models, changes, expected):
    config = {"experiment": "x", "models": models, **changes}
    with pytest.raises(ConfigError) as raised:
        validate_config(config, SCHEMA)
    for fragment in expected:
        assert fragment in str(raised.value), f"{fragment!r} not in {str(raised.value)!r}"


def test_several_models_are_embedded_with_minilm_unless_told_otherwise():
    config = validate_config({"experiment": "x", "models": copy.deepcopy(MODELS)}, SCHEMA)
    assert config["scoring"]["embedders"] == ["minilm"] and "model" not in config
    one = validate_config({"experiment": "x", "models": [{"id": "a", "path": "embedded"}]}, SCHEMA)
    assert one["scoring"]["embedders"] == ["minilm", "model"]  # one model: its own embedding as usual
    assert validate_config(copy.deepcopy(config), SCHEMA) == config  # a validated config validates again unchanged


def test_one_model_is_validated_into_the_models_form_and_written_back_as_given():
    """Code after validation reads only models; the config as written (MLflow's key and params, the run's
    config.yaml) keeps the one model: where it stood."""
    config = validate_config(
        {"experiment": "x", "model": {"path": "embedded", "dtype": "bfloat16"}, "seeds": 3}, SCHEMA
    )
    assert "model" not in config and config["model_given"] is True
    assert [(model["id"], model["dtype"]) for model in config["models"]] == [("smollm2-135m-instruct", "bfloat16")]
    written = as_written(config)
    assert list(written)[:3] == ["experiment", "model", "seeds"] and "model_given" not in written
    assert written["model"] == {
        "path": "embedded",
        "dtype": "bfloat16",
        "max_model_len": 2048,
        "tensor_parallel_size": 1,
        "device": "auto",
        "engine_args": {},
    }
    assert validate_config(copy.deepcopy(config), SCHEMA) == config  # a validated config validates again unchanged
    listed = validate_config({"experiment": "x", "models": copy.deepcopy(MODELS)}, SCHEMA)
    assert listed["model_given"] is False and as_written(listed)["models"] == listed["models"]
    assert "model_given" not in as_written(listed)


def test_a_command_line_file_replaces_the_default_files_model_and_fixed_settings(tmp_path):
    """Snakemake merges --configfile files into config/config.yaml: a file's models: replaces the default's
    model:, and a setting it sweeps replaces the default's fixed value; in one file both are an error."""
    override = tmp_path / "sweep.yaml"
    override.write_text(
        "experiment: s\nmodels: [{id: a, path: embedded}, {id: b, path: embedded}]\nsweep: {min_p: [0.0, 0.1]}\n"
    )
    config = load_config(REPO / "config" / "config.yaml", SCHEMA, override)
    assert "model" not in config and [model["id"] for model in config["models"]] == ["a", "b"]
    assert "min_p" not in config["decoding"] and config["decoding"]["top_p"] == 1.0  # top_p stays from the default
    override.write_text("experiment: s\nsweep: {min_p: [0.0, 0.1]}\ndecoding: {min_p: 0.2}\n")
    with pytest.raises(ConfigError, match="sweep.min_p: min_p is also set in decoding.min_p"):
        load_config(REPO / "config" / "config.yaml", SCHEMA, override)


@pytest.mark.parametrize("name", ["samplers.yaml", "samplers-gpu.yaml"])
def test_sampler_presets_are_valid_over_the_default_config(name):
    config = load_config(REPO / "config" / "config.yaml", SCHEMA, REPO / "config" / name)
    assert set(config["sweep"]) == {"min_p", "top_p"} and not {"min_p", "top_p"} & set(config["decoding"])
    assert config["scoring"]["embedders"] == ["minilm"]


def test_missing_model_is_reported():
    with pytest.raises(ConfigError, match="'model' is a required property"):
        validate_config({"experiment": "x"}, SCHEMA)


def test_config_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path, SCHEMA)


def test_check_config_names_the_line_of_a_yaml_error_and_merges_overrides(tmp_path, capsys):
    from tempcreativity.cli import main as cli

    schema = ["--schema", str(SCHEMA)]
    broken = tmp_path / "broken.yaml"
    broken.write_text("experiment: x\nmodel:\n  path: embedded\n prompts: [\n")
    assert cli(["check-config", str(REPO / "config" / "config.yaml"), str(broken), *schema]) == 2
    assert f"{broken}, line 4, column 2: not valid YAML" in capsys.readouterr().err
    override = tmp_path / "more-seeds.yaml"
    override.write_text("experiment: bigger\ndecoding: {max_tokens: 64}\n")
    assert cli(["check-config", str(REPO / "config" / "config.yaml"), str(override), *schema]) == 0
    assert "config ok: experiment bigger" in capsys.readouterr().out
    config = load_config(REPO / "config" / "config.yaml", SCHEMA, override)
    assert config["decoding"]["max_tokens"] == 64 and config["decoding"]["top_k"] == 50  # merged key by key
    override.write_text("seeds: .nan\n")
    assert cli(["check-config", str(REPO / "config" / "config.yaml"), str(override), *schema]) == 2
    assert "seeds" in capsys.readouterr().err


# --- hostile input, second round: numbers read as text, duplicate keys, templating, model folders, tracking URIs ---


def config_file(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("setting", "field", "written"),
    [
        ("decoding:\n  repetition_penalty: {}", "decoding.repetition_penalty", "1.0e+9"),
        ("decoding:\n  max_tokens: {}", "decoding.max_tokens", "100"),
        ("temperatures: [0.5, {}]", "temperatures[1]", "1.0e-1"),
    ],
)
def test_a_number_yaml_reads_as_text_is_named_with_how_to_write_it(tmp_path, setting, field, written):
    """`repetition_penalty: 1e9` used to be reported as "not of type 'number'": PyYAML (YAML 1.1) reads 1e9, and
    1.0e9 too, as a string. The message now says so, and gives a spelling YAML reads as that number."""
    for as_text in {"1.0e+9": ("1e9", "1.0e9", "1e+9"), "100": ("1e2",), "1.0e-1": ("1e-1",)}[written]:
        text = f"experiment: x\nmodel: {{path: embedded}}\n{setting.format(as_text)}\n"
        with pytest.raises(ConfigError) as raised:
            load_config(config_file(tmp_path, text), SCHEMA)
        message = str(raised.value)
        for fragment in (field, f"{as_text!r} was read as text, not as a number", "YAML 1.1", f"written as {written}"):
            assert fragment in message, message
    assert yaml.safe_load(f"v: {written}")["v"] == float(written)  # the advice is right: YAML reads it as that number
    assert load_config(
        config_file(tmp_path, f"experiment: x\nmodel: {{path: embedded}}\n{setting.format(written)}\n"), SCHEMA
    )


def test_a_key_given_twice_is_refused_with_its_lines(tmp_path, capsys):
    from tempcreativity.cli import main as cli

    path = config_file(tmp_path, "experiment: x\nmodel: {path: embedded}\ndecoding:\n  top_k: 3\n  top_k: 5\n")
    with pytest.raises(ConfigError, match=r"c.yaml, line 5: key 'top_k' is given twice .*first on line 4"):
        load_config(path, SCHEMA)
    assert cli(["check-config", str(path), "--schema", str(SCHEMA)]) == 2
    assert "key 'top_k' is given twice" in capsys.readouterr().err
    merged = "base: &b {top_k: 3, top_p: 1.0}\n"  # a YAML merge may override what it brings in
    assert yaml.load(
        merged + "d:\n  <<: *b\n  top_k: 5\n", Loader=__import__("tempcreativity.config").config.UniqueKeyLoader
    )["d"] == {"top_k": 5, "top_p": 1.0}


def test_snakemakes_code_running_yaml_templating_is_refused(tmp_path):
    path = config_file(tmp_path, "__use_yte__: true\nexperiment: ?f'x{1 + 1}'\nmodel: {path: embedded}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: __use_yte__: found True; .* templating \(yte\), which runs"):
        load_config(path, SCHEMA)
    with pytest.raises(ConfigError, match="__use_yte__"):
        validated(__use_yte__=False)


def model_folder(folder, config: dict | None = None, tokenizer: bool = True, **files: str):
    """A model folder of the given files (config.json and tokenizer.json unless told otherwise)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or {"model_type": "llama"}))
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    for name, text in files.items():
        (folder / name.replace("__", "/")).write_text(text)
    return folder


def test_a_model_path_that_is_a_file_or_an_empty_folder_is_refused_before_any_job(tmp_path):
    """A file used to be reported as a folder that "does not exist", and an empty folder passed check-config to
    fail 95 s into the run."""
    (tmp_path / "weights.safetensors").write_text("x")
    (tmp_path / "empty").mkdir()
    model_folder(tmp_path / "no-tokenizer", tokenizer=False)
    cases = {
        str(tmp_path / "weights.safetensors"): ["model.path", "weights.safetensors' is a file, not a folder"],
        str(tmp_path / "empty"): ["model.path", "has no config.json (found nothing: it is empty)"],
        str(tmp_path / "no-tokenizer"): ["model.path", "has no tokenizer file", "tokenizer.json"],
    }
    for path, expected in cases.items():
        with pytest.raises(ConfigError) as raised:
            validated(model={"path": path})
        for fragment in expected:
            assert fragment in str(raised.value), str(raised.value)
    assert validated(model={"path": str(model_folder(tmp_path / "good"))})


@pytest.mark.parametrize(
    ("files", "config", "named"),
    [
        ({}, {"model_type": "llama", "auto_map": {"AutoModel": "modeling_x.X"}}, "config.json has an auto_map"),
        (
            {"tokenizer_config.json": '{"auto_map": {"AutoTokenizer": ["t.T", null]}}'},
            None,
            "tokenizer_config.json has an auto_map",
        ),
        ({"modeling_x.py": "import os"}, None, "holds Python code (modeling_x.py)"),
    ],
)
def test_a_model_folder_that_would_run_its_own_code_is_refused_unless_trusted(tmp_path, files, config, named):
    folder = str(model_folder(tmp_path / "m", config, **files))
    with pytest.raises(ConfigError) as raised:
        validated(model={"path": folder})
    assert "model.path" in str(raised.value) and named in str(raised.value)
    assert "model.trust_remote_code: true" in str(raised.value)
    assert validated(model={"path": folder, "trust_remote_code": True})["models"][0]["trust_remote_code"] is True
    with pytest.raises(ConfigError, match=r"models\[1\].path: .*models\[1\].trust_remote_code: true"):
        validate_config(
            {"experiment": "x", "models": [{"id": "a", "path": "embedded"}, {"id": "b", "path": folder}]}, SCHEMA
        )
    with pytest.raises(ConfigError, match=r"judge.model: .*judge.trust_remote_code: true"):
        validated(judge={"enabled": True, "model": folder})
    assert validated(judge={"enabled": True, "model": folder, "trust_remote_code": True})


def test_trust_remote_code_is_off_by_default_and_passed_to_every_loader(tmp_path, monkeypatch):
    import ast

    from tempcreativity import model as model_module
    from tempcreativity.engine import engine_arguments

    config = validated()
    assert "trust_remote_code" not in config["models"][0]  # no default written: a run's MLflow key stays as it was
    settings = config["models"][0]
    assert engine_arguments(settings, tmp_path, 10, cpu=True)["trust_remote_code"] is False
    assert engine_arguments({**settings, "trust_remote_code": True}, tmp_path, 10, cpu=True)["trust_remote_code"]
    sneaky = {**settings, "engine_args": {"trust_remote_code": True}}
    assert engine_arguments(sneaky, tmp_path, 10, cpu=True)["trust_remote_code"] is False
    with pytest.raises(ConfigError, match=r"model.engine_args.trust_remote_code: .*model.trust_remote_code: true"):
        validated(model={"path": "embedded", "engine_args": {"trust_remote_code": True}})
    # a hub id is checked once downloaded, before any engine job
    hub = model_folder(tmp_path / "hub", {"model_type": "x", "auto_map": {"AutoConfig": "c.C"}})
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: str(hub))
    with pytest.raises(ConfigError, match="config.json has an auto_map"):
        model_module.resolve_model_folder("org/remote-code-model", None)
    assert model_module.resolve_model_folder("org/remote-code-model", None, trust_remote_code=True) == hub
    # every transformers / sentence-transformers / vLLM loader in the code says trust_remote_code
    loaders = {"from_pretrained", "from_config", "SentenceTransformer", "LLM"}
    unsaid = []
    for folder in ("src", "scripts", "benchmarks"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                    keywords = {keyword.arg for keyword in node.keywords}
                    built = (
                        any(keyword.arg is None for keyword in node.keywords) and name == "LLM"
                    )  # **engine_arguments
                    if name in loaders and "trust_remote_code" not in keywords and not built:
                        unsaid.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert unsaid == []


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http//nohost", ["has no scheme", "did you mean http://nohost?"]),
        ("file:///proc/self/mlruns", ["MLflow's file store", "MLFLOW_ALLOW_FILE_STORE=true"]),
        ("sqlite:////proc/self/mlflow.db", ["is under /proc, a kernel file system"]),
        ("ftp://host/x", ["scheme 'ftp'", "no MLflow tracking store"]),
        ("http://", ["names no host"]),
    ],
)
def test_a_malformed_tracking_uri_is_refused_before_any_job(tmp_path, monkeypatch, uri, expected):
    """These used to reach MLflow, whose message was that its file store is in maintenance mode."""
    with pytest.raises(ConfigError) as raised:
        validated(mlflow={"tracking_uri": uri})
    for fragment in ["mlflow.tracking_uri", repr(uri), *expected, "sqlite:////absolute/path/mlflow.db"]:
        assert fragment in str(raised.value), str(raised.value)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    with pytest.raises(ConfigError, match="under /proc"):
        validated(mlflow={"tracking_uri": "file:///proc/self/mlruns"})
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="a-file is a file"):
        validated(mlflow={"tracking_uri": f"sqlite:///{tmp_path}/a-file/mlflow.db"})
    for good in (
        "http://127.0.0.1:5000",
        "https://mlflow.example.org/x",
        f"sqlite:///{tmp_path}/new/mlflow.db",
        "databricks",
        "postgresql://user@db/mlflow",
        None,
    ):
        assert validated(mlflow={"tracking_uri": good})
