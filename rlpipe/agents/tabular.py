"""Helpers shared by agents of finite (Discrete × Discrete) environments."""
from __future__ import annotations

import gymnasium as gym
import numpy as np


def discrete_sizes(env: gym.Env, agent: str) -> tuple[int, int]:
    """``(n_states, n_actions)`` of an env with Discrete observation and action spaces, or a clear error."""
    observation_space, action_space = env.observation_space, env.action_space
    if not isinstance(observation_space, gym.spaces.Discrete) or not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(
            f"{agent} needs Discrete observation and action spaces; this env has "
            f"{type(observation_space).__name__} observations and {type(action_space).__name__} actions"
        )
    return int(observation_space.n), int(action_space.n)


def check_probability(value: float, name: str, agent: str, allow_one: bool = True) -> float:
    value = float(value)
    upper_ok = value <= 1 if allow_one else value < 1
    if not (0 <= value and upper_ok):
        raise ValueError(f"{agent}: {name} must be in [0, 1{']' if allow_one else ')'}, got {value}")
    return value


def greedy_action(q_row: np.ndarray) -> int:
    """Argmax with ties broken towards the lowest action: deterministic, so evaluation uses no randomness."""
    return int(np.argmax(q_row))
