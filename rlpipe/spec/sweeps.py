"""Sweeps: a grid of experiments written once in a config (``sweeps.<sweep>``), expanded into named experiments.

A sweep holds a ``grid`` of axes and, beside it, experiment keys shared by every point of the grid. An axis is an
experiment key (``agent``, ``train_env``, ``fit_budget``...) or ``<key>.<name>``, one key of a mapping-valued
experiment key (``init_kwargs.gamma``); its values are a mapping ``{label: value}``, or a list whose labels are derived
from the values. The grid expands into the cartesian product of its axes, in the order written; each point is an
ordinary experiment named ``<sweep>-<label>-<label>...``. Nothing of the sweep goes into a task, so the seeds and
tasks of a point are those of the same experiment written out under ``experiments`` with that name.

A point's value of a mapping-valued key (``init_kwargs``, ``eval_kwargs``, ``writer``...) is merged over the shared
value one level deep: its keys replace the shared mapping's keys, a nested mapping is replaced whole. Any other value
replaces the shared one, which is why such a key cannot be both shared and an axis.

The schema check is per key, not per point (which is what a 1,000-point sweep would cost): the shared keys once, each
axis value once, each against the schema of its key. That is the whole check because the experiment schema constrains
each key on its own, besides which keys are required. What depends on the whole point (the keywords its agent
accepts, its envs) is checked per point by :func:`rlpipe.spec.experiment.validate_study`, which names the point.
"""
from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from rlpipe.runtime.keywords import suggestion
from rlpipe.spec.schema import KeyPath, check_schema, config_schema, experiment_schema

_TUNED_KEY = "optimize"
_NOT_TUNED = ("a sweep cannot be tuned: the best init_kwargs are written back into the tuned experiment's entry, which "
              "the experiments of a sweep do not have; write the point to tune under experiments: (with a name of its "
              "own) and give it its optimize section there")


@dataclass(frozen=True)
class SweepPoint:
    """Where an experiment of a sweep comes from: the sweep, and the point's label and value (as written) on each
    axis, in the grid's order."""

    sweep: str
    labels: dict[str, str]
    values: dict[str, Any]


@dataclass(frozen=True)
class Expansion:
    """The sweeps of a config expanded: the experiment entry (defaults filled in) and the :class:`SweepPoint` of each
    point whose values the schema accepts, by experiment name, and the problems found, one line each."""

    entries: dict[str, dict[str, Any]]
    points: dict[str, SweepPoint]
    problems: list[str]


@dataclass(frozen=True)
class _Choice:
    """One value of an axis: its path in the config (naming its problems), its label, the value as written and, once
    the schema accepts it, the value a point takes (defaults filled in)."""

    path: str
    label: str
    written: Any
    accepted: bool = False
    applied: Any = None


@dataclass(frozen=True)
class _Axis:
    key: str
    choices: list[_Choice]

    @property
    def top(self) -> str:
        """The experiment key the axis sets (``init_kwargs`` for ``init_kwargs.gamma``)."""
        return self.key.partition(".")[0]

    @property
    def leaf(self) -> str | None:
        """The key set inside :attr:`top` (``gamma`` for ``init_kwargs.gamma``), None for a whole experiment key."""
        return self.key.partition(".")[2] or None


