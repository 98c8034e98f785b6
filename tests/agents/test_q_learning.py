"""QLearningAgent (rlpipe/agents/q_learning.py): learning, the epsilon schedule, the update rule, sample_parameters."""
from __future__ import annotations

import optuna
import pytest

from rlpipe.agents import QLearningAgent

from toy_envs import FL, FL_DET, CountdownEnv


# ---------------------------------------------------------------------------------------------- learning
def test_q_learning_learns_deterministic_frozen_lake():
    agent = QLearningAgent(FL_DET, seeder=0)
    agent.fit(20_000)
    assert agent.total_env_steps == 20_000
    assert agent.epsilon() == pytest.approx(0.05)
    assert agent.eval(eval_horizon=100, n_simulations=10) == 1.0
    assert agent.q[14, 2] == pytest.approx(1.0, abs=1e-3)  # right from 14 reaches the goal


def test_q_learning_epsilon_schedule():
    agent = QLearningAgent(FL, epsilon_start=1.0, epsilon_end=0.2, epsilon_decay_steps=100, seeder=0)
    assert agent.epsilon() == 1.0
    agent.fit(50)
    assert agent.epsilon() == pytest.approx(0.6)
    agent.fit(100)
    assert agent.epsilon() == pytest.approx(0.2)


# ---------------------------------------------------------------------------------------------- sample_parameters
def test_q_learning_sample_parameters():
    fixed = {"learning_rate": 0.3, "gamma": 0.95, "epsilon_decay_steps": 2000}
    params = QLearningAgent.sample_parameters(optuna.trial.FixedTrial(fixed))
    assert params == fixed
    agent = QLearningAgent(FL, seeder=0, **params)
    assert (agent.learning_rate, agent.gamma, agent.epsilon_decay_steps) == (0.3, 0.95, 2000)


# ---------------------------------------------------------------------------------------------- update rule
def test_q_learning_update_rule_never_bootstraps_from_a_terminal_state():
    # Greedy (ties broken at random), reward 1 per step, 5-step episodes, alpha = gamma = 0.5.
    agent = QLearningAgent((CountdownEnv, {"length": 5}), learning_rate=0.5, gamma=0.5,
                           epsilon_start=0.0, epsilon_end=0.0, seeder=0)
    agent.q[5] = 10.0  # state 5 ends the episode: its values must never enter a target
    agent.fit(5)  # one episode: each visited Q(s, a) goes 0 -> 0.5 * (1 + 0.5 * max Q(s + 1)) = 0.5, the last step too
    assert agent._episode_seed is None
    assert agent.q[:5].max(axis=1).tolist() == [0.5] * 5
    assert (agent.q[:5] > 0).sum() == 5
    agent.fit(1)  # from 0 again, greedy: target 1 + 0.5 * 0.5 = 1.25, so Q = 0.5 + 0.5 * (1.25 - 0.5)
    assert agent.q[0].max() == pytest.approx(0.875)
    assert agent.total_env_steps == 6
