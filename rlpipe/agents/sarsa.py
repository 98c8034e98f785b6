"""Tabular Sarsa with ε-greedy exploration (Rummery & Niranjan, 1994; Sutton & Barto, 2018, section 6.4): on-policy,
it bootstraps from the action it will take next, so it learns the value of the exploring policy."""
from __future__ import annotations

from typing import Any

from rlpipe.agents.temporal_difference import TabularTDAgent


class SarsaAgent(TabularTDAgent):
    """Sarsa for Discrete × Discrete environments; ``fit`` budget = environment steps (see TabularTDAgent).

    The next action, chosen before the update, is kept between ``fit`` calls and in checkpoints, so chunked and
    resumed fits take the same actions as one call.
    """

    name = "Sarsa"

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.next_action: int | None = None  # the action chosen for the current observation, not yet taken

    def fit(self, budget: int, **kwargs: Any) -> None:
        for _ in range(int(budget)):
            state = self.current_observation()
            action = self.explore(state) if self.next_action is None else self.next_action
            next_state, reward, terminated, truncated, _ = self.step_env(action)
            if terminated:
                target, self.next_action = reward, None
            else:
                following = self.explore(next_state)
                target = reward + self.gamma * self.q[next_state, following]
                self.next_action = None if truncated else following  # a new episode starts from its own first choice
            self.q[state, action] += self.learning_rate * (target - self.q[state, action])

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "next_action": self.next_action}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.next_action = state["next_action"]
