"""Shared tabular machinery (rlpipe/agents/tabular.py): Discrete-only envs, probability checks, greedy actions.

Checked directly and through the tabular agents that use it (Q-learning, value iteration).
"""
from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

from rlpipe.agents import QLearningAgent, ValueIterationAgent
from rlpipe.agents.tabular import check_probability, discrete_sizes, greedy_action

from toy_envs import FL, CountdownEnv


# ---------------------------------------------------------------------------------------------- through the agents
@pytest.mark.parametrize(
    "cls, kwargs, name",
    [
        (QLearningAgent, {"learning_rate": 0}, "learning_rate"),
        (QLearningAgent, {"learning_rate": 1.5}, "learning_rate"),
        (QLearningAgent, {"gamma": 1.5}, "gamma"),
        (QLearningAgent, {"gamma": -0.1}, "gamma"),
        (QLearningAgent, {"epsilon_start": 2}, "epsilon_start"),
        (QLearningAgent, {"epsilon_end": -1}, "epsilon_end"),
        (QLearningAgent, {"epsilon_decay_steps": 0}, "epsilon_decay_steps"),
        (ValueIterationAgent, {"gamma": 1.0}, "gamma"),
        (ValueIterationAgent, {"gamma": 1.5}, "gamma"),
    ],
)
def test_hyperparameter_validation(cls, kwargs, name):
    with pytest.raises(ValueError, match=rf"{cls.name}: {name} must be"):
        cls(FL, seeder=0, **kwargs)


def test_boundary_hyperparameters_are_accepted():
    greedy = QLearningAgent(FL, learning_rate=1.0, gamma=1.0, epsilon_start=0.0, epsilon_end=0.0, seeder=0)
    assert (greedy.learning_rate, greedy.gamma, greedy.epsilon()) == (1.0, 1.0, 0.0)
    greedy.fit(50)
    assert greedy.total_env_steps == 50
    myopic = ValueIterationAgent(FL, gamma=0.0, seeder=0)
    myopic.fit(5)
    np.testing.assert_array_equal(myopic.q, myopic.rewards)  # with gamma 0, Q is the expected immediate reward
    assert myopic.converged


@pytest.mark.parametrize("cls", [QLearningAgent, ValueIterationAgent])
def test_tabular_agents_reject_continuous_envs(cls):
    with pytest.raises(ValueError, match=rf"{cls.name} needs Discrete observation and action spaces; "
                                         "this env has Box observations and Discrete actions"):
        cls("CartPole-v1", seeder=0)


# ---------------------------------------------------------------------------------------------- the helpers
def test_discrete_sizes_of_a_finite_env():
    assert discrete_sizes(gym.make(FL), "X") == (16, 4)
    sizes = discrete_sizes(CountdownEnv(), "X")
    assert sizes == (1000, 2)
    assert all(type(size) is int for size in sizes)


def test_discrete_sizes_names_both_spaces():
    env = SimpleNamespace(observation_space=gym.spaces.Discrete(3), action_space=gym.spaces.Box(-1.0, 1.0, (2,)))
    with pytest.raises(ValueError, match="^Mine needs Discrete observation and action spaces; "
                                         "this env has Discrete observations and Box actions$"):
        discrete_sizes(env, "Mine")


def test_check_probability_returns_a_float_and_bounds_the_interval():
    assert check_probability(0, "p", "X") == 0.0
    value = check_probability(1, "p", "X")
    assert value == 1.0 and type(value) is float
    assert check_probability(np.float32(0.5), "p", "X", allow_one=False) == 0.5
    with pytest.raises(ValueError, match=r"^X: p must be in \[0, 1\), got 1.0$"):
        check_probability(1, "p", "X", allow_one=False)
    with pytest.raises(ValueError, match=r"^X: p must be in \[0, 1\], got -0.25$"):
        check_probability(-0.25, "p", "X")
    with pytest.raises(ValueError, match=r"got nan$"):
        check_probability(float("nan"), "p", "X")


def test_greedy_action_breaks_ties_towards_the_lowest_action():
    assert greedy_action(np.zeros(4)) == 0
    assert greedy_action(np.array([0.0, 2.0, 1.0, 2.0])) == 1
    action = greedy_action(np.array([-3.0, -1.0]))
    assert action == 1 and type(action) is int
