"""Agent classes used by tests (importable as ``helpers_agents:Name`` once ``tests/`` is on sys.path).

They live in a module rather than in test files so that tasks can name them by import path, the way a
config names an agent.
"""
from __future__ import annotations

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
