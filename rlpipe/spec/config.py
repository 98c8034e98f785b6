"""Config files: reading a YAML config (syntax errors with their line), merging several as Snakemake does, the
strings YAML 1.1 reads where a float was meant, and the YAML values rlpipe writes.

Validation of what a config says is ``rlpipe.spec.experiment.validate_study``.
"""
from __future__ import annotations

import copy
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlpipe.errors import ConfigError


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file, reporting syntax errors with their line."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping with an 'experiments' key")
    return data


def merge_configs(configs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Configs merged in order as Snakemake merges its config files (``snakemake.utils.update_config``): a mapping
    is merged key by key into the one before it, any other value replaces what was there. Inputs are not modified."""
    merged: dict[str, Any] = {}
    for config in configs:
        _update(merged, config)
    return merged


def _update(target: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, Mapping):
            below = target.get(key)
            target[key] = _update(below if isinstance(below, dict) else {}, value)
        else:
            target[key] = copy.deepcopy(value)
    return target


# A number in scientific notation without a dot or a sign in its exponent: YAML 1.1 (PyYAML, Snakemake) reads a string.
_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def misread_floats(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string in ``value`` (through nested mappings, lists and tuples) that YAML 1.1 read from a number written
    like ``1e-3`` or ``5e4``, as (key path, what to write instead)."""
    if isinstance(value, str):
        if _SCIENTIFIC.match(value):
            yield path, misread_float_hint(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from misread_floats(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from misread_floats(item, (*path, index))


def misread_float_hint(text: str) -> str:
    """The problem of a number ``text`` that YAML 1.1 read as a string, and how to write it: '1e-3' -> '1.0e-3'."""
    number = float(text)
    integer = f"write {int(number)} for an integer; " if number.is_integer() and abs(number) < 1e16 else ""
    return (f"'{text}' was read as a string ({integer}YAML 1.1 floats need a dot and a signed exponent: "
            f"write {yaml11_float_text(text)})")


def yaml11_float_text(text: str) -> str:
    """A decimal number ``text`` spelt so that YAML 1.1 (PyYAML, Snakemake) reads a float: a dot in the
    mantissa and a signed exponent, e.g. '5e4' -> '5.0e+4', '1e-05' -> '1.0e-05', '0.5' unchanged."""
    mantissa, e, exponent = text.lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if e and exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}{e}{exponent}"


def plain_value(value: Any, where: str) -> Any:
    """``value`` as a plain YAML- and JSON-able Python value (numpy scalars from Optuna become int/float,
    tuples lists); anything else is a ConfigError naming ``where``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [plain_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(key): plain_value(item, f"{where}.{key}") for key, item in value.items()}
    raise ConfigError(f"{where}: cannot write a value of type {type(value).__name__} to a YAML config")