def expand_sweeps(sweeps: Any, rejected: Iterable[KeyPath], experiments: Collection[str]) -> Expansion:
    """Expand and check the ``sweeps`` section of a config that has been checked against the config schema (whose
    problems are already reported; a sweep with a path in ``rejected`` is left out). ``experiments`` are the names
    written out, which no point may take. Problems are named ``sweeps.<sweep>.<key>``; the values of ``sweeps``
    receive their defaults in place."""
    if not isinstance(sweeps, dict):
        return Expansion({}, {}, [])
    skipped = {str(path[1]) for path in rejected if len(path) > 1 and path[0] == "sweeps"}
    entries: dict[str, dict[str, Any]] = {}
    points: dict[str, SweepPoint] = {}
    problems: list[str] = []
    owners = {name: f"experiments.{name}" for name in experiments}  # who holds each name so far
    for sweep, body in sweeps.items():
        if sweep in skipped:
            continue
        where = f"sweeps.{sweep}"
        shared = {key: value for key, value in body.items() if key != "grid"}
        axes, lines = _axes(where, body["grid"])
        lines += _shared_key_problems(where, shared, list(body["grid"]))
        base, axes, value_lines = _checked_values(where, shared, axes)
        problems += lines + value_lines
        if lines:  # the points are not known
            continue
        for choices in itertools.product(*(axis.choices for axis in axes)):
            name = "-".join([sweep, *(choice.label for choice in choices)])
            point = SweepPoint(sweep, {axis.key: c.label for axis, c in zip(axes, choices)},
                               {axis.key: c.written for axis, c in zip(axes, choices)})
            if name in owners:
                problems.append(f"{where}: the point {_described(point.labels)} is named '{name}', as is {owners[name]}: "
                                "change a label, or rename one")
                continue
            owners[name] = f"the point {_described(point.labels)} of {where}"
            if base is not None and all(choice.accepted for choice in choices):
                entries[name] = _entry(base, axes, choices)
                points[name] = point
    return Expansion(entries, points, problems)


def sweep_lines(points: Mapping[str, SweepPoint], n_fit: Mapping[str, int], shown: int = 20) -> list[str]:
    """What ``rlpipe validate`` prints of the sweeps: for each, a line with its numbers of experiments (by axis) and
    instances, then a line per experiment with its point, the first ``shown`` of them and a count of the others."""
    by_sweep: dict[str, list[str]] = {}
    for name, point in points.items():
        by_sweep.setdefault(point.sweep, []).append(name)
    lines = []
    for sweep, names in by_sweep.items():
        labels: dict[str, set[str]] = {}
        for name in names:
            for key, label in points[name].labels.items():
                labels.setdefault(key, set()).add(label)
        shape = " × ".join(f"{len(values)} {key}" for key, values in labels.items())
        lines.append(f"  sweep {sweep}: {len(names)} experiments ({shape}), {sum(n_fit[name] for name in names)} instances")
        lines += [f"    {name}: " + ", ".join(f"{key}={_text(value)}" for key, value in points[name].values.items())
                  for name in names[:shown]]
        if len(names) > shown:
            lines.append(f"    ... and {len(names) - shown} more")
    return lines


# ---------------------------------------------------------------------------------------------- the grid
def _axes(where: str, grid: dict[str, Any]) -> tuple[list[_Axis], list[str]]:
    """The axes of a grid, with the problems of their keys and labels."""
    if not grid:
        return [], [f"{where}.grid: is empty: give at least one axis, as key: [values] or key: {{label: value}}"]
    axes, problems = [], []
    for key, values in grid.items():
        path = f"{where}.grid.{key}"
        problem = _axis_key_problem(key)
        if problem:
            problems.append(f"{path}: {problem}")
        elif not values:
            problems.append(f"{path}: is empty: give at least one value")
        else:
            choices, lines = _choices(path, key, values)
            axes.append(_Axis(key, choices))
            problems += lines
    return axes, problems


