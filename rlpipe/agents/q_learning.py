"""Tabular Q-learning with ε-greedy exploration (Watkins, 1989): off-policy, it bootstraps from the greedy action."""
from __future__ import annotations

from typing import Any

from rlpipe.agents.temporal_difference import TabularTDAgent


class QLearningAgent(TabularTDAgent):
    """Q-learning for Discrete × Discrete environments; ``fit`` budget = environment steps (see TabularTDAgent)."""

    name = "QLearning"

    def fit(self, budget: int, **kwargs: Any) -> None:
        for _ in range(int(budget)):
            state = self.current_observation()
            action = self.explore(state)
            next_state, reward, terminated, _, _ = self.step_env(action)
            target = reward + (0.0 if terminated else self.gamma * self.q[next_state].max())
            self.q[state, action] += self.learning_rate * (target - self.q[state, action])
