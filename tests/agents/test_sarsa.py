"""SarsaAgent (rlpipe/agents/sarsa.py): the on-policy update, its pending action across fit calls and checkpoints,
and Sutton & Barto's cliff walking, where Sarsa's safer path earns more online than Q-learning's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlpipe.agents import QLearningAgent, SarsaAgent
from rlpipe.manager.check_agent import check_rl_agent

from toy_envs import FL, CountdownEnv


def test_the_update_bootstraps_from_the_next_action_taken():
    # Greedy (ties broken at random), reward 1 per step, 5-step episodes, alpha = gamma = 0.5.
    agent = SarsaAgent((CountdownEnv, {"length": 5}), learning_rate=0.5, gamma=0.5, epsilon_start=0.0,
                       epsilon_end=0.0, seeder=0)
    agent.q[5] = 10.0  # state 5 ends the episode: its values must never enter a target
    agent.fit(5)  # each visited Q(s, a) goes 0 -> 0.5 * (1 + 0.5 * Q(s + 1, a')) = 0.5, a' not yet updated
    assert agent.next_action is None  # the episode ended
    assert agent.q[:5].max(axis=1).tolist() == [0.5] * 5 and (agent.q[:5] > 0).sum() == 5
    agent.fit(1)  # from 0, greedy: a' in state 1 is the 0.5 one, so Q = 0.5 + 0.5 * (1 + 0.5 * 0.5 - 0.5)
    assert agent.q[0].max() == pytest.approx(0.875)
    assert agent.next_action == int(np.argmax(agent.q[1]))  # chosen, and taken by the next fit call
    assert agent.total_env_steps == 6


def test_explored_actions_are_what_sarsa_bootstraps_from_unlike_q_learning():
    """With ε = 1 every action is random: Sarsa's targets use the random next action, Q-learning's the best one, so
    Sarsa's values are lower (the value of the exploring policy)."""
    kwargs = {"learning_rate": 0.5, "gamma": 0.9, "epsilon_start": 1.0, "epsilon_end": 1.0, "seeder": 3}
    env = {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}}
    sarsa, q_learning = SarsaAgent(env, **kwargs), QLearningAgent(env, **kwargs)
    sarsa.fit(20_000)
    q_learning.fit(20_000)
    assert sarsa.q.max(axis=1)[0] < q_learning.q.max(axis=1)[0]
    assert q_learning.q.max(axis=1)[0] == pytest.approx(0.9 ** 5, rel=0.05)  # the optimal value of the start state


def test_a_chunked_and_resumed_fit_is_the_whole_fit():
    check_rl_agent(SarsaAgent, FL, {"epsilon_decay_steps": 50})  # seeding, save/load, fit(10)+save/load+fit(10)
    whole = SarsaAgent(FL, seeder=1)
    whole.fit(301)
    split = SarsaAgent(FL, seeder=1)
    split.fit(150)
    split.fit(151)
    np.testing.assert_array_equal(split.q, whole.q)
    assert split.next_action == whole.next_action and split.total_env_steps == 301


def test_the_pending_action_is_checkpointed(tmp_path: Path):
    agent = SarsaAgent(FL, seeder=2)
    agent.fit(7)
    loaded = SarsaAgent.load(agent.save(tmp_path / "agent.ckpt"), env=FL)
    assert loaded.next_action == agent.next_action
    agent.fit(200)
    loaded.fit(200)
    np.testing.assert_array_equal(loaded.q, agent.q)


def test_cliff_walking_sarsa_earns_more_online_than_q_learning():
    """Sutton & Barto (2018), Example 6.6: ε = 0.1, α = 0.5. Q-learning learns the path along the cliff and, exploring,
    falls off it (-100); Sarsa learns the safer path, so its return during training is higher."""
    online = {}
    for agent_class in (SarsaAgent, QLearningAgent):
        returns = []
        for seed in range(3):
            agent = agent_class("CliffWalking-v1", learning_rate=0.5, gamma=1.0, epsilon_start=0.1, epsilon_end=0.1,
                                seeder=seed)
            agent.fit(30_000)
            rewards = agent.writer.data.query("tag == 'episode_rewards'")["value"].to_numpy()
            returns.append(rewards[-100:].mean())
        online[agent_class.name] = float(np.mean(returns))
    assert online["Sarsa"] > online["QLearning"] + 10, online
    assert -30 < online["Sarsa"] < -15 and online["QLearning"] < -40, online  # S&B's figure: about -25 and -50
