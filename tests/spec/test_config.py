"""rlpipe.spec.config: reading a YAML config file (syntax errors with their line), the YAML 1.1 spelling of
floats that rlpipe suggests and writes, and the plain values it writes to a config."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from rlpipe.errors import ConfigError
from rlpipe.spec.config import load_config_file, plain_value, yaml11_float_text
from rlpipe.spec.experiment import validate_study

from helpers_configs import MINIMAL, config


# ---------------------------------------------------------------------------------------------- files
def test_load_config_file(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    assert load_config_file(path) == MINIMAL
    assert validate_study(load_config_file(str(path))).experiment("e").n_fit == 4


@pytest.mark.parametrize(
    "text",
    [
        "experiments:\n  e:\n    agent: x\n   train_env: y\n",  # bad indentation
        "experiments: {e: [1, 2}\n",  # unclosed bracket
        "experiments:\n\te: 1\n",  # tab
    ],
)
def test_malformed_yaml(tmp_path, text):
    path = tmp_path / "broken_config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"broken_config\.yaml is not valid YAML") as info:
        load_config_file(path)
    assert "line" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml does not exist"):
        load_config_file(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"list\.yaml: the config must be a mapping"):
        load_config_file(path)


# ---------------------------------------------------------------------------------------------- yaml 1.1 floats
def test_yaml11_message_suggests_a_float():
    with pytest.raises(ConfigError, match=r"write 1\.0e-3"):
        validate_study(config(init_kwargs={"learning_rate": "1e-3"}))


@pytest.mark.parametrize("text", ["5e4", "1.5e3"])
def test_yaml11_hint_is_a_float_in_yaml(text):
    with pytest.raises(ConfigError) as info:
        validate_study(config(init_kwargs={"learning_rate": text}))
    suggestion = re.search(r"write (\S+)\)", str(info.value)).group(1)
    assert isinstance(yaml.safe_load(f"x: {suggestion}")["x"], float)


def test_yaml11_hint_for_signed_exponent_works():
    with pytest.raises(ConfigError) as info:
        validate_study(config(init_kwargs={"learning_rate": "3e-4"}))
    suggestion = re.search(r"write (\S+)\)", str(info.value)).group(1)
    assert yaml.safe_load(f"x: {suggestion}")["x"] == 3e-4


@pytest.mark.parametrize(("text", "spelt"), [
    ("5e4", "5.0e+4"), ("1e-05", "1.0e-05"), ("3e-4", "3.0e-4"), ("1.5E3", "1.5e+3"), ("-2e3", "-2.0e+3"),
    ("+1e+2", "+1.0e+2"), (".5e3", ".5e+3"), ("1e16", "1.0e+16"), ("0.5", "0.5"), ("10", "10.0"), ("1.0", "1.0"),
])
def test_yaml11_float_text_spells_the_number_as_a_yaml11_float(text, spelt):
    assert yaml11_float_text(text) == spelt
    read = yaml.safe_load(f"x: {spelt}")["x"]
    assert isinstance(read, float) and read == float(text)  # PyYAML (YAML 1.1), as Snakemake reads the config


def test_yaml11_reads_a_float_without_dot_or_sign_as_a_string(tmp_path):
    """Why the hints exist: the same number, spelt two ways, read by load_config_file."""
    path = tmp_path / "study.yaml"
    path.write_text("experiments:\n  e:\n    init_kwargs: {plain: 5e4, spelt: 5.0e+4, small: 1e-3, ok: 1.0e-3}\n")
    assert load_config_file(path)["experiments"]["e"]["init_kwargs"] == {
        "plain": "5e4", "spelt": 50000.0, "small": "1e-3", "ok": 0.001}


# ---------------------------------------------------------------------------------------------- plain values
def test_plain_value_keeps_plain_values():
    value = {"a": None, "b": True, "c": False, "d": 3, "e": 0.5, "f": "text", "g": [1, "x"], "h": {"i": [2.5]}}
    assert plain_value(value, "init_kwargs") == value
    assert plain_value(True, "w") is True and plain_value(False, "w") is False  # not turned into 1 and 0


def test_plain_value_turns_numpy_scalars_into_python_numbers():
    converted = plain_value({"n": np.int64(3), "u": np.uint8(7), "x": np.float32(0.5), "y": np.float64(1e-5),
                             "s": np.str_("auto")}, "init_kwargs")
    assert converted == {"n": 3, "u": 7, "x": 0.5, "y": 1e-5, "s": "auto"}
    assert [type(converted[key]) for key in ("n", "u", "x", "y", "s")] == [int, int, float, float, str]


def test_plain_value_turns_tuples_into_lists_and_keys_into_strings():
    converted = plain_value({"sizes": (64, (32, np.int32(16))), 1: {2: "b"}}, "init_kwargs")
    assert converted == {"sizes": [64, [32, 16]], "1": {"2": "b"}}
    assert yaml.safe_load(yaml.safe_dump(converted)) == converted  # YAML-able as it is
    assert json.loads(json.dumps(converted)) == converted  # and JSON-able


@pytest.mark.parametrize(("value", "where", "type_name"), [
    ({"x": object()}, "init_kwargs.x", "object"),
    ({"net": [1, {2}]}, "init_kwargs.net[1]", "set"),
    ({"a": {"b": np.zeros(2)}}, "init_kwargs.a.b", "ndarray"),
    ({"f": len}, "init_kwargs.f", "builtin_function_or_method"),
])
def test_plain_value_names_where_a_value_cannot_be_written(value, where, type_name):
    with pytest.raises(ConfigError) as info:
        plain_value(value, "init_kwargs")
    assert str(info.value) == f"{where}: cannot write a value of type {type_name} to a YAML config"


def test_plain_value_turns_numpy_bools_into_python_bools():
    assert plain_value({"flag": np.bool_(True)}, "init_kwargs") == {"flag": True}
