"""run_episodes (rlpipe/runtime/rollouts.py): returns, discounting, horizons, time limits, determinism given seeds."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from rlpipe.runtime.rollouts import run_episodes

from toy_envs import FL, CountdownEnv


def test_run_episodes_returns_and_discounting():
    env = CountdownEnv(length=5)
    result = run_episodes(lambda obs: 0, env, seeds=[3, 4], horizon=100, gamma=0.5)
    np.testing.assert_array_equal(result["return"], [5.0, 5.0])
    np.testing.assert_allclose(result["discounted_return"], [1.9375, 1.9375])
    np.testing.assert_array_equal(result["length"], [5, 5])
    assert result["length"].dtype == np.int64
    assert env.reset_seeds == [3, 4]


def test_run_episodes_horizon_cuts_episodes():
    result = run_episodes(lambda obs: 0, CountdownEnv(length=5), seeds=[0], horizon=3, gamma=0.5)
    assert result["return"].tolist() == [3.0]
    assert result["discounted_return"].tolist() == [1.75]
    assert result["length"].tolist() == [3]
    empty = run_episodes(lambda obs: 0, CountdownEnv(), seeds=[0, 1], horizon=0, gamma=1.0)
    assert empty["length"].tolist() == [0, 0] and empty["return"].tolist() == [0.0, 0.0]


def test_run_episodes_on_a_time_limited_env():
    env = gym.wrappers.TimeLimit(CountdownEnv(length=None), max_episode_steps=4)
    result = run_episodes(lambda obs: 1, env, seeds=range(3), horizon=10, gamma=1.0)
    assert result["length"].tolist() == [4, 4, 4]  # truncated by the wrapper, before the horizon
    assert result["return"].tolist() == [4.0, 4.0, 4.0]
    frozen = gym.make(FL, max_episode_steps=7)
    result = run_episodes(lambda obs: 0, frozen, seeds=range(20), horizon=5, gamma=0.9)
    assert (result["length"] <= 5).all() and (result["length"] >= 1).all()
    assert set(result["return"].tolist()) <= {0.0, 1.0}


def test_run_episodes_is_deterministic_given_seeds():
    env = gym.make(FL)
    rng_policy = lambda obs: int(obs) % 4  # noqa: E731 - a deterministic policy
    a = run_episodes(rng_policy, env, seeds=[1, 2, 3, 4], horizon=100, gamma=0.99)
    b = run_episodes(rng_policy, gym.make(FL), seeds=[1, 2, 3, 4], horizon=100, gamma=0.99)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not math.isnan(a["discounted_return"].sum())