def _axis_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an axis, or None."""
    top, dot, leaf = key.partition(".")
    if top == _TUNED_KEY:
        return _NOT_TUNED
    keys = _experiment_keys()
    if top not in keys:
        return (f"unknown axis key '{key}'{suggestion(key, keys)}; an axis is an experiment key, or <key>.<name> for "
                f"one key of {_or(_mapping_keys())}")
    if not dot:
        return None
    if top not in _mapping_keys():
        return f"{top} is not a mapping, so '{key}' names no key in it; <key>.<name> is for {_or(_mapping_keys())}"
    schema = experiment_schema()["properties"][top]
    if schema.get("additionalProperties") is False and leaf not in schema.get("properties", {}):
        return f"unknown axis key: {top} has no key '{leaf}'{suggestion(leaf, list(schema.get('properties', {})))}"
    return None


def _choices(path: str, key: str, values: Any) -> tuple[list[_Choice], list[str]]:
    """The values of an axis with their labels, and the problems of the labels."""
    given = isinstance(values, dict)
    if given:
        choices = [_Choice(f"{path}.{label}", str(label), copy.deepcopy(value)) for label, value in values.items()]
    else:
        choices = [_Choice(f"{path}[{i}]", _label(key, value), copy.deepcopy(value)) for i, value in enumerate(values)]
    problems, seen = [], {}
    fix = "give it another label" if given else "label the values yourself: write the axis as a mapping {label: value}"
    for choice in choices:
        if not choice.label:
            problems.append(f"{choice.path}: cannot derive a label from {_text(choice.written)}: write the axis as a "
                            "mapping {label: value}")
        elif not _name_pattern().fullmatch(choice.label):
            problems.append(f"{choice.path}: the label '{choice.label}' cannot be part of an experiment name (letters, "
                            f"digits, '_', '-', '.', starting with a letter or digit): {fix}")
        elif choice.label in seen:
            first, second = (where[len(path):].lstrip(".") for where in (seen[choice.label], choice.path))
            problems.append(f"{path}: the values {first} and {second} are both labelled '{choice.label}': give each "
                            "value its own label, as a mapping {label: value}")
        else:
            seen[choice.label] = choice.path
    return choices, problems


def _label(key: str, value: Any) -> str:
    """The label of a value of a list axis ('' if it has none): a number, a boolean or null as written (``none`` for
    null), after the name of the key it sets for a ``<key>.<name>`` axis (``gamma0.9``); an env's gymnasium id or the
    last component of its constructor's import path; the last component of any other string (an import path)."""
    top, _, leaf = key.partition(".")
    if value is None or isinstance(value, (bool, int, float)):
        return leaf + ("none" if value is None else json.dumps(value))
    if top in _env_keys():
        if isinstance(value, dict) and isinstance(value.get("constructor"), str):
            return _last_component(value["constructor"])
        env_id = value.get("id") if isinstance(value, dict) else value
        return env_id.rpartition(":")[2] if isinstance(env_id, str) else ""
    return _last_component(value) if isinstance(value, str) else ""


def _last_component(path: str) -> str:
    return path.rpartition(":")[2].rpartition(".")[2]


def _shared_key_problems(where: str, shared: dict[str, Any], axis_keys: list[str]) -> list[str]:
    """Shared keys that are no experiment key, that an axis would replace at every point, or missing."""
    whole = {key for key in axis_keys if "." not in key}
    problems = []
    for key in shared:
        if key == _TUNED_KEY:
            problems.append(f"{where}.{key}: {_NOT_TUNED}")
        elif key not in _experiment_keys():
            problems.append(f"{where}: unknown key '{key}'{suggestion(key, ['grid', *_experiment_keys()])}")
        elif key in whole and key not in _mapping_keys():
            problems.append(f"{where}.{key}: is also an axis of the grid, whose values replace it at every point: "
                            "remove one")
    for key in axis_keys:
        top, _, leaf = key.partition(".")
        if leaf and isinstance(shared.get(top), dict) and leaf in shared[top]:
            problems.append(f"{where}.{key}: is also an axis of the grid, whose values replace it at every point: "
                            "remove one")
    problems += [f"{where}: missing required key '{key}' (set it here for every point, or make it an axis of the grid)"
                 for key in experiment_schema().get("required", ()) if key not in shared and key not in whole]
    return problems


# ---------------------------------------------------------------------------------------------- values
def _checked_values(where: str, shared: dict[str, Any],
                    axes: list[_Axis]) -> tuple[dict[str, Any] | None, list[_Axis], list[str]]:
    """The entry every point starts from (the shared keys, and the defaults of the others but the axes that replace
    them), None if the schema rejects it; the axes with the value each choice gives a point; the schema's problems."""
    properties = experiment_schema()["properties"]
    replaced = {axis.key for axis in axes if axis.leaf is None and axis.key not in _mapping_keys()}
    base: dict[str, Any] | None = {}
    problems = []
    for key in _experiment_keys():
        schema = properties[key]
        if key in shared:
            value = shared[key]
        elif "default" in schema and key not in replaced:
            value = copy.deepcopy(schema["default"])
        else:
            continue
        check = check_schema(value, _definition(key))  # fills the defaults inside the value
        problems += _named(f"{where}.{key}", check.problems)
        if check.rejected:
            base = None
        elif base is not None:
            base[key] = value
    checked = []
    for axis in axes:
        choices = []
        for choice in axis.choices:
            choice, lines = _checked_choice(axis, choice)
            choices.append(choice)
            problems += lines
        checked.append(_Axis(axis.key, choices))
    return base, checked, problems


