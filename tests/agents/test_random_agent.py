"""RandomAgent (rlpipe/agents/random_agent.py): the episode statistics it writes, and any action space."""
from __future__ import annotations

import numpy as np

from rlpipe.agents import RandomAgent

from toy_envs import FL


def test_random_agent_writes_episode_statistics():
    agent = RandomAgent(FL, seeder=0)
    agent.fit(500)
    lengths = agent.writer.read_tag_value("episode_length")
    rewards = agent.writer.read_tag_value("episode_rewards")
    assert len(lengths) == len(rewards) > 0
    # global_step = total steps when the episode ended = cumulative sum of the episode lengths
    assert lengths.index.tolist() == np.cumsum(lengths.to_numpy()).tolist()
    assert set(rewards.unique()) <= {0.0, 1.0}


def test_random_agent_works_on_cartpole():
    agent = RandomAgent("CartPole-v1", seeder=0)
    agent.fit(200)
    assert agent.total_env_steps == 200
    assert 0 < agent.eval(n_simulations=2) <= 500
