"""Run a policy for whole episodes: shared by ``AgentWithSimplePolicy.eval`` and the evaluate stage."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np


def run_episodes(
    policy: Callable[[Any], Any],
    env: gym.Env,
    seeds: Sequence[int],
    horizon: int,
    gamma: float,
) -> dict[str, np.ndarray]:
    """One episode per seed (``env.reset(seed=s)``), each at most ``horizon`` steps.

    Returns arrays ``return`` (undiscounted), ``discounted_return`` (``sum_t gamma**t r_t``) and ``length``.
    """
    n = len(seeds)
    returns, discounted, lengths = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    for episode, seed in enumerate(seeds):
        observation, _ = env.reset(seed=int(seed))
        total, total_discounted, discount, steps = 0.0, 0.0, 1.0, 0
        while steps < horizon:
            observation, reward, terminated, truncated, _ = env.step(policy(observation))
            total += float(reward)
            total_discounted += discount * float(reward)
            discount *= gamma
            steps += 1
            if terminated or truncated:
                break
        returns[episode], discounted[episode], lengths[episode] = total, total_discounted, steps
    return {"return": returns, "discounted_return": discounted, "length": lengths}
