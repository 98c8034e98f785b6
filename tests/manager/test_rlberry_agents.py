"""Bring your own agent: agents written rlberry's way (tests/rlberry_style_agents.py) in ExperimentManager and the core.

The behaviours are those rlberry users rely on (rlberry 0.7.3's manager tests: seeding, partial fit, per-instance
kwargs, eval kwargs, equality, version, preset, shared data, optimisation), asserted on values, for agents that
step ``self.env`` themselves, log their own tags, override ``eval`` without ``**kwargs``, have no ``get_state``,
need no budget, or have no environment.
"""
from __future__ import annotations

import functools
import json
import logging

import numpy as np
import pandas as pd
import pytest

from rlpipe import AgentManager, ExperimentManager, preset_manager, read_writer_data
from rlpipe.agents import AgentTorch, capabilities
from rlpipe.agents.base import AgentWithSimplePolicy
from rlpipe.core import tasks
from rlpipe.core.evaluation import score_agent
from rlpipe.errors import CheckpointError
from rlpipe.manager.experiment_manager import RLBERRY_API_VERSION
from rlpipe.runtime.seeding import global_rng_state, unseeded_draws

from rlberry_style_agents import (
    EnvlessAgent,
    GlobalRandomAgent,
    GridEnv,
    HorizonOnlyEvalAgent,
    NoBudgetAgent,
    OneStepQAgent,
    OpenFileAgent,
    OwnTagsAgent,
    PythonRandomAgent,
    SelfSteppingQAgent,
    StrictEvalAgent,
    make_lake,
)

TAXI = ("Taxi-v4", {})
LAKE = ("FrozenLake-v1", {"is_slippery": True})
QUIET = {"print_log": False}


def manager(tmp_path, agent=SelfSteppingQAgent, train_env=TAXI, **kwargs) -> ExperimentManager:
    parameters = {"fit_budget": 300, "n_fit": 3, "seed": 42, "output_dir": tmp_path, "default_writer_kwargs": QUIET}
    parameters.update(kwargs)
    return ExperimentManager(agent, train_env, **parameters)


def trajectory(env, horizon: int = 12) -> list:
    """rlberry's env-seeding probe: reset without a seed, then random actions from the action space."""
    states = [env.reset()[0]]
    states += [env.step(env.action_space.sample())[0] for _ in range(horizon)]
    return [int(s) for s in states]


def writer_values(m: ExperimentManager) -> pd.DataFrame:
    return read_writer_data(m)[["instance", "tag", "value", "global_step"]]


@pytest.fixture(autouse=True)
def _restore_rlpipe_logger():
    logger = logging.getLogger("rlpipe")
    saved = (logger.level, list(logger.handlers))
    yield
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]


