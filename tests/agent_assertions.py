"""Assertions shared by the agent tests: two agents are in exactly the same state."""
from __future__ import annotations

import numpy as np

from rlpipe.agents import Agent
from rlpipe.runtime.envs import env_generators


def writer_rows(agent: Agent) -> list[tuple[str, float, float]]:
    """Writer rows without the wall-clock column."""
    data = agent.writer.data
    return list(zip(data["tag"], data["value"], data["global_step"]))


def generator_states(env) -> dict:
    return {name: generator.bit_generator.state for name, generator in env_generators(env).items()}


def assert_same_state(a: Agent, b: Agent) -> None:
    state_a, state_b = a.get_state(), b.get_state()
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, state_b[key], err_msg=key)
        else:
            assert value == state_b[key], key


def assert_same_agent(a: Agent, b: Agent, compare_writers: bool = True) -> None:
    """Learned state, counters, random streams (the agent's, its envs' and their spaces') and the episode in progress
    are identical."""
    assert_same_state(a, b)
    for env_a, env_b in ((a.env, b.env), (a.eval_env, b.eval_env)):
        assert generator_states(env_a) == generator_states(env_b)
    assert a.total_env_steps == b.total_env_steps
    assert a.rng.bit_generator.state == b.rng.bit_generator.state
    assert a._eval_rng.bit_generator.state == b._eval_rng.bit_generator.state
    assert a._episode_seed == b._episode_seed
    np.testing.assert_array_equal(np.asarray(a._episode_actions), np.asarray(b._episode_actions))
    if compare_writers:
        assert writer_rows(a) == writer_rows(b)
