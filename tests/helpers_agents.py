"""Agent classes used by tests (importable as ``helpers_agents:Name`` once ``tests/`` is on sys.path).

They live in a module rather than in test files so that tasks can name them by import path, the way a
config names an agent.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from rlpipe.agents import QLearningAgent
from rlpipe.agents.base import Agent, AgentWithSimplePolicy


class FlakyQLearningAgent(QLearningAgent):
    """QLearningAgent whose ``fit`` raises once ``fail_after_calls`` calls have completed.

    The switch is a class attribute, not an init kwarg, so it is not part of the task (nor of its hash):
    a test can "interrupt" a fit and then resume the very same task with the switch off.
    """

    fail_after_calls: int | None = None
    calls = 0

    def fit(self, budget: int, **kwargs: Any) -> None:
        cls = type(self)
        if cls.fail_after_calls is not None and cls.calls >= cls.fail_after_calls:
            raise RuntimeError("simulated interruption")
        cls.calls += 1
        super().fit(budget, **kwargs)


class FailingAgent(QLearningAgent):
    """Raises in ``fit``: what a buggy user agent looks like to the pipeline."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        raise ZeroDivisionError("agent bug inside fit")


class EvalOnlyAgent(Agent):
    """An Agent with ``eval`` but no ``policy``: the evaluate stage must fall back to ``agent.eval``."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        for _ in range(int(budget)):
            self.current_observation()
            self.step_env(self.env.action_space.sample())

    def eval(self, eval_horizon: int = 10, n_simulations: int = 1, gamma: float = 1.0) -> float:
        return float(np.mean(self._eval_rng.random(n_simulations)))

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass


class PickledCounterAgent(AgentWithSimplePolicy):
    """No get_state/set_state: saved with cloudpickle. Counts the actions it took."""

    def __init__(self, env: Any, n_actions: int = 4, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.n_actions = n_actions
        self.counts = np.zeros(n_actions)

    def fit(self, budget: int, **kwargs: Any) -> None:
        for _ in range(int(budget)):
            self.current_observation()
            action = int(self.rng.integers(self.n_actions))
            self.counts[action] += 1
            self.step_env(action)

    def policy(self, observation: Any) -> int:
        return int(np.argmax(self.counts))


class PeakAgent(Agent):
    """Toy agent for hyperparameter tests, with a known optimum: ``x = 0.3`` and ``level = "high"``.

    ``fit`` only counts its budget (or raises when ``x > fail_above``, or sleeps ``fit_seconds``);
    ``eval`` returns ``fitted / 100 * (1 - (x - 0.3)**2) + bonus(level)`` plus noise of 0.01 drawn
    from the agent's seeded rng, so the score grows with training (for pruners) and a trial's
    value depends on its seeds (for replay tests).
    """

    name = "Peak"
    OPTIMUM = 0.3

    def __init__(self, env: Any, x: float = 0.0, level: str = "low", fail_above: float | None = None,
                 fit_seconds: float = 0.0, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.x, self.level, self.fail_above, self.fit_seconds = x, level, fail_above, fit_seconds
        self.fitted = 0

    def fit(self, budget: int, **kwargs: Any) -> None:
        if self.fail_above is not None and self.x > self.fail_above:
            raise ValueError(f"x={self.x:.3f} is above fail_above={self.fail_above}")
        time.sleep(self.fit_seconds)
        self.fitted += int(budget)

    def eval(self, eval_horizon: int = 10, n_simulations: int = 1, gamma: float = 1.0) -> float:
        bonus = {"low": 0.0, "high": 0.5}[self.level]
        return self.fitted / 100 * (1.0 - (self.x - self.OPTIMUM) ** 2) + bonus + 0.01 * float(self.rng.normal())

    def get_state(self) -> dict[str, Any]:
        return {"fitted": self.fitted}

    def set_state(self, state: dict[str, Any]) -> None:
        self.fitted = int(state["fitted"])

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        return {"x": trial.suggest_float("x", -1.0, 1.0), "level": trial.suggest_categorical("level", ["low", "high"])}


class NoiseAgent(Agent):
    """Toy agent for the tuning confirmation: its score is pure noise whatever its hyperparameters (mean 0 for every
    setting), so a study's best trial is only the luckiest.

    ``eval`` returns a part drawn from the agent's seeded rng (the same for two settings on the same seeds: common
    random numbers cancel it) plus an equal part drawn from a generator keyed by the setting too (independent across
    settings: no pairing cancels it). ``x`` and ``level`` are PeakAgent's search space.
    """

    name = "Noise"

    def __init__(self, env: Any, x: float = 0.0, level: str = "low", **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.x, self.level = x, level
        self.fitted = 0

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.fitted += int(budget)

    def eval(self, eval_horizon: int = 10, n_simulations: int = 1, gamma: float = 1.0) -> float:
        import zlib

        setting = zlib.crc32(repr((float(self.x), str(self.level))).encode())
        own = np.random.default_rng([int(self.rng.integers(2**32)), setting])
        return float(self.rng.normal() + own.normal())

    def get_state(self) -> dict[str, Any]:
        return {"fitted": self.fitted}

    def set_state(self, state: dict[str, Any]) -> None:
        self.fitted = int(state["fitted"])

    sample_parameters = PeakAgent.sample_parameters
