"""Search spaces of hyperparameter optimisation: the agent's ``sample_parameters(trial)`` or a config's
declarative ``search_space``, asked of an Optuna trial, checked before any trial runs, and turned into
the finite grid the grid sampler walks.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rlpipe.agents.base import Agent

Dimension = Mapping[str, Any]  # one entry of a config's search_space (see the schema's search_dimension)


def check_dimension(dimension: Dimension) -> list[str]:
    """Problems of one dimension that the schema cannot express (bounds, log scale, step)."""
    if dimension["type"] == "categorical":
        return []
    low, high, log, step = dimension["low"], dimension["high"], dimension.get("log", False), dimension.get("step")
    problems = []
    if low > high:
        problems.append(f"low ({low}) is above high ({high})")
    if log and low <= 0:
        problems.append(f"log scale needs low > 0, got {low}")
    if log and step is not None and not (dimension["type"] == "int" and step == 1):
        problems.append("log and step cannot be combined (Optuna samples a log scale continuously)")
    return problems


def grid_problems(search_space: Mapping[str, Dimension] | None) -> list[str]:
    """Why ``search_space`` has no finite grid for the grid sampler (empty if it has one)."""
    if not search_space:
        return ["search_space: the grid sampler needs a search_space (its grid is built from it)"]
    return [f"search_space.{name}: the grid sampler needs a 'step' for float parameters"
            for name, dimension in search_space.items() if dimension["type"] == "float" and "step" not in dimension]


def grid_values(search_space: Mapping[str, Dimension]) -> dict[str, list[Any]]:
    """Every value of every dimension: categorical choices, int and float ranges walked by their step."""
    grid = {}
    for name, dimension in search_space.items():
        if dimension["type"] == "categorical":
            grid[name] = list(dimension["choices"])
        elif dimension["type"] == "int":
            grid[name] = list(range(dimension["low"], dimension["high"] + 1, dimension.get("step", 1)))
        else:
            low, high, step = dimension["low"], dimension["high"], dimension["step"]
            count = math.floor((high - low) / step + 1e-9) + 1
            grid[name] = [float(v) for v in np.round(low + step * np.arange(count), 12)]
    return grid


def suggest(trial: Any, search_space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Ask ``trial`` for a value of every dimension of a declarative search space."""
    values = {}
    for name, dimension in search_space.items():
        kind = dimension["type"]
        if kind == "categorical":
            values[name] = trial.suggest_categorical(name, list(dimension["choices"]))
        elif kind == "int":
            values[name] = trial.suggest_int(name, dimension["low"], dimension["high"],
                                             step=dimension.get("step", 1), log=dimension.get("log", False))
        else:
            values[name] = trial.suggest_float(name, dimension["low"], dimension["high"],
                                               step=dimension.get("step"), log=dimension.get("log", False))
    return values


def sample_init_kwargs(trial: Any, agent_class: type[Agent], search_space: Mapping[str, Dimension] | None) -> dict[str, Any]:
    """The init kwargs a trial tries: from ``search_space`` if given, else from ``agent_class.sample_parameters``."""
    if search_space:
        return suggest(trial, search_space)
    return dict(agent_class.sample_parameters(trial))


def defines_sample_parameters(agent_class: type[Agent]) -> bool:
    return getattr(agent_class.sample_parameters, "__func__", None) is not Agent.sample_parameters.__func__


def tuned_keys(agent_class: type[Agent], search_space: Mapping[str, Dimension] | None) -> list[str]:
    """The init kwargs a study tunes, found without a study by running the search space on probe trials
    that answer every suggestion with its lowest value or first choice, then its highest or last (so
    the keys of both sides of a simple condition are seen). The optimisation's identity leaves them
    out of the shared init_kwargs, so writing the tuned values back does not make the study look stale.
    A ``sample_parameters`` should return the same keys whatever its choices."""
    return sorted({key for probe in _probes() for key in sample_init_kwargs(probe, agent_class, search_space)})


def suggested_names(agent_class: type[Agent], search_space: Mapping[str, Dimension] | None) -> list[str]:
    """The parameter names a trial suggests (``trial.params``), which may differ from the init kwargs."""
    names: set[str] = set()
    for probe in _probes():
        sample_init_kwargs(probe, agent_class, search_space)
        names |= probe.suggested
    return sorted(names)


def _probes() -> list[_ProbeTrial]:
    return [_ProbeTrial(last=False), _ProbeTrial(last=True)]


class _ProbeTrial:
    """Just enough of ``optuna.Trial`` to run a ``sample_parameters`` and see what it suggests and returns."""

    number = 0

    def __init__(self, last: bool) -> None:
        self.last, self.suggested, self.params = last, set(), {}

    def _answer(self, name: str, value: Any) -> Any:
        self.suggested.add(name)
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return self._answer(name, high if self.last else low)

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return self._answer(name, high if self.last else low)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._answer(name, list(choices)[-1 if self.last else 0])
