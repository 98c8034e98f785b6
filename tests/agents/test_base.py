"""The Agent base class (rlpipe/agents/base.py), checked on every built-in agent where the contract is shared.

Seeding and seeders, additive fit, checkpoints (save/load/continue, native and pickled files, errors),
``AgentWithSimplePolicy.eval``, writers (``set_writer``, NullWriter, default writer kwargs), env copies,
``output_dir`` and the default ``sample_parameters``.
"""
from __future__ import annotations

import zipfile

import gymnasium as gym
import numpy as np
import optuna
import pytest

from rlpipe.agents import QLearningAgent, RandomAgent, ValueIterationAgent
from rlpipe.agents.base import NullWriter
from rlpipe.errors import CheckpointError
from rlpipe.io.checkpoint import COMPRESSED_PICKLE_MAGIC, META_KEY, PICKLE_MAGIC, read_checkpoint

from agent_assertions import assert_same_agent, assert_same_state, writer_rows
from helpers_agents import PickledCounterAgent
from toy_envs import FL, CountdownEnv

# (class, init kwargs, a budget: env steps, or sweeps for value iteration)
AGENTS = [
    pytest.param(QLearningAgent, {"epsilon_decay_steps": 500}, 1200, id="QLearning"),
    pytest.param(RandomAgent, {}, 1200, id="Random"),
    pytest.param(ValueIterationAgent, {"gamma": 0.95}, 40, id="ValueIteration"),
]
STOCHASTIC_AGENTS = AGENTS[:2]


