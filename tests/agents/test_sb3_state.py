"""Tests of rlpipe.agents.sb3_state: SB3's training state as arrays and JSON and back, without pickle."""
from __future__ import annotations

import json
import random

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

from stable_baselines3.common.buffers import ReplayBuffer  # noqa: E402

from rlpipe.agents.sb3_state import (  # noqa: E402
    EpisodeRecord,
    GlobalGenerators,
    decode,
    encode,
    replay_buffer_state,
    replay_episode,
    set_replay_buffer_state,
)


def test_an_optimizer_state_comes_back_equal_with_its_int_keys_and_tuples():
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-3, betas=(0.8, 0.9))
    layer(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    node = json.loads(json.dumps(encode(state, "adam", arrays)))  # the JSON part really is JSON
    back = decode(node, arrays)
    assert set(back["state"]) == {0, 1}  # optimizer states are keyed by int, not by the str JSON would make
    assert back["param_groups"][0]["betas"] == (0.8, 0.9)
    for key in (0, 1):
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(back["state"][key][name], state["state"][key][name])
    assert all(key.startswith("adam.") for key in arrays)
    torch.optim.Adam(layer.parameters()).load_state_dict(back)  # torch accepts it


def test_a_value_that_needs_pickle_is_refused_by_name():
    with pytest.raises(TypeError, match="opt.0: cannot checkpoint a object without pickle"):
        encode([object()], "opt", {})


def test_the_replay_buffer_comes_back_row_for_row_and_a_wrong_shape_is_named():
    env = gym.make("Pendulum-v1")
    buffer = ReplayBuffer(10, env.observation_space, env.action_space, device="cpu")
    rng = np.random.default_rng(0)
    for _ in range(13):  # wraps around: full, pos 3
        buffer.add(rng.normal(size=(1, 3)), rng.normal(size=(1, 3)), rng.normal(size=(1, 1)), rng.normal(size=1),
                   np.array([False]), [{}])
    arrays: dict[str, np.ndarray] = {}
    meta = replay_buffer_state(buffer, arrays)
    assert meta == {"pos": 3, "full": True, "rows": 10}
    fresh = ReplayBuffer(10, env.observation_space, env.action_space, device="cpu")
    set_replay_buffer_state(fresh, meta, arrays)
    assert fresh.pos == 3 and fresh.full
    for field in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts"):
        assert np.array_equal(getattr(fresh, field), getattr(buffer, field))
    smaller = ReplayBuffer(5, env.observation_space, env.action_space, device="cpu")
    with pytest.raises(ValueError, match="replay.observations has shape .* another buffer_size"):
        set_replay_buffer_state(smaller, meta, arrays)


def test_the_global_generators_continue_their_draws_after_a_round_trip():
    np.random.seed(1), random.seed(2), torch.manual_seed(3)
    saved = GlobalGenerators()
    expected = (np.random.random(3), random.random(), torch.rand(3))
    arrays: dict[str, np.ndarray] = {}
    meta = json.loads(json.dumps(saved.to_state(arrays)))
    np.random.seed(9), random.seed(9), torch.manual_seed(9)
    GlobalGenerators.from_state(meta, arrays, cuda=False).install()
    again = (np.random.random(3), random.random(), torch.rand(3))
    assert np.array_equal(again[0], expected[0]) and again[1] == expected[1] and torch.equal(again[2], expected[2])


def test_an_episode_in_progress_is_rebuilt_in_a_fresh_env():
    record = EpisodeRecord(gym.make("CartPole-v1"))
    record.reset(seed=5)
    record.env.unwrapped.np_random.random()  # the env's generator moves on: the replay must restore it first
    for action in (0, 1, 1, 0, 1):
        observation, *_ = record.step(action)
    arrays: dict[str, np.ndarray] = {}
    episode_reset = json.loads(json.dumps(record.to_state(arrays), default=int))
    fresh = EpisodeRecord(gym.make("CartPole-v1"))
    assert np.array_equal(replay_episode(fresh, fresh, episode_reset, arrays), observation)
    assert len(fresh.episode_actions) == 5
