"""Environments shared by the agent and rollout tests: FrozenLake specs and a countdown env with known returns."""
from __future__ import annotations

from typing import Any

import gymnasium as gym

FL = "FrozenLake-v1"
FL_DET = {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}}


class CountdownEnv(gym.Env):
    """Reward 1 at every step; terminates after ``length`` steps (or never if ``length`` is None)."""

    def __init__(self, length: int | None = 5) -> None:
        self.length = length
        self.observation_space = gym.spaces.Discrete(1000)
        self.action_space = gym.spaces.Discrete(2)
        self.reset_seeds: list[int | None] = []
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.reset_seeds.append(seed)
        self.t = 0
        return 0, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        self.t += 1
        terminated = self.length is not None and self.t >= self.length
        return self.t, 1.0, terminated, False, {}
