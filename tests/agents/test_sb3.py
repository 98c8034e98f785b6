"""The Stable-Baselines3 agents (the optional extra): each algorithm fitted in chunks and resumed from a checkpoint
exactly as in one fit, seeded, run by the ExperimentManager, validated as a config is, and tuned with its search space.

Tiny budgets and networks, CPU. The pipeline's own runs (Snakemake, a SIGKILLed fit job) are in
tests/pipeline/test_sb3_e2e.py.
"""
from __future__ import annotations

import inspect

import numpy as np
import optuna
import pytest

from rlpipe.errors import ConfigError
from rlpipe.manager.experiment_manager import ExperimentManager
from rlpipe.runtime.seeding import global_rng_state, unseeded_draws
from rlpipe.spec.experiment import validate_study
from rlpipe.spec.search_space import defines_sample_parameters, tuned_keys

from agent_assertions import assert_same_state, writer_rows

pytest.importorskip("stable_baselines3", reason="the sb3 extra is not installed: pip install -e '.[sb3]'")

import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

from rlpipe.agents.sb3 import AGENTS, A2CAgent, DQNAgent, PPOAgent, SB3Agent, TD3Agent  # noqa: E402

QUIET = {"print_log": False}
TINY_NET = {"net_arch": [16]}
# (env, init kwargs, first budget, second budget): small, yet each algorithm learns (updates) in the first budget, and
# the first fit ends mid-episode (checked), so a checkpoint after it must restore an episode in progress.
SETTINGS = {
    "PPO": ("CartPole-v1", {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "policy_kwargs": TINY_NET}, 150, 200),
    "A2C": ("CartPole-v1", {"n_steps": 8, "policy_kwargs": TINY_NET}, 50, 70),
    "DQN": ("CartPole-v1", {"n_timesteps": 400, "learning_starts": 50, "train_freq": 4, "buffer_size": 1000,
                            "policy_kwargs": TINY_NET}, 150, 250),
    "SAC": ("Pendulum-v1", {"learning_starts": 50, "batch_size": 32, "buffer_size": 1000, "policy_kwargs": TINY_NET}, 120, 130),
    "TD3": ("Pendulum-v1", {"learning_starts": 50, "batch_size": 32, "buffer_size": 1000, "policy_kwargs": TINY_NET,
                            "action_noise": {"type": "ornstein_uhlenbeck", "sigma": 0.2}}, 120, 130),
}


def make(algo: str, seed: int = 1, **overrides):
    env, kwargs, *_ = SETTINGS[algo]
    return AGENTS[algo](env, seeder=seed, _default_writer_kwargs=QUIET, **{**kwargs, **overrides})


@pytest.mark.parametrize("algo", list(SETTINGS))
def test_chunked_and_resumed_fits_equal_one_fit(algo, tmp_path):
    """fit(a); fit(b) and fit(a); save; load; fit(b) give the agent and the writer rows of fit(a + b), bit for bit, and
    draw nothing from the process's global generators (SB3 uses the agent's own copy of them)."""
    _, _, first, second = SETTINGS[algo]
    before = global_rng_state()
    whole = make(algo)
    whole.fit(first + second)
    assert unseeded_draws(before, global_rng_state()) == []
    assert whole.total_env_steps >= first + second and whole.model.num_timesteps == whole.total_env_steps

    split = make(algo)
    split.fit(first)
    assert split._record.episode_actions, "the first fit ended between episodes: the checkpoint proves less"
    path = split.save(tmp_path / "agent.ckpt")
    resumed = type(split).load(path, env=SETTINGS[algo][0], seeder=1, _default_writer_kwargs=QUIET,
                               **SETTINGS[algo][1])
    assert_same_state(split, resumed)
    rows_before = len(writer_rows(split))
    split.fit(second)
    resumed.fit(second)
    for agent in (split, resumed):
        assert_same_state(whole, agent)
        assert agent.total_env_steps == whole.total_env_steps
    assert writer_rows(split) == writer_rows(whole)
    assert writer_rows(resumed) == writer_rows(whole)[rows_before:]  # a loaded agent's writer starts empty
    if algo in ("DQN", "SAC", "TD3"):
        assert whole.model.replay_buffer.pos > 0 and "replay.observations" in whole.get_state()