def split_points(total: int) -> list[int]:
    """Uneven pieces of ``total``: lots of boundaries, some of them inside episodes."""
    pieces = [1, total // 3, 7, 0]
    return pieces + [total - sum(pieces)]


# ---------------------------------------------------------------------------------------------- seeding
@pytest.mark.parametrize("cls, kwargs, budget", AGENTS)
def test_same_seed_same_agent(cls, kwargs, budget):
    a = cls(FL, seeder=7, **kwargs)
    b = cls(FL, seeder=7, **kwargs)
    a.fit(budget)
    b.fit(budget)
    assert_same_agent(a, b)
    assert len(writer_rows(a)) > 0


@pytest.mark.parametrize("cls, kwargs, budget", STOCHASTIC_AGENTS)
def test_different_seeds_differ(cls, kwargs, budget):
    a = cls(FL, seeder=1, **kwargs)
    b = cls(FL, seeder=2, **kwargs)
    a.fit(budget)
    b.fit(budget)
    assert writer_rows(a) != writer_rows(b)
    if cls is QLearningAgent:
        assert not np.array_equal(a.q, b.q)


def test_seeder_forms_are_equivalent():
    by_int = QLearningAgent(FL, seeder=5)
    by_seq = QLearningAgent(FL, seeder=np.random.SeedSequence(5))
    from rlpipe import Seeder

    by_seeder = QLearningAgent(FL, seeder=Seeder(5))
    for agent in (by_int, by_seq, by_seeder):
        agent.fit(300)
    assert_same_agent(by_int, by_seq)
    assert_same_agent(by_int, by_seeder)


def test_spawned_seeders_are_independent_of_the_evaluation_stream():
    agent = QLearningAgent(FL, seeder=0)
    spawned = agent.seeder.spawn(2)[1]
    assert not np.array_equal(spawned.rng.random(5), agent._eval_rng.random(5))


# ---------------------------------------------------------------------------------------------- additivity
@pytest.mark.parametrize("cls, kwargs, budget", AGENTS)
def test_fit_is_additive(cls, kwargs, budget):
    whole = cls(FL, seeder=3, **kwargs)
    whole.fit(budget)
    split = cls(FL, seeder=3, **kwargs)
    mid_episode = False
    for piece in split_points(budget):
        split.fit(piece)
        mid_episode |= split._episode_seed is not None
    if cls is not ValueIterationAgent:
        assert mid_episode, "the split points should cut at least one episode"
        assert whole.total_env_steps == budget
    else:
        assert whole.total_env_steps == 0
    assert_same_agent(whole, split)


# ---------------------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("cls, kwargs, budget", AGENTS)
def test_save_load_continue_equals_uninterrupted(tmp_path, cls, kwargs, budget):
    whole = cls(FL, seeder=11, **kwargs)
    whole.fit(budget)

    for first in range(budget // 3 + 1, budget // 3 + 50):  # the first split point that falls mid-episode
        part = cls(FL, seeder=11, **kwargs)
        part.fit(first)
        if cls is ValueIterationAgent or part._episode_seed is not None:
            break
    if cls is not ValueIterationAgent:
        assert part._episode_seed is not None, "the checkpoint should be taken mid-episode"
    path = part.save(tmp_path / "agent.ckpt")
    assert path == tmp_path / "agent.ckpt"

    resumed = cls.load(path, env=FL, seeder=11, **kwargs)
    assert_same_state(part, resumed)
    assert resumed.total_env_steps == part.total_env_steps
    assert resumed._episode_actions == part._episode_actions
    if cls is not ValueIterationAgent:  # (current_observation would start an episode for value iteration)
        assert resumed.current_observation() == part.current_observation()  # the episode was replayed
    resumed.writer.load_arrow(part.writer.to_arrow())  # the pipeline saves writer data separately
    resumed.fit(budget - first)
    assert_same_agent(whole, resumed)


@pytest.mark.parametrize("cls, kwargs, budget", AGENTS)
def test_eval_after_load_equals_eval_of_the_saved_agent(tmp_path, cls, kwargs, budget):
    agent = cls(FL, seeder=4, **kwargs)
    agent.fit(budget)
    path = agent.save(tmp_path / "a.ckpt")
    loaded = cls.load(path, env=FL, seeder=4, **kwargs)
    assert loaded.eval(eval_horizon=50, n_simulations=5) == agent.eval(eval_horizon=50, n_simulations=5)


@pytest.mark.parametrize("cls, kwargs, budget", AGENTS)
def test_native_checkpoint_contains_no_pickle(tmp_path, cls, kwargs, budget):
    agent = cls(FL, seeder=2, **kwargs)
    agent.fit(budget // 2 + 3)
    path = agent.save(tmp_path / "a.ckpt")
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        for name in names:
            assert archive[name].dtype != object
        assert META_KEY in names
    arrays, meta = read_checkpoint(path)
    assert meta["format"] == "rlpipe-checkpoint/1"
    assert meta["agent_class"] == f"{cls.__module__}:{cls.__qualname__}"
    assert meta["total_env_steps"] == agent.total_env_steps


class CountingRandomAgent(RandomAgent):
    """Keeps numpy scalars in the JSON part of its state, as ``int(...)``-less code does."""

    def fit(self, budget, **kwargs):
        super().fit(budget)
        self.fits, self.fitted = np.int64(getattr(self, "fits", 0) + 1), np.bool_(True)

    def get_state(self):
        return {"fits": getattr(self, "fits", np.int64(0)), "fitted": getattr(self, "fitted", np.bool_(False))}

    def set_state(self, state):
        self.fits, self.fitted = state["fits"], state["fitted"]


def test_numpy_scalars_in_a_state_are_saved_as_json_values(tmp_path):
    agent = CountingRandomAgent(FL, seeder=0)
    agent.fit(3)
    agent.fit(2)
    loaded = CountingRandomAgent.load(agent.save(tmp_path / "a.ckpt"), env=FL, seeder=0)
    assert (loaded.fits, loaded.fitted) == (2, True)
    assert type(loaded.fits) is int and type(loaded.fitted) is bool


def test_truncated_checkpoint(tmp_path):
    agent = QLearningAgent(FL, seeder=0)
    agent.fit(100)
    data = agent.save(tmp_path / "a.ckpt").read_bytes()
    (tmp_path / "half.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        QLearningAgent.load(tmp_path / "half.ckpt", env=FL)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated"):
        QLearningAgent.load(tmp_path / "empty.ckpt", env=FL)


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        QLearningAgent.load(path, env=FL)
    (tmp_path / "text.ckpt").write_text("hello, I am a text file\n")
    with pytest.raises(CheckpointError, match="not an rlpipe checkpoint"):
        QLearningAgent.load(tmp_path / "text.ckpt", env=FL)


def test_zip_without_meta_is_rejected(tmp_path):
    np.savez(tmp_path / "plain.npz", q=np.zeros((16, 4)))
    with pytest.raises(CheckpointError, match="no '__meta__' record"):
        QLearningAgent.load(tmp_path / "plain.npz", env=FL)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        QLearningAgent.load(tmp_path / "nope.ckpt", env=FL)


def test_npy_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "array.ckpt"
    with open(path, "wb") as handle:
        np.save(handle, np.arange(3))
    with pytest.raises(CheckpointError):
        QLearningAgent.load(path, env=FL)


def test_meta_that_is_not_json_is_a_checkpoint_error(tmp_path):
    np.savez(tmp_path / "bad.npz", __meta__=np.array("not json"))
    with pytest.raises(CheckpointError):
        read_checkpoint(tmp_path / "bad.npz")


def test_checkpoint_of_another_class(tmp_path):
    agent = QLearningAgent(FL, seeder=0)
    agent.fit(10)
    path = agent.save(tmp_path / "q.ckpt")
    with pytest.raises(CheckpointError, match="holds a rlpipe.agents.q_learning:QLearningAgent, not a "
                                              "rlpipe.agents.random_agent:RandomAgent"):
        RandomAgent.load(path, env=FL)


@pytest.mark.parametrize("compress, magic", [(True, COMPRESSED_PICKLE_MAGIC), (False, PICKLE_MAGIC)])
def test_pickled_checkpoint_needs_allow_pickle(tmp_path, compress, magic):
    agent = PickledCounterAgent(FL, n_actions=4, seeder=5, compress_pickle=compress)
    agent.fit(37)
    path = agent.save(tmp_path / "counter.ckpt")
    assert path.read_bytes().startswith(magic)  # rlberry's compress_pickle: bz2 after the header
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        PickledCounterAgent.load(path, env=FL)
    with pytest.raises(CheckpointError, match="is a pickle"):
        read_checkpoint(path)

    loaded = PickledCounterAgent.load(path, allow_pickle=True, env=FL)
    assert type(loaded) is PickledCounterAgent
    np.testing.assert_array_equal(loaded.counts, agent.counts)
    assert loaded.n_actions == 4
    assert loaded.total_env_steps == agent.total_env_steps == 37
    assert loaded._episode_actions == agent._episode_actions
    assert loaded._episode_seed == agent._episode_seed
    assert loaded.rng.bit_generator.state == agent.rng.bit_generator.state
    # and it continues exactly as the original
    agent.fit(50)
    loaded.fit(50)
    np.testing.assert_array_equal(loaded.counts, agent.counts)
    assert writer_rows(loaded) == writer_rows(agent)[-len(writer_rows(loaded)):]


def test_truncated_pickled_checkpoint(tmp_path):
    agent = PickledCounterAgent(FL, seeder=5)
    agent.fit(10)
    data = agent.save(tmp_path / "c.ckpt").read_bytes()
    (tmp_path / "half.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        PickledCounterAgent.load(tmp_path / "half.ckpt", allow_pickle=True, env=FL)


def test_pickled_checkpoint_of_another_class(tmp_path):
    agent = PickledCounterAgent(FL, seeder=5)
    agent.fit(10)
    path = agent.save(tmp_path / "c.ckpt")
    with pytest.raises(CheckpointError):
        QLearningAgent.load(path, allow_pickle=True, env=FL)


def test_state_key_reserved_for_episode_actions(tmp_path):
    class Bad(QLearningAgent):
        def get_state(self):
            return {"__episode_actions__": np.zeros(2)}

    with pytest.raises(ValueError, match="reserved"):
        Bad(FL, seeder=0).save(tmp_path / "x.ckpt")


# ---------------------------------------------------------------------------------------------- eval
@pytest.mark.parametrize("cls, kwargs, budget", AGENTS)
def test_eval_is_a_success_rate_and_deterministic(cls, kwargs, budget):
    a = cls(FL, seeder=9, **kwargs)
    b = cls(FL, seeder=9, **kwargs)
    a.fit(budget)
    b.fit(budget)
    score = a.eval(eval_horizon=100, n_simulations=8)
    assert isinstance(score, float)
    assert 0.0 <= score <= 1.0
    assert score * 8 == pytest.approx(round(score * 8))  # a mean of 8 episodes of return 0 or 1
    assert b.eval(eval_horizon=100, n_simulations=8) == score


@pytest.mark.parametrize("cls, kwargs, budget", AGENTS)
def test_eval_does_not_change_training(cls, kwargs, budget):
    plain = cls(FL, seeder=6, **kwargs)
    plain.fit(budget // 2)
    plain.fit(budget - budget // 2)
    evaluated = cls(FL, seeder=6, **kwargs)
    evaluated.eval(n_simulations=3, eval_horizon=30)
    evaluated.fit(budget // 2)
    evaluated.eval(n_simulations=5, eval_horizon=100)
    evaluated.fit(budget - budget // 2)
    training = lambda agent: {k: v for k, v in agent.get_state().items() if not k.startswith("eval_")}  # noqa: E731
    assert training(plain).keys() == training(evaluated).keys()
    for key, value in training(plain).items():
        np.testing.assert_equal(value, training(evaluated)[key], err_msg=key)
    assert plain.total_env_steps == evaluated.total_env_steps
    assert plain.rng.bit_generator.state == evaluated.rng.bit_generator.state
    assert writer_rows(plain) == writer_rows(evaluated)


def test_eval_discounts_with_gamma():
    agent = QLearningAgent((CountdownEnv, {"length": 5}), seeder=0)
    assert agent.eval(n_simulations=3, gamma=0.5) == pytest.approx(1.9375)
    assert agent.eval(n_simulations=3, gamma=1.0) == 5.0
    assert agent.eval(n_simulations=3, gamma=1.0, eval_horizon=2) == 2.0


# ---------------------------------------------------------------------------------------------- sample_parameters
def test_other_sample_parameters():
    assert ValueIterationAgent.sample_parameters(optuna.trial.FixedTrial({"gamma": 0.97})) == {"gamma": 0.97}
    assert RandomAgent.sample_parameters(optuna.trial.FixedTrial({})) == {}
    with pytest.raises(NotImplementedError, match="PickledCounterAgent does not define sample_parameters"):
        PickledCounterAgent.sample_parameters(optuna.trial.FixedTrial({}))


# ---------------------------------------------------------------------------------------------- writer
def test_set_writer_none_disables_recording():
    silent = QLearningAgent(FL, seeder=1)
    silent.set_writer(None)
    assert not silent.writer
    assert isinstance(silent.writer, NullWriter)
    silent.fit(500)
    assert silent.writer.add_scalar("x", 1.0, 1) is None
    loud = QLearningAgent(FL, seeder=1)
    loud.fit(500)
    np.testing.assert_array_equal(silent.q, loud.q)  # writing never changes learning
    assert silent.total_env_steps == 500


def test_set_writer_replaces_the_writer():
    from rlpipe import DefaultWriter

    agent = RandomAgent(FL, seeder=1)
    mine = DefaultWriter(name="mine", print_log=False)
    agent.set_writer(mine)
    agent.fit(100)
    assert agent.writer is mine
    assert set(mine.data["tag"]) == {"episode_rewards", "episode_length"}


def test_default_writer_kwargs_and_name():
    agent = QLearningAgent(FL, seeder=0, _default_writer_kwargs={"print_log": False, "maxlen": 2})
    assert agent.name == "QLearning"
    agent.fit(2000)
    data = agent.writer.data
    assert (data["name"] == "QLearning").all()
    assert data.groupby("tag").size().to_dict() == {"episode_length": 2, "episode_rewards": 2}


def test_a_disabled_writer_answers_every_writer_method_and_refuses_typos():
    silent = QLearningAgent(FL, seeder=1)
    silent.set_writer(None)
    assert not silent.writer
    silent.writer.add_scalar("x", 1.0, 1)
    silent.writer.add_text("notes", "hello")
    with pytest.raises(AttributeError, match="did you mean 'add_scalar'"):
        silent.writer.add_scaler("x", 1.0)


# ---------------------------------------------------------------------------------------------- envs in agents
def test_eval_env_is_a_separate_instance():
    agent = QLearningAgent(FL, seeder=0)
    assert agent.eval_env is not agent.env
    assert agent.eval_env.unwrapped is not agent.env.unwrapped


def test_env_instance_copy():
    env = gym.make(FL)
    copied = QLearningAgent(env, seeder=0)
    shared = QLearningAgent(env, copy_env=False, seeder=0)
    assert copied.env is not env
    assert shared.env is env
    assert shared.eval_env is not env


def test_output_dir_is_not_created(tmp_path):
    agent = QLearningAgent(FL, seeder=0, output_dir=tmp_path / "out")
    agent.fit(10)
    assert agent.output_dir == tmp_path / "out"
    assert not (tmp_path / "out").exists()