def _checked_choice(axis: _Axis, choice: _Choice) -> tuple[_Choice, list[str]]:
    """The choice with the value a point takes, if the schema accepts it, and the schema's problems."""
    value = copy.deepcopy(choice.written)
    if axis.leaf is None:
        schema = _definition(axis.key)
    else:
        parent = experiment_schema()["properties"][axis.top]
        if axis.leaf in parent.get("properties", {}):
            schema = _definition(axis.top, "properties", axis.leaf)
        elif isinstance(parent.get("additionalProperties"), dict):
            schema = _definition(axis.top, "additionalProperties")
        else:  # any value goes
            return _Choice(choice.path, choice.label, choice.written, True, value), []
    check = check_schema(value, schema)
    if axis.leaf is None and axis.key in _mapping_keys() and isinstance(value, dict):
        value = {key: value[key] for key in choice.written}  # merged over the shared value: no defaults of its own
    accepted = not check.rejected
    return _Choice(choice.path, choice.label, choice.written, accepted, value), _named(choice.path, check.problems)


def _entry(base: dict[str, Any], axes: list[_Axis], choices: tuple[_Choice, ...]) -> dict[str, Any]:
    """The experiment entry of a point: its values set, in the grid's order, over the shared entry."""
    entry = dict(base)
    for axis, choice in zip(axes, choices):
        if axis.leaf is not None:
            entry[axis.top] = {**entry.get(axis.top, {}), axis.leaf: choice.applied}
        elif axis.key in _mapping_keys():
            entry[axis.key] = {**entry.get(axis.key, {}), **choice.applied}
        else:
            entry[axis.key] = choice.applied
    return copy.deepcopy(entry)  # no value shared by two experiments


def _named(path: str, lines: Iterable[str]) -> list[str]:
    """Problem lines of a value named from its path, as the config's own check names them (so that a problem found by
    both, a float YAML read as a string, reads the same)."""
    return [path + line.removeprefix("(top level)") if line.startswith(("(top level):", "[")) else f"{path}.{line}"
            for line in lines]


# ---------------------------------------------------------------------------------------------- from the schema
def _definition(key: str, *below: str) -> str:
    """The schema of an experiment key (or of what is below it) as a JSON pointer under ``$defs``, which is what
    :func:`check_schema` takes as its definition."""
    return "/".join(("experiment", "properties", key, *below))


@cache
def _experiment_keys() -> list[str]:
    """The keys a sweep may share or sweep over: the experiment schema's, but optimize."""
    return [key for key in experiment_schema()["properties"] if key != _TUNED_KEY]


@cache
def _mapping_keys() -> list[str]:
    """Experiment keys whose value is a mapping: an axis value of one is merged over the shared value, and an axis
    ``<key>.<name>`` sets one of its keys."""
    return [key for key, schema in experiment_schema()["properties"].items()
            if schema.get("type") == "object" and key != _TUNED_KEY]


@cache
def _env_keys() -> list[str]:
    """Experiment keys whose value is an env spec (labelled by its gymnasium id or constructor)."""
    return [key for key, schema in experiment_schema()["properties"].items()
            if any(branch.get("$ref") == "#/$defs/env" for branch in schema.get("anyOf", ()))]


@cache
def _name_pattern() -> re.Pattern[str]:
    """What an experiment name may be (the schema's pattern), which every label must be too."""
    return re.compile(config_schema()["properties"]["experiments"]["propertyNames"]["pattern"])


def _or(keys: list[str]) -> str:
    return ", ".join(keys[:-1]) + f" or {keys[-1]}" if len(keys) > 1 else "".join(keys)


def _described(labels: Mapping[str, str]) -> str:
    return "(" + ", ".join(f"{key}={label}" for key, label in labels.items()) + ")"


def _text(value: Any) -> str:
    """A value as a config shows it: a string as it is, anything else as JSON (which YAML reads too)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)