def test_writer_rows_hold_episodes_and_sb3s_training_metrics():
    agent = make("PPO")
    agent.fit(300)
    tags = set(agent.writer.data["tag"])
    assert {"episode_rewards", "episode_length", "train/loss", "train/entropy_loss", "train/value_loss",
            "rollout/ep_rew_mean"} <= tags
    assert not [tag for tag in tags if tag.startswith("time/")]  # wall clock: never reproducible
    episodes = agent.writer.read_tag_value("episode_length")
    assert episodes.index.is_monotonic_increasing and episodes.sum() <= agent.total_env_steps
    losses = agent.writer.read_tag_value("train/loss")
    assert list(losses.index) == [128.0, 192.0, 256.0, 320.0]  # one dump per rollout after the first, at its step


def test_the_budget_counts_environment_steps_in_total():
    """An on-policy rollout may pass the budget; the next fit then takes only what is left of the total."""
    agent = make("PPO")  # n_steps 64
    agent.fit(100)
    assert agent.total_env_steps == 128
    agent.fit(20)  # 120 steps asked in all: already taken
    assert agent.total_env_steps == 128
    agent.fit(20)  # 140: one more rollout
    assert agent.total_env_steps == 192
    with pytest.raises(ValueError, match="non-negative integer"):
        agent.fit(-1)
    with pytest.raises(TypeError, match="no keyword arguments"):
        agent.fit(10, log_interval=2)


def test_same_seed_same_agents_different_seed_differs():
    a, b, c = make("SAC", seed=5), make("SAC", seed=5), make("SAC", seed=6)
    for agent in (a, b, c):
        agent.fit(80)
    assert_same_state(a, b)
    assert writer_rows(a) == writer_rows(b)
    assert not np.array_equal(a.get_state()["replay.actions"], c.get_state()["replay.actions"])


def test_torch_runs_on_the_agents_threads_and_the_process_keeps_its_own(monkeypatch):
    agent = make("PPO", torch_threads=1)
    seen = []
    train = agent.model.train
    monkeypatch.setattr(agent.model, "train", lambda: (seen.append(torch.get_num_threads()), train()))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        agent.fit(64)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_the_policy_is_sb3s_deterministic_prediction_and_the_export_loads_in_sb3(tmp_path):
    agent = make("PPO")
    agent.fit(128)
    probe = agent.eval_env
    observations = [probe.reset(seed=seed)[0] for seed in range(5)]
    state = agent.rng.bit_generator.state
    actions = [agent.policy(observation) for observation in observations]
    assert agent.rng.bit_generator.state == state and all(isinstance(action, int) for action in actions)
    assert actions == [int(agent.model.predict(o, deterministic=True)[0]) for o in observations]
    agent.export_sb3(tmp_path / "model.zip")
    model = PPO.load(tmp_path / "model.zip", device="cpu")
    assert actions == [int(model.predict(o, deterministic=True)[0]) for o in observations]
    continuous = make("SAC")
    assert continuous.policy(continuous.eval_env.reset(seed=0)[0]).shape == (1,)


