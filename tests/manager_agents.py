"""Probe agents for tests/test_manager.py (importable as ``manager_agents:Name``, so tasks can name them).

They record what the ExperimentManager passes them: fit budgets and kwargs (kept in the checkpoint, so
they survive the reload that ``get_agent_instances`` does), eval kwargs, and the process / thread that
ran ``fit`` (into ``thread_shared_data``, to see whether the caller's dict is shared).
"""
from __future__ import annotations

import os
import threading
from typing import Any

from rlpipe.agents import QLearningAgent

from helpers_agents import PickledCounterAgent


class ProbeAgent(QLearningAgent):
    """Q-learning that records its fit calls in its state and where it ran in ``thread_shared_data``."""

    name = "Probe"

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.fit_calls: list[list[Any]] = []
        self.eval_calls: list[dict[str, Any]] = []

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.fit_calls.append([int(budget), dict(kwargs)])
        shared = self.thread_shared_data
        shared.setdefault("seen", []).append(self._execution_metadata)
        shared.setdefault("where", []).append([os.getpid(), threading.get_ident()])
        super().fit(budget)

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "fit_calls": self.fit_calls}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.fit_calls = [list(call) for call in state["fit_calls"]]


class ProbeEvalAgent(ProbeAgent):
    """``eval`` returns the instance index and records the kwargs it was called with."""

    name = "ProbeEval"

    def eval(self, **kwargs: Any) -> float:
        self.eval_calls.append(dict(kwargs))
        return float(self._execution_metadata)


class PickledProbeAgent(PickledCounterAgent):
    """No get_state (checkpointed with cloudpickle); records its instance id in ``thread_shared_data`` in fit."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.thread_shared_data.setdefault("seen", []).append(self._execution_metadata)
        super().fit(budget, **kwargs)