# ============================================================================================ seeding
def test_an_agent_stepping_its_env_itself_is_reproducible_and_instances_differ(tmp_path) -> None:
    first, second = manager(tmp_path / "a"), manager(tmp_path / "b")
    first.fit()
    second.fit()
    pd.testing.assert_frame_equal(writer_values(first), writer_values(second))
    q = [agent.Q for agent in first.get_agent_instances()]
    for a, b in zip(q, [agent.Q for agent in second.get_agent_instances()]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(q[0], q[1]) and not np.array_equal(q[1], q[2])  # independent seeds
    assert first.eval_agents(6, verbose=False) == second.eval_agents(6, verbose=False)


def test_without_env_seeding_the_same_agent_would_not_reproduce(tmp_path) -> None:
    """The fault the seeding fixes: the agent's own env.reset() draws OS entropy unless the env was seeded."""
    import gymnasium

    agents = [SelfSteppingQAgent(gymnasium.make("Taxi-v4"), seeder=3) for _ in range(2)]
    for agent in agents:
        agent.env.unwrapped._np_random = None  # as if rlpipe had not seeded the env when building the agent
        agent.fit(400)
    assert not np.array_equal(agents[0].Q, agents[1].Q)


def test_env_trajectories_are_seeded_per_instance(tmp_path) -> None:
    """rlberry's seeding test: each instance's env gives its own trajectory, the same in a second manager."""
    one, two = manager(tmp_path / "a", n_fit=4, fit_budget=5), manager(tmp_path / "b", n_fit=4, fit_budget=5)
    one.fit()
    two.fit()
    ours = [trajectory(handler.env) for handler in one.agent_handlers]
    theirs = [trajectory(handler.env) for handler in two.agent_handlers]
    assert ours == theirs
    assert len({tuple(t) for t in ours}) == 4
    draws = [handler.seeder.rng.integers(2**32) for handler in one.agent_handlers]
    assert draws == [handler.seeder.rng.integers(2**32) for handler in two.agent_handlers]
    assert len(set(draws)) == 4


@pytest.mark.parametrize("mp_context", ["fork", "spawn"])
def test_threads_and_processes_give_identical_numbers(tmp_path, mp_context) -> None:
    threads = manager(tmp_path / "t", parallelization="thread")
    processes = manager(tmp_path / "p", parallelization="process", mp_context=mp_context)
    threads.fit()
    processes.fit()
    pd.testing.assert_frame_equal(writer_values(threads), writer_values(processes))
    threads_eval, processes_eval = threads.evaluate(), processes.evaluate()
    pd.testing.assert_frame_equal(threads_eval, processes_eval)


def test_reseed_takes_rlberrys_keyword_and_reseeds_the_envs() -> None:
    import gymnasium

    agent = SelfSteppingQAgent(gymnasium.make("Taxi-v4"), seeder=1)
    agent.reseed(seed_seq=np.random.SeedSequence(9))
    before = trajectory(agent.env)
    agent.reseed(seed_seq=np.random.SeedSequence(9))
    assert trajectory(agent.env) == before
    agent.reseed()  # None: a fresh child of the current seed
    assert trajectory(agent.env) != before


def test_an_env_with_its_own_reseed_is_reseeded_through_it() -> None:
    """rlberry's envs carry a ``reseed(seed_seq)``; rlpipe calls it, as rlberry's process_env does."""
    import gymnasium

    class ReseedableLake(gymnasium.Wrapper):
        def __init__(self):
            super().__init__(gymnasium.make("FrozenLake-v1"))
            self.seeds = []

        def reseed(self, seed_seq):
            self.seeds.append(seed_seq)
            self.env.reset(seed=int(seed_seq.generate_state(1)[0]))

    a = SelfSteppingQAgent(ReseedableLake(), seeder=4)
    b = SelfSteppingQAgent(ReseedableLake(), seeder=4)
    assert len(a.env.seeds) == 1 and isinstance(a.env.seeds[0], np.random.SeedSequence)
    assert a.env.seeds[0].entropy == b.env.seeds[0].entropy  # the same seed for the same agent seed
    assert a.eval_env.seeds[0].entropy != a.env.seeds[0].entropy  # train and eval envs get their own


# ============================================================================================ fitting
def test_partial_fit_is_additive_through_the_manager(tmp_path) -> None:
    m = manager(tmp_path, fit_budget=5)
    m.fit(10)
    m.fit(20)
    assert [handler.total_budget for handler in m.agent_handlers] == [30, 30, 30]
    rows = read_writer_data(m).query("instance == 0 and tag == 'episode_rewards'")
    assert len(rows) == 30  # the second fit's rows were appended, not lost


def test_an_additive_agent_sampling_its_spaces_continues_exactly_after_a_checkpoint(tmp_path) -> None:
    """fit(a); save; load; fit(b) == fit(a + b) for an agent that explores with ``self.env.action_space.sample()``
    and whose env draws its start states: the checkpoint keeps the env's and the spaces' generators."""
    whole = OneStepQAgent(TAXI, seeder=3)
    whole.fit(300)
    part = OneStepQAgent(TAXI, seeder=3)
    part.fit(100)
    resumed = OneStepQAgent.load(part.save(tmp_path / "agent.ckpt"), env=TAXI, seeder=3)
    for env, saved in ((resumed.env, part.env), (resumed.eval_env, part.eval_env)):
        assert env.unwrapped.np_random.bit_generator.state == saved.unwrapped.np_random.bit_generator.state
        assert env.action_space.np_random.bit_generator.state == saved.action_space.np_random.bit_generator.state
        assert (env.observation_space.np_random.bit_generator.state
                == saved.observation_space.np_random.bit_generator.state)
    resumed.fit(200)
    np.testing.assert_array_equal(resumed.counts, whole.counts)
    np.testing.assert_array_equal(resumed.totals, whole.totals)
    assert resumed.rng.bit_generator.state == whole.rng.bit_generator.state
    assert resumed.policy(7) == whole.policy(7) and resumed.eval_env.action_space.sample() == whole.eval_env.action_space.sample()

    # the same through a manager, whose second fit continues from the checkpoint on disk
    twice, once = manager(tmp_path / "twice", agent=OneStepQAgent, n_fit=2), manager(tmp_path / "once", agent=OneStepQAgent, n_fit=2)
    twice.fit(100)
    twice.fit(200)
    once.fit(300)
    for a, b in zip(twice.get_agent_instances(), once.get_agent_instances()):
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_array_equal(a.totals, b.totals)


def test_the_summary_gives_the_budget_the_instances_were_fitted_for(tmp_path) -> None:
    m = manager(tmp_path, fit_budget=100, n_fit=2, eval_kwargs={"n_simulations": 2, "eval_horizon": 20})
    m.fit()
    m.fit(300)  # rlberry: 300 more
    m.evaluate()
    summary = m.aggregate()
    assert summary["fit_budget"] == 400 and summary["fit_budget_per_instance"] == {"0": 400, "1": 400}


def test_a_non_additive_agent_is_fitted_in_one_call_unless_asked(tmp_path) -> None:
    from rlpipe.core.tasks import checkpoint_chunks

    assert not capabilities.fits_additively(SelfSteppingQAgent)
    assert checkpoint_chunks(None, SelfSteppingQAgent) == 1  # chunks would restart its episodes and counters
    assert checkpoint_chunks(None, AgentWithSimplePolicy) == 1
    from rlpipe.agents import QLearningAgent

    assert capabilities.fits_additively(QLearningAgent) and checkpoint_chunks(None, QLearningAgent) == 10
    assert checkpoint_chunks(4, SelfSteppingQAgent) == 4  # an explicit n_checkpoints is honoured


def test_per_instance_kwargs_and_handlers(tmp_path) -> None:
    m = manager(tmp_path, init_kwargs={"alpha": 0.3, "gamma": 0.5},
                init_kwargs_per_instance=[{"gamma": 0.9}, {}, {"gamma": 0.1}], fit_budget=10)
    assert len(m.agent_handlers) == 3 and all(handler.is_empty() for handler in m.agent_handlers)
    m.fit()
    assert [h.gamma for h in m.agent_handlers] == [0.9, 0.5, 0.1]
    assert [h.alpha for h in m.agent_handlers] == [0.3] * 3
    assert [h.get_params()["gamma"] for h in m.agent_handlers] == [0.9, 0.5, 0.1]  # rlberry's get_params


def test_fit_budget_minus_one_or_zero_reaches_an_agent_that_needs_none(tmp_path) -> None:
    for budget in (-1, 0):
        m = manager(tmp_path / str(budget), agent=NoBudgetAgent, train_env=LAKE, fit_budget=budget, n_fit=2)
        m.fit()
        assert [h.budgets for h in m.agent_handlers] == [[budget]] * 2
    m.fit(0)  # as rlberry: fit(0) falls back to fit_budget
    assert [h.budgets for h in m.agent_handlers] == [[0, 0]] * 2


def test_an_agent_without_an_env(tmp_path) -> None:
    m = ExperimentManager(EnvlessAgent, fit_budget=-1, n_fit=3, seed=5, output_dir=tmp_path,
                          init_kwargs={"level": 2.0}, default_writer_kwargs=QUIET)  # train_env=(None, None)
    m.fit()
    assert all(h.fitted and h.env is None and h.eval_env is None for h in m.agent_handlers)
    episodes = m.evaluate()
    assert (episodes["unit"] == "eval").all() and episodes["score"].between(1.0, 3.0).all()
    assert m.aggregate()["n_fit"] == 3


def test_compress_pickle_and_pickled_agents_keep_their_writer_wiring(tmp_path) -> None:
    """An agent without get_state is pickled; a WriterWrapper inside its env keeps writing to the agent's writer
    after a reload, so a second fit's rows are kept (they would go to a stale copy otherwise)."""
    for compress in (True, False):
        m = manager(tmp_path / str(compress), agent=OwnTagsAgent, train_env=LAKE, fit_budget=25, n_fit=2,
                    init_kwargs={"compress_pickle": compress})
        m.fit()
        m.fit()
        rows = read_writer_data(m).query("instance == 1")
        assert rows.groupby("tag").size().to_dict() == {"q_norm": 50, "reward": 50}
        agent = m.get_agent_instances()[1]
        assert agent.env.writer is agent.writer and agent.compress_pickle is compress


# ============================================================================================ eval
def test_a_custom_eval_receives_only_what_it_accepts(tmp_path) -> None:
    m = manager(tmp_path, agent=StrictEvalAgent, train_env=LAKE, fit_budget=10, n_fit=2,
                eval_kwargs={"eval_horizon": 7})
    m.fit()
    values = m.eval_agents(4, verbose=False)
    assert len(values) == 4
    calls = [call for agent in m.get_agent_instances() for call in agent.eval_calls]
    assert calls == [{"eval_horizon": 7, "n_simulations": 1}] * 4  # rlberry's n_simulations=1, nothing injected
    horizon_only = manager(tmp_path / "h", agent=HorizonOnlyEvalAgent, train_env=LAKE, fit_budget=1, n_fit=1)
    horizon_only.fit()
    assert horizon_only.eval_agents(2, verbose=False) == [5.0, 5.0]  # never passed n_simulations
    assert horizon_only.evaluate()["score"].tolist() == [5.0] * 10


def test_the_evaluate_stage_scores_a_custom_eval_one_row_per_call(tmp_path) -> None:
    m = manager(tmp_path, agent=StrictEvalAgent, train_env=LAKE, fit_budget=10, n_fit=2,
                init_kwargs={"x": 1.0}, eval_kwargs={"n_simulations": 5})
    m.fit()
    first, second = m.evaluate(), m.evaluate()
    pd.testing.assert_frame_equal(first, second)  # each row seeded from the instance's evaluation stream
    assert (first["unit"] == "eval").all() and len(first) == 10
    assert first["return"].isna().all()
    np.testing.assert_allclose(first["score"], -4.0, atol=0.05)  # -(x - 3)^2: the agent's objective, not a rollout


def test_a_policy_agent_is_rolled_out_one_row_per_episode(tmp_path) -> None:
    m = manager(tmp_path, fit_budget=2000, n_fit=1, eval_kwargs={"n_simulations": 4, "eval_horizon": 50})
    m.fit()
    episodes = m.evaluate()
    assert (episodes["unit"] == "episode").all() and len(episodes) == 4
    assert episodes["score"].equals(episodes["discounted_return"])
    assert (episodes["length"] <= 50).all()


def test_score_agent_is_the_one_scorer() -> None:
    """The evaluate stage, optimize trials and comparisons all score through score_agent."""
    import gymnasium

    strict = StrictEvalAgent(gymnasium.make("FrozenLake-v1"), x=3.0, seeder=0)
    rows = score_agent(strict, {"eval_horizon": 9}, np.array([1, 2, 3]))
    assert rows["unit"] == "eval" and rows["score"].shape == (3,) and np.allclose(rows["score"], 0.0, atol=0.05)
    assert strict.eval_calls == [{"eval_horizon": 9, "n_simulations": 1}] * 3
    again = StrictEvalAgent(gymnasium.make("FrozenLake-v1"), x=3.0, seeder=0)
    np.testing.assert_array_equal(score_agent(again, {"eval_horizon": 9}, np.array([1, 2, 3]))["score"], rows["score"])


def test_base_eval_takes_rlberrys_extra_keywords() -> None:
    import gymnasium

    agent = SelfSteppingQAgent(gymnasium.make("FrozenLake-v1"), seeder=0)
    assert agent.eval(eval_horizon=3, n_simulations=2, gamma=0.5, some_rlberry_key=1) == 0.0


@pytest.mark.parametrize("kwargs, message", [
    ({"eval_kwargs": {"horizon": 3}}, "StrictEvalAgent.eval does not accept 'horizon'"),
    ({"eval_kwargs": {"gama": 0.9}, "agent": SelfSteppingQAgent}, "the policy rollout of SelfSteppingQAgent does not accept 'gama'"),
    ({"train_env": (None, None), "agent": SelfSteppingQAgent}, "needs an environment"),
])
def test_the_manager_refuses_what_the_agent_cannot_do_at_construction(tmp_path, kwargs, message) -> None:
    parameters = {"agent": StrictEvalAgent, "train_env": LAKE, **kwargs}
    with pytest.raises(ValueError, match=message):
        manager(tmp_path, **parameters)


# ============================================================================================ rlberry API
def test_equality_version_alias_and_preset(tmp_path) -> None:
    kwargs = {"init_kwargs": {"alpha": 0.2}, "init_kwargs_per_instance": [{"gamma": g} for g in (0.1, 0.2, 0.3)]}
    a, b = manager(tmp_path, **kwargs), manager(tmp_path, **kwargs)
    assert a == b
    assert a != manager(tmp_path, fit_budget=42, **kwargs)
    assert a != manager(tmp_path, eval_kwargs={"eval_horizon": 3}, **kwargs)
    assert a.rlberry_version == RLBERRY_API_VERSION and a.rlpipe_version
    assert AgentManager is ExperimentManager
    Preset = preset_manager(train_env=LAKE, fit_budget=4, n_fit=2, seed=1, output_dir=tmp_path,
                            default_writer_kwargs=QUIET)
    preset = Preset(NoBudgetAgent)
    preset.fit()
    assert isinstance(preset, ExperimentManager) and [h.budgets for h in preset.agent_handlers] == [[4], [4]]


def test_any_python_value_in_kwargs_is_recorded(tmp_path) -> None:
    """Tuple-keyed dicts, partials and callable objects: hashed, recorded in fit.json, saved and loaded."""
    m = manager(tmp_path, agent=StrictEvalAgent, train_env=(functools.partial(make_lake, map_name="4x4"), {}),
                eval_env=(GridEnv(slippery=False), {}), fit_budget=5, n_fit=1,
                init_kwargs={"x": 1.0}, fit_kwargs={"reward_at": {(4, 4): 1.0, (0, 1): 0.5}})
    m.fit()
    record = (m.paths.instance(0).fit_record).read_text()
    assert '"__items__"' in record and "make_lake" in record and "GridEnv" in record
    again = manager(tmp_path / "again", agent=StrictEvalAgent, train_env=(functools.partial(make_lake, map_name="4x4"), {}),
                    eval_env=(GridEnv(slippery=False), {}), fit_budget=5, n_fit=1,
                    init_kwargs={"x": 1.0}, fit_kwargs={"reward_at": {(0, 1): 0.5, (4, 4): 1.0}})
    assert (tasks.fit_task(again.spec, again.seeder.seed_seq, 0).task_hash()
            == tasks.fit_task(m.spec, m.seeder.seed_seq, 0).task_hash())
    saved = m.save()
    assert '"__items__"' in saved.read_text() and '"__partial__"' in saved.read_text()  # JSON, not pickled
    loaded = ExperimentManager.load(saved, allow_pickle=True)  # (the callable object GridEnv is pickled)
    assert loaded.fit_kwargs == {"reward_at": {(4, 4): 1.0, (0, 1): 0.5}}
    pd.testing.assert_frame_equal(loaded.evaluate(), m.evaluate())


# ============================================================================================ optimisation
def test_optimisation_tunes_the_agents_own_eval(tmp_path) -> None:
    """StrictEvalAgent's eval peaks at x = 3 whatever it learned; a rollout would score every x alike (policy 0)."""
    m = manager(tmp_path, agent=StrictEvalAgent, train_env=LAKE, fit_budget=5, n_fit=1,
                eval_kwargs={"eval_horizon": 4, "n_simulations": 2})
    best = m.optimize_hyperparams(n_trials=12, n_fit=1, sampler_method="random", pruner_method="none",
                                  n_optuna_workers=1, timeout=None)
    assert abs(best["x"] - 3.0) < 1.0
    trials = pd.read_parquet(m.paths.optimize.trials)
    assert trials["value"].max() > -1.0 and trials["value"].min() < -1.0  # the objective varied with x


def test_the_optuna_study_is_kept_as_rlberry_keeps_it(tmp_path) -> None:
    m = manager(tmp_path, agent=StrictEvalAgent, train_env=LAKE, fit_budget=2, n_fit=1)
    assert m.optuna_study is None
    m.optimize_hyperparams(n_trials=3, n_fit=1, sampler_method="random", pruner_method="none", n_optuna_workers=1,
                           timeout=None)
    assert len(m.optuna_study.trials) == 3 and m.optuna_study.best_params["x"] == pytest.approx(m.init_kwargs["x"])


# ============================================================================================ honest failures
def test_draws_from_the_global_generators_are_reported(tmp_path, caplog) -> None:
    """rlpipe cannot seed np.random for an agent; it says so in the log and in fit.json, instead of failing silently."""
    noisy = manager(tmp_path / "g", agent=GlobalRandomAgent, train_env=LAKE, fit_budget=5, n_fit=1)
    with caplog.at_level(logging.WARNING, logger="rlpipe"):
        noisy.fit()
    assert "drew from numpy's or Python's global random generator" in caplog.text
    assert '"unseeded_draws": true' in noisy.paths.instance(0).fit_record.read_text()
    clean = manager(tmp_path / "c", fit_budget=5, n_fit=1)
    clean.fit()
    assert '"unseeded_draws": false' in clean.paths.instance(0).fit_record.read_text()


def test_draws_from_pythons_random_module_are_reported(tmp_path, caplog) -> None:
    """Python's ``random`` is a global generator too: an agent drawing ``random.randint`` is reported as one drawing
    ``np.random`` is, and the fingerprint names Python's generator, not numpy's."""
    noisy = manager(tmp_path, agent=PythonRandomAgent, train_env=LAKE, fit_budget=5, n_fit=1)
    before = global_rng_state()
    with caplog.at_level(logging.WARNING, logger="rlpipe"):
        noisy.fit()
    drawn = unseeded_draws(before, global_rng_state())
    assert "PythonRandomAgent drew from numpy's or Python's global random generator" in caplog.text
    record = json.loads(noisy.paths.instance(0).fit_record.read_text())
    assert record["unseeded_draws"] in (True, ["random"])  # a flag, or the generators' names
    assert drawn == ["random"]


def test_an_agent_that_cannot_be_pickled_is_named_with_its_attribute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    m = manager(tmp_path, agent=OpenFileAgent, train_env=LAKE, fit_budget=1, n_fit=1)
    with pytest.raises(CheckpointError) as raised:  # its type kept through the manager's pool
        m.fit()
    message = str(raised.value)
    assert "attribute 'log_file' (TextIOWrapper) cannot be pickled" in message and "get_state/set_state" in message


def test_rlberrys_torch_base_class_and_budget_message(tmp_path) -> None:
    class TorchStyle(AgentTorch):
        def fit(self, budget, **kwargs):
            self.total = budget

        def eval(self, eval_horizon=10**5, n_simulations=10, gamma=1.0, **kwargs):
            return float(self.total)

    m = ExperimentManager(TorchStyle, LAKE, fit_budget=3, n_fit=2, output_dir=tmp_path, default_writer_kwargs=QUIET)
    m.fit()
    assert m.eval_agents(2, verbose=False) == [3.0, 3.0]
    with pytest.raises(ValueError, match=r"\[ExperimentManager\] fit_budget missing in __init__\(\)\."):
        ExperimentManager(TorchStyle, LAKE, output_dir=tmp_path)
