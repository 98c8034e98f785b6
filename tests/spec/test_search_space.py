"""rlpipe.spec.search_space: declarative search spaces, their checks and grids, the parameters a trial
suggests, and the tuned keys found with probe trials."""
from __future__ import annotations

from typing import Any

import pytest

from rlpipe.agents import Agent, QLearningAgent, RandomAgent
from rlpipe.spec.search_space import (
    check_dimension,
    defines_sample_parameters,
    grid_problems,
    grid_values,
    sample_init_kwargs,
    suggest,
    suggested_names,
    tuned_keys,
)

from helpers_agents import PeakAgent
from helpers_configs import GRID_SPACE


# ---------------------------------------------------------------------------------------------- checks
@pytest.mark.parametrize(("dimension", "problems"), [
    ({"type": "categorical", "choices": ["a"]}, []),
    ({"type": "float", "low": 0.0, "high": 1.0}, []),
    ({"type": "float", "low": 1.0, "high": 1.0}, []),  # a single value
    ({"type": "float", "low": 1e-4, "high": 1.0, "log": True}, []),
    ({"type": "int", "low": 1, "high": 64, "log": True, "step": 1}, []),  # Optuna allows step 1 on a log int
    ({"type": "int", "low": 1, "high": 9, "step": 2}, []),
    ({"type": "float", "low": 2.0, "high": 1.0}, ["low (2.0) is above high (1.0)"]),
    ({"type": "int", "low": 5, "high": 1}, ["low (5) is above high (1)"]),
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, ["log scale needs low > 0, got 0.0"]),
    ({"type": "int", "low": -2, "high": 8, "log": True}, ["log scale needs low > 0, got -2"]),
    ({"type": "float", "low": 0.1, "high": 1.0, "log": True, "step": 0.1},
     ["log and step cannot be combined (Optuna samples a log scale continuously)"]),
    ({"type": "int", "low": 1, "high": 9, "log": True, "step": 2},
     ["log and step cannot be combined (Optuna samples a log scale continuously)"]),
    ({"type": "float", "low": 0.0, "high": -1.0, "log": True, "step": 0.5},
     ["low (0.0) is above high (-1.0)", "log scale needs low > 0, got 0.0",
      "log and step cannot be combined (Optuna samples a log scale continuously)"]),
])
def test_check_dimension(dimension: dict[str, Any], problems: list[str]) -> None:
    assert check_dimension(dimension) == problems


@pytest.mark.parametrize("space", [None, {}])
def test_the_grid_sampler_needs_a_search_space(space: Any) -> None:
    assert grid_problems(space) == ["search_space: the grid sampler needs a search_space (its grid is built from it)"]


def test_the_grid_sampler_needs_a_step_for_each_float() -> None:
    space = {"a": {"type": "float", "low": 0.0, "high": 1.0}, "n": {"type": "int", "low": 1, "high": 3},
             "b": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.5},
             "c": {"type": "float", "low": 0.0, "high": 1.0, "log": True},
             "k": {"type": "categorical", "choices": [1, 2]}}
    assert grid_problems(space) == ["search_space.a: the grid sampler needs a 'step' for float parameters",
                                    "search_space.c: the grid sampler needs a 'step' for float parameters"]
    assert grid_problems(GRID_SPACE) == []


# ---------------------------------------------------------------------------------------------- grids
def test_grid_values_walk_each_dimension() -> None:
    assert grid_values(GRID_SPACE) == {"x": [0.0, 0.25, 0.5], "level": ["low", "high"], "fail_above": [1, 2]}
    assert grid_values({"lr": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1}}) == {"lr": [0.1, 0.2, 0.3]}
    assert grid_values({"lr": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.25}}) == {"lr": [0.0, 0.25, 0.5]}
    assert grid_values({"n": {"type": "int", "low": 2, "high": 9, "step": 3}}) == {"n": [2, 5, 8]}


def test_grid_values_of_each_kind() -> None:
    space = {"k": {"type": "categorical", "choices": ("a", None, 2)}, "n": {"type": "int", "low": -1, "high": 2},
             "one": {"type": "float", "low": 0.5, "high": 0.5, "step": 0.1}}
    assert grid_values(space) == {"k": ["a", None, 2], "n": [-1, 0, 1, 2], "one": [0.5]}


