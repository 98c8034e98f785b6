"""Config files: reading a YAML config (syntax errors with their line), and the YAML values rlpipe writes.

Validation of what a config says is ``rlpipe.spec.experiment.validate_study``.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
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
