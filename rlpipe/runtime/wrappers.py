"""Environment wrappers for agents written rlberry's way."""
from __future__ import annotations

from typing import Any

import gymnasium as gym

_SCALARS = {"reward": ("reward",), "action": ("action",), "action_and_reward": ("reward", "action")}


class WriterWrapper(gym.Wrapper):
    """Writes each step's reward and/or action to ``writer``, at ``global_step`` = steps taken so far.

    rlberry's ``WriterWrapper``: an agent wraps ``self.env`` with it to log without touching its ``fit``.
    ``write_scalar`` is "reward", "action" or "action_and_reward".
    """

    def __init__(self, env: gym.Env, writer: Any, write_scalar: str = "reward") -> None:
        if write_scalar not in _SCALARS:
            raise ValueError(f"write_scalar must be one of {tuple(_SCALARS)}, got {write_scalar!r}")
        super().__init__(env)
        self.writer = writer
        self.write_scalar = write_scalar
        self.iteration_ = 0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.iteration_ += 1
        values = {"reward": reward, "action": action}
        for tag in _SCALARS[self.write_scalar]:
            self.writer.add_scalar(tag, values[tag], self.iteration_)
        return observation, reward, terminated, truncated, info