@pytest.mark.parametrize("algo", list(SETTINGS))
def test_every_algorithm_runs_through_the_experiment_manager(algo, tmp_path):
    """Two instances in threads (SB3 fits take turns: they train on process-global generators), fitted in the
    default 10 checkpointed chunks, evaluated by the pipeline's evaluate stage."""
    env, kwargs, first, second = SETTINGS[algo]
    manager = ExperimentManager(AGENTS[algo], (env, {}), fit_budget=first + second, init_kwargs=kwargs, n_fit=2,
                                seed=3, output_dir=tmp_path / "a", default_writer_kwargs=QUIET,
                                eval_kwargs={"eval_horizon": 50, "n_simulations": 2})
    manager.fit()
    agents = manager.get_agent_instances()
    assert [agent.total_env_steps >= first + second for agent in agents] == [True, True]
    weights = [torch.nn.utils.parameters_to_vector(agent.model.policy.parameters()) for agent in agents]
    assert not torch.equal(*weights)  # two seeds
    episodes = manager.evaluate()
    assert len(episodes) == 4 and set(episodes["unit"]) == {"episode"}
    data = manager.get_writer_data()
    assert "episode_rewards" in set(data[0]["tag"])
    if algo == "PPO":  # the same seed gives the same instances, whatever the threads did meanwhile
        again = ExperimentManager(AGENTS[algo], (env, {}), fit_budget=first + second, init_kwargs=kwargs, n_fit=2,
                                  seed=3, output_dir=tmp_path / "b", default_writer_kwargs=QUIET,
                                  eval_kwargs={"eval_horizon": 50, "n_simulations": 2})
        again.fit()
        for i in range(2):
            columns = ["tag", "value", "global_step"]
            assert data[i][columns].equals(again.get_writer_data()[i][columns])
        assert episodes.equals(again.evaluate())


def test_config_values_become_sb3_arguments():
    agent = PPOAgent("CartPole-v1", seeder=0, n_steps=32, batch_size=16, n_epochs=1, learning_rate="lin_1.0e-3",
                     clip_range="lin_0.2", n_timesteps=320, policy_kwargs={"net_arch": [8], "activation_fn": "relu"})
    assert agent.model.lr_schedule(1.0) == pytest.approx(1e-3) and agent.model.lr_schedule(0.25) == pytest.approx(2.5e-4)
    assert isinstance(agent.model.policy.mlp_extractor.policy_net[1], torch.nn.ReLU)
    agent.fit(96)  # progress is measured against n_timesteps, not against this call
    assert agent.model._current_progress_remaining == pytest.approx(1 - 96 / 320)
    dqn = DQNAgent("CartPole-v1", seeder=0, n_timesteps=100, train_freq=[2, "episode"], learning_starts=10)
    assert (dqn.model.train_freq.frequency, dqn.model.train_freq.unit.value) == (2, "episode")
    td3 = TD3Agent("Pendulum-v1", seeder=0, action_noise={"type": "normal", "sigma": 0.3})
    assert td3.model.action_noise._sigma.tolist() == [0.3]


@pytest.mark.parametrize("kwargs, message", [
    ({"algo": "PPO2"}, "algo must be one of PPO, A2C, DQN, SAC, TD3"),
    ({"algo": "PPO", "buffer_size": 10}, "PPO does not accept 'buffer_size'"),
    ({"algo": "PPO", "n_step": 10}, "did you mean 'n_steps'"),
    ({"algo": "PPO", "seed": 1}, "PPO does not accept 'seed'"),
    ({"algo": "PPO", "action_noise": {"type": "normal"}}, "SAC and TD3 do"),
    ({"algo": "DQN"}, "give n_timesteps"),
    ({"algo": "PPO", "learning_rate": "lin_1e-3"}, "give n_timesteps"),
    ({"algo": "PPO", "learning_rate": "linear", "n_timesteps": 10}, "'lin_<start>'"),
    ({"algo": "SAC", "action_noise": {"type": "normal", "std": 0.1}}, "type, sigma and mean"),
    ({"algo": "PPO", "torch_threads": 0}, "torch_threads must be a positive integer"),
])
def test_bad_arguments_are_named(kwargs, message):
    env = "Pendulum-v1" if kwargs["algo"] == "SAC" else "CartPole-v1"
    with pytest.raises(ValueError, match=message):
        SB3Agent(env, **kwargs)
    with pytest.raises(ValueError, match="runs PPO, not DQN"):
        PPOAgent("CartPole-v1", algo="DQN")


