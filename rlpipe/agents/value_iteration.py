"""Value iteration on the transition table of a finite gymnasium environment."""
from __future__ import annotations

from typing import Any

import numpy as np

from rlpipe.agents.base import AgentWithSimplePolicy
from rlpipe.agents.tabular import check_probability, discrete_sizes, greedy_action


class ValueIterationAgent(AgentWithSimplePolicy):
    """Bellman optimality sweeps over the model ``env.unwrapped.P`` (gymnasium's toy-text tables).

    ``fit`` budget = number of sweeps; sweeps stop early once the largest value change falls below
    ``epsilon`` (further budget is a no-op). Writes ``bellman_residual`` per sweep. No environment
    interaction is needed, so ``total_env_steps`` stays 0.
    """

    name = "ValueIteration"
    fit_is_additive = True

    def __init__(self, env: Any, gamma: float = 0.99, epsilon: float = 1e-8, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.n_states, self.n_actions = discrete_sizes(self.env, self.name)
        self.gamma = check_probability(gamma, "gamma", self.name, allow_one=False)
        self.epsilon = float(epsilon)
        self.transitions, self.rewards, self.terminal = _model_arrays(self.env, self.n_states, self.n_actions)
        self.values = np.zeros(self.n_states)
        self.q = np.zeros((self.n_states, self.n_actions))
        self.sweeps = 0
        self.converged = False

    def fit(self, budget: int, **kwargs: Any) -> None:
        for _ in range(int(budget)):
            if self.converged:
                return
            # Q(s,a) = E[r + γ V(s') (1 - done)], with expectations taken over the table's outcomes.
            self.q = self.rewards + self.gamma * np.einsum("sat,sat,t->sa", self.transitions, 1.0 - self.terminal, self.values)
            new_values = self.q.max(axis=1)
            residual = float(np.max(np.abs(new_values - self.values)))
            self.values = new_values
            self.sweeps += 1
            self.writer.add_scalar("bellman_residual", residual, self.sweeps)
            self.converged = residual < self.epsilon

    def policy(self, observation: Any) -> int:
        return greedy_action(self.q[observation])

    def get_state(self) -> dict[str, Any]:
        return {"values": self.values, "q": self.q, "sweeps": self.sweeps, "converged": self.converged}

    def set_state(self, state: dict[str, Any]) -> None:
        self.values = np.array(state["values"], dtype=float)
        self.q = np.array(state["q"], dtype=float)
        self.sweeps = int(state["sweeps"])
        self.converged = bool(state["converged"])

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        return {"gamma": trial.suggest_float("gamma", 0.9, 0.999)}


def _model_arrays(env: Any, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P[s,a,s'], R[s,a] expected reward, done[s,a,s'])`` from gymnasium's ``P[s][a] = [(p, s', r, done)]``."""
    table = getattr(env.unwrapped, "P", None)
    if table is None:
        raise ValueError(
            f"ValueIteration needs the transition table env.unwrapped.P (gymnasium toy-text envs have it); "
            f"{type(env.unwrapped).__name__} has none"
        )
    transitions = np.zeros((n_states, n_actions, n_states))
    rewards = np.zeros((n_states, n_actions))
    terminal = np.zeros((n_states, n_actions, n_states))
    for state in range(n_states):
        for action in range(n_actions):
            for probability, next_state, reward, done in table[state][action]:
                transitions[state, action, next_state] += probability
                rewards[state, action] += probability * reward
                terminal[state, action, next_state] = float(done)
    return transitions, rewards, terminal
