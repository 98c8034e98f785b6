"""The config's JSON schema: loaded once, validated with its defaults filled in, errors as one-line messages.

The schema file (``config.schema.yaml`` beside this module, linked from ``workflow/schemas``) is the one
source of the keys, types, ranges and defaults of a config; both drivers validate against it. The same
pass reports every string that YAML 1.1 read from a number written like ``1e-3``, wherever it is (free-form
kwargs included), with the spelling to use instead of the schema's "is not of type".
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from rlpipe.runtime.keywords import suggestion
from rlpipe.spec.config import misread_floats

KeyPath = tuple[str | int, ...]


@cache
def config_schema() -> dict[str, Any]:
    """The whole config schema."""
    text = resources.files("rlpipe.spec").joinpath("config.schema.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def experiment_schema() -> dict[str, Any]:
    """The schema of one experiment entry."""
    return config_schema()["$defs"]["experiment"]


def schema_defaults(key: str) -> dict[str, Any]:
    """The defaults of a mapping key of an experiment (``writer``, ``learning_curve``...) or of the config
    (``report``), as the schema states them."""
    properties = experiment_schema()["properties"]
    schema = properties[key] if key in properties else config_schema()["$defs"][key]
    return {name: spec["default"] for name, spec in schema["properties"].items() if "default" in spec}


@dataclass(frozen=True)
class SchemaCheck:
    """What the schema says of a value: ``problems``, one line each, sorted by key path, and ``rejected``, the key
    paths of the schema's errors (a misread float where the schema takes any value, in init_kwargs say, is a
    problem but rejects nothing: the semantic checks still run)."""

    problems: list[str]
    rejected: list[KeyPath]

    @property
    def rejected_experiments(self) -> set[str]:
        """Names of the experiments of a config that the schema rejects (their semantics are not checked)."""
        return {str(path[1]) for path in self.rejected if len(path) > 1 and path[0] == "experiments"}


def check_schema(instance: Any, definition: str | None = None) -> SchemaCheck:
    """Validate ``instance`` against the whole schema (or ``$defs/<definition>``), filling its defaults in place."""
    schema = config_schema() if definition is None else {"$ref": f"#/$defs/{definition}",
                                                          "$defs": config_schema()["$defs"]}
    errors = list(_validator_class()(schema).iter_errors(instance))
    lines = [(_error_sort_key(error), line) for error in errors if not _misread_float_error(error)
             for line in _format_schema_error(error)]
    lines += [((tuple(str(p) for p in path), hint), f"{_dotted(path)}: {hint}") for path, hint in misread_floats(instance)]
    lines.sort(key=lambda keyed: keyed[0])
    return SchemaCheck(problems=[line for _, line in lines], rejected=[tuple(error.absolute_path) for error in errors])


def schema_problems(instance: Any, definition: str | None = None) -> list[str]:
    """The problems of :func:`check_schema` (which fills the defaults of ``instance`` in place)."""
    return check_schema(instance, definition).problems


def section_problems(key: str, section: Any, definition: str) -> list[str]:
    """The problems of a config section checked on its own against ``$defs/<definition>`` (its defaults filled in
    place), each named as in a config, from ``key``."""
    return under(key, schema_problems(section, definition))


def under(key: str, lines: Iterable[str]) -> list[str]:
    """Problem lines of a value, named from the key that holds it ('(top level)' is the key itself)."""
    return [f"{key}:{line.removeprefix('(top level):')}" if line.startswith("(top level):") else f"{key}.{line}"
            for line in lines]


def _misread_float_error(error: Any) -> bool:
    """A type error of a string that YAML 1.1 read from a float: :func:`misread_floats` says it better."""
    return error.validator == "type" and isinstance(error.instance, str) and any(misread_floats(error.instance))


def _dotted(path: KeyPath) -> str:
    """``init_kwargs_per_instance[0].gamma``: keys dotted, list indices in brackets."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "(top level)"


@cache
def _validator_class() -> type:
    """A Draft 2020-12 validator that fills in ``default`` values while it validates."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterator[Any]:
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    # JSON Schema counts 2.0 as an integer; a budget or a count of 2.0 would break range() later.
    strict_integers = base.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, {"properties": properties_with_defaults}, type_checker=strict_integers)


def _error_sort_key(error: Any) -> tuple:
    return tuple(str(p) for p in error.absolute_path), error.message


_TYPE_NAMES = {"null": "null", "string": "a string", "object": "a mapping", "array": "a list",
               "integer": "an integer", "number": "a number", "boolean": "a boolean"}


def _format_schema_error(error: Any) -> list[str]:
    """One line per problem: the dotted key path, then what is wrong with it."""
    from jsonschema.exceptions import best_match

    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    types = _accepted_types(error)
    if types and len(types) > 1:  # a value of none of the kinds an anyOf accepts
        return [f"{where}: expected {', '.join(_TYPE_NAMES.get(t, t) for t in types[:-1])} or "
                f"{_TYPE_NAMES.get(types[-1], types[-1])}, got {error.instance!r}"]
    if error.context:  # anyOf: report the branch meant for this kind of value (a mapping, a string…)
        same_kind = [e for e in error.context if e.validator != "type"] or list(error.context)
        error = best_match(same_kind)
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        return [f"{where}: unknown key '{key}'{suggestion(key, allowed)}" for key in unknown]
    if error.validator == "required":
        missing = re.search(r"'(.+?)' is a required property", error.message)
        return [f"{where}: missing required key '{missing.group(1) if missing else error.message}'"]
    if "propertyNames" in error.relative_schema_path:
        return [f"{where}: '{error.instance}' is not a valid name (use letters, digits, '_', '-', '.')"]
    return [f"{where}: {error.message}"]


def _accepted_types(error: Any) -> list[str] | None:
    """The JSON types an anyOf accepts, when ``error`` is only that the value is of none of them."""
    if error.validator == "type":
        return [error.validator_value] if isinstance(error.validator_value, str) else list(error.validator_value)
    if error.validator != "anyOf" or not error.context:
        return None
    types: list[str] = []
    for branch in error.context:
        if branch.relative_path:  # the value has the branch's type; something inside it is wrong
            return None
        branch_types = _accepted_types(branch)
        if branch_types is None:
            return None
        types += [t for t in branch_types if t not in types]
    return types