def test_validation_checks_init_kwargs_against_the_algorithm():
    def study(agent, init_kwargs):
        return {"experiments": {"x": {"agent": agent, "train_env": "CartPole-v1", "fit_budget": 100,
                                      "init_kwargs": init_kwargs}}}
    validate_study(study("rlpipe.agents.sb3:PPOAgent", {"n_steps": 64, "n_timesteps": 100}))
    validate_study(study("rlpipe.agents.sb3.SB3Agent", {"algo": "DQN", "buffer_size": 100, "n_timesteps": 100}))
    with pytest.raises(ConfigError, match="PPOAgent does not accept 'buffer_size'"):
        validate_study(study("rlpipe.agents.sb3:PPOAgent", {"buffer_size": 100}))
    with pytest.raises(ConfigError, match="SB3Agent does not accept 'learning_startz' \\(did you mean 'learning_starts'"):
        validate_study(study("rlpipe.agents.sb3:SB3Agent", {"algo": "DQN", "learning_startz": 1}))


@pytest.mark.parametrize("algo", list(SETTINGS))
def test_the_search_space_samples_with_a_real_optuna_trial(algo):
    agent_class = AGENTS[algo]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        sampled = agent_class.sample_parameters(trial)
        assert set(sampled) == set(tuned_keys(agent_class, None))  # the same keys whatever the draw
        extra = {"n_timesteps": 1000} if algo == "DQN" else {}
        agent = agent_class(SETTINGS[algo][0], seeder=0, **sampled, **extra)  # every value is one SB3 takes
        assert agent.model.gamma == sampled["gamma"] and 0.9 < sampled["gamma"] < 1
        study.tell(trial, 0.0)


def test_a_users_subclass_keeps_what_it_defines_and_inherits_the_rest():
    class NarrowPPO(PPOAgent):
        @classmethod
        def sample_parameters(cls, trial):
            return {"n_steps": trial.suggest_categorical("n_steps", [32, 64])}

    class FixedStepsPPO(PPOAgent):
        def __init__(self, env=None, **kwargs):
            super().__init__(env, n_steps=64, **kwargs)

    class NarrowFixedPPO(NarrowPPO, FixedStepsPPO):
        pass

    class OwnPPO(SB3Agent):
        algo = "PPO"

    trial = optuna.trial.FixedTrial({"n_steps": 32})
    assert NarrowPPO.sample_parameters(trial) == NarrowFixedPPO.sample_parameters(trial) == {"n_steps": 32}
    assert NarrowFixedPPO("CartPole-v1", seeder=0).model.n_steps == 64  # FixedStepsPPO's __init__ still runs
    assert "n_steps" in inspect.signature(OwnPPO.__init__).parameters and defines_sample_parameters(OwnPPO)
    assert "n_steps" in inspect.signature(NarrowPPO.__init__).parameters  # PPO's arguments, for validation
    assert PPOAgent.__init__ is not A2CAgent.__init__ and PPOAgent.__init__.__qualname__ == "PPOAgent.__init__"
    assert FixedStepsPPO("CartPole-v1", seeder=0).model.n_steps == 64
    assert not defines_sample_parameters(SB3Agent)  # its algorithm is only known per instance


def test_the_manager_tunes_an_sb3_agent_with_its_search_space(tmp_path):
    manager = ExperimentManager(A2CAgent, ("CartPole-v1", {}), fit_budget=128, n_fit=1, seed=0, output_dir=tmp_path,
                                default_writer_kwargs=QUIET, eval_kwargs={"eval_horizon": 30, "n_simulations": 2})
    best = manager.optimize_hyperparams(n_trials=2, n_fit=1, n_optuna_workers=1, timeout=None, sampler_method="random")
    assert set(best) == set(tuned_keys(A2CAgent, None)) and manager.init_kwargs["n_steps"] == best["n_steps"]
    assert len(manager.optuna_study.trials) == 2


def test_the_readmes_deep_rl_example_runs(tmp_path, monkeypatch):
    """As written, but on a budget of seconds."""
    from test_readme import README, python_blocks

    block = next(block for block in python_blocks() if "rlpipe.agents.sb3" in block)
    small = block.replace("fit_budget=20_000", "fit_budget=150").replace("n_fit=4", "n_fit=2").replace(
        '"n_simulations": 20', '"n_simulations": 2')
    assert "fit_budget=150" in small and "n_fit=2" in small and '"n_simulations": 2}' in small
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(small, str(README), "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["model"].num_timesteps >= 150 and len(namespace["manager"].get_agent_instances()) == 2
