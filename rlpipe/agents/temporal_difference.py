"""What tabular temporal-difference control agents share: a Q table, ε-greedy exploration on a linear schedule,
the greedy policy, checkpoints and the search space. Q-learning and Sarsa differ only in their update."""
from __future__ import annotations

from typing import Any

import numpy as np

from rlpipe.agents.base import AgentWithSimplePolicy
from rlpipe.agents.tabular import check_probability, discrete_sizes, greedy_action


class TabularTDAgent(AgentWithSimplePolicy):
    """A Q table for Discrete × Discrete environments; ``fit`` budget = environment steps.

    ε decays linearly from ``epsilon_start`` to ``epsilon_end`` over ``epsilon_decay_steps`` steps (equal ends: a
    constant ε); greedy ties in exploration are broken at random so that an all-zero table still explores.
    """

    fit_is_additive = True

    def __init__(
        self,
        env: Any,
        gamma: float = 0.99,
        learning_rate: float = 0.1,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        epsilon_decay_steps: int = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(env, **kwargs)
        self.n_states, self.n_actions = discrete_sizes(self.env, self.name)
        self.gamma = check_probability(gamma, "gamma", self.name)
        self.learning_rate = float(learning_rate)
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"{self.name}: learning_rate must be in (0, 1], got {learning_rate}")
        self.epsilon_start = check_probability(epsilon_start, "epsilon_start", self.name)
        self.epsilon_end = check_probability(epsilon_end, "epsilon_end", self.name)
        if int(epsilon_decay_steps) < 1:
            raise ValueError(f"{self.name}: epsilon_decay_steps must be >= 1, got {epsilon_decay_steps}")
        self.epsilon_decay_steps = int(epsilon_decay_steps)
        self.q = np.zeros((self.n_states, self.n_actions))

    def epsilon(self) -> float:
        progress = min(1.0, self.total_env_steps / self.epsilon_decay_steps)
        return self.epsilon_start + progress * (self.epsilon_end - self.epsilon_start)

    def explore(self, state: int) -> int:
        """An ε-greedy action in ``state``, drawn from the agent's generator."""
        if self.rng.random() < self.epsilon():
            return int(self.rng.integers(self.n_actions))
        best = np.flatnonzero(self.q[state] == self.q[state].max())
        return int(best[self.rng.integers(len(best))])

    def policy(self, observation: Any) -> int:
        return greedy_action(self.q[observation])

    def get_state(self) -> dict[str, Any]:
        return {"q": self.q}

    def set_state(self, state: dict[str, Any]) -> None:
        self.q = np.array(state["q"], dtype=float)

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 1.0, log=True),
            "gamma": trial.suggest_float("gamma", 0.9, 0.999),
            "epsilon_decay_steps": trial.suggest_int("epsilon_decay_steps", 1_000, 50_000, log=True),
        }