def test_float_grid_values_are_rounded_python_floats() -> None:
    values = grid_values({"x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.1}})["x"]
    assert values == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]  # not 0.30000000000000004
    assert all(type(value) is float for value in values)
    assert grid_values({"x": {"type": "float", "low": 1e-3, "high": 3e-3, "step": 1e-3}})["x"] == [0.001, 0.002, 0.003]


# ---------------------------------------------------------------------------------------------- suggestions
class RecordingTrial:
    """A trial answering every suggestion with a fixed value and recording the call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False) -> float:
        self.calls.append(("float", name, low, high, step, log))
        return low

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self.calls.append(("int", name, low, high, step, log))
        return high

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.calls.append(("categorical", name, choices))
        return choices[-1]


def test_suggest_asks_the_trial_for_each_dimension_in_order() -> None:
    space = {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
             "clip": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
             "n": {"type": "int", "low": 2, "high": 8},
             "batch": {"type": "int", "low": 16, "high": 64, "step": 16},
             "act": {"type": "categorical", "choices": ("relu", "tanh")}}
    trial = RecordingTrial()
    assert suggest(trial, space) == {"lr": 1e-4, "clip": 0.1, "n": 8, "batch": 64, "act": "tanh"}
    assert trial.calls == [("float", "lr", 1e-4, 1e-1, None, True), ("float", "clip", 0.1, 0.3, 0.1, False),
                           ("int", "n", 2, 8, 1, False), ("int", "batch", 16, 64, 16, False),
                           ("categorical", "act", ["relu", "tanh"])]  # choices as a list


def test_sample_init_kwargs_takes_the_search_space_else_the_agents_sample_parameters() -> None:
    space = {"x": {"type": "float", "low": 0.2, "high": 0.4}}
    assert sample_init_kwargs(RecordingTrial(), PeakAgent, space) == {"x": 0.2}
    for empty in (None, {}):
        trial = RecordingTrial()
        assert sample_init_kwargs(trial, PeakAgent, empty) == {"x": -1.0, "level": "high"}
        assert [call[:2] for call in trial.calls] == [("float", "x"), ("categorical", "level")]


def test_defines_sample_parameters() -> None:
    class Plain(Agent):
        pass

    class Inherits(PeakAgent):
        pass

    assert not defines_sample_parameters(Agent) and not defines_sample_parameters(Plain)
    assert defines_sample_parameters(PeakAgent) and defines_sample_parameters(Inherits)
    assert defines_sample_parameters(QLearningAgent) and defines_sample_parameters(RandomAgent)  # even one tuning nothing
    assert tuned_keys(RandomAgent, None) == []


# ---------------------------------------------------------------------------------------------- tuned keys
def test_tuned_keys() -> None:
    assert tuned_keys(QLearningAgent, None) == ["epsilon_decay_steps", "gamma", "learning_rate"]
    assert tuned_keys(PeakAgent, None) == ["level", "x"]
    space = {"learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
             "epsilon_decay_steps": {"type": "int", "low": 10, "high": 1000, "step": 10}}
    assert tuned_keys(QLearningAgent, space) == ["epsilon_decay_steps", "learning_rate"]  # the search space wins


class ConditionalPeakAgent(PeakAgent):
    """Suggests ``x`` only on one side of a condition on ``level``."""

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        level = trial.suggest_categorical("level", ["low", "high"])
        return {"level": level, **({"x": trial.suggest_float("x", -1.0, 1.0)} if level == "high" else {})}


def test_tuned_keys_see_both_sides_of_a_condition() -> None:
    assert tuned_keys(ConditionalPeakAgent, None) == ["level", "x"]


class RenamingAgent(PeakAgent):
    """Suggests ``x10`` and passes ``x = x10 / 10``: the trial's parameter names are not the init kwargs."""

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        return {"x": trial.suggest_int("x10", -10, 10) / 10}


class ProbedAgent(PeakAgent):
    """Returns keys named after the answers it gets, to show what the probe trials answer."""

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        n = trial.suggest_int("n", 1, 5)
        x = trial.suggest_float("x", 0.25, 0.75)
        level = trial.suggest_categorical("level", ("low", "mid", "high"))
        return {f"n{n}": n, f"x{x}": x, f"level_{level}": level}


def test_suggested_names_are_the_trial_parameters_and_tuned_keys_the_init_kwargs() -> None:
    assert suggested_names(RenamingAgent, None) == ["x10"]
    assert tuned_keys(RenamingAgent, None) == ["x"]
    space = {"x": {"type": "float", "low": 0.0, "high": 1.0}, "level": {"type": "categorical", "choices": ["high"]}}
    assert suggested_names(RenamingAgent, space) == tuned_keys(RenamingAgent, space) == ["level", "x"]


def test_probe_trials_answer_the_lowest_then_the_highest_value() -> None:
    assert tuned_keys(ProbedAgent, None) == ["level_high", "level_low", "n1", "n5", "x0.25", "x0.75"]
    assert suggested_names(ProbedAgent, None) == ["level", "n", "x"]
