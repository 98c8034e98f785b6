"""rlpipe.runtime.wrappers.WriterWrapper: rlberry's wrapper that logs each step to the agent's writer."""
from __future__ import annotations

import gymnasium as gym
import pytest

from rlpipe.runtime.wrappers import WriterWrapper
from rlpipe.runtime.writer import DefaultWriter


@pytest.mark.parametrize("write_scalar, tags", [("reward", ["reward"]), ("action", ["action"]),
                                                ("action_and_reward", ["reward", "action"])])
def test_each_step_is_written_at_the_step_count(write_scalar, tags) -> None:
    writer = DefaultWriter(print_log=False)
    env = WriterWrapper(gym.make("FrozenLake-v1", is_slippery=False), writer, write_scalar=write_scalar)
    env.reset(seed=0)
    rewards = [env.step(action)[1] for action in (2, 2, 1, 1, 1, 2)]  # right, right, down ×3, right: the goal
    data = writer.data
    assert list(dict.fromkeys(data.tag)) == tags
    assert data[data.tag == tags[0]].global_step.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    if "reward" in tags:
        assert data[data.tag == "reward"].value.tolist() == rewards == [0, 0, 0, 0, 0, 1.0]
    if "action" in tags:
        assert data[data.tag == "action"].value.tolist() == [2, 2, 1, 1, 1, 2]


def test_an_unknown_scalar_is_refused() -> None:
    with pytest.raises(ValueError, match="write_scalar must be one of"):
        WriterWrapper(gym.make("FrozenLake-v1"), DefaultWriter(print_log=False), write_scalar="rewards")
