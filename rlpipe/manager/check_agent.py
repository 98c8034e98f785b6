"""Checks a researcher runs on an agent before trusting rlpipe with it (rlberry's ``rlberry.utils.check_agent``).

Each check builds small instances of the agent class on a small environment and raises AssertionError
with a message that says what does not hold: the same seed gives the same agent; a saved and loaded
agent acts as the original; ``fit(a); fit(b)`` equals ``fit(a + b)`` (what ``fit_is_additive = True``
declares); the agent runs through :class:`~rlpipe.ExperimentManager`. Two agents are compared by what
they do: their actions on the same observations and, for an agent with its own ``eval``, its scores.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.agents.base import Agent
from rlpipe.agents.capabilities import call_load, fits_additively, has_array_state, rolls_out_policy
from rlpipe.core.evaluation import score_agent
from rlpipe.runtime.envs import EnvSpec, make_env
from rlpipe.runtime.seeding import global_rng_state, seed_torch, unseeded_draws

SEED = 42
# rlberry's names of default test environments, as gymnasium envs
DEFAULT_ENVS = {"continuous_state": "CartPole-v1", "discrete_state": "FrozenLake-v1", "continuous_action": "Pendulum-v1"}
_PROBE_SEEDS = np.arange(5)


def check_seeding_agent(agent: type[Agent], env: EnvSpec = "continuous_state", init_kwargs: dict | None = None,
                        budget: int = 20) -> None:
    """Two agents built with the same seed and fitted alike are alike, and fit draws nothing from the global
    generators (``np.random``, ``random``), which no seed of rlpipe reaches."""
    first = _built(agent, env, init_kwargs)
    before = global_rng_state()
    first.fit(budget)
    assert not unseeded_draws(before, global_rng_state()), (
        f"{agent.__name__}.fit draws from numpy's or Python's global random generator (np.random.*, random.*), "
        "which rlpipe cannot seed: draw from self.rng")
    second = _fitted(agent, env, init_kwargs, budget)
    assert _behaviour(first, env) == _behaviour(second, env), (
        f"{agent.__name__} is not reproducible: two instances with seed {SEED} behave differently after fit({budget}). "
        "Draw randomness from self.rng, not from np.random or random")


def check_save_load(agent: type[Agent], env: EnvSpec = "continuous_state", init_kwargs: dict | None = None,
                    budget: int = 20) -> None:
    """A saved and loaded agent behaves as the original, alone and through an ExperimentManager."""
    from rlpipe.manager.experiment_manager import ExperimentManager

    original = _fitted(agent, env, init_kwargs, budget)
    with tempfile.TemporaryDirectory() as folder:
        path = original.save(Path(folder) / "agent.ckpt")
        assert path is not None and Path(path).is_file(), f"{agent.__name__}.save wrote no file"
        loaded = _loaded(agent, path, env, init_kwargs)
        assert _behaviour(loaded, env) == _behaviour(original, env), (
            f"{agent.__name__} loaded from its checkpoint does not behave as the agent that was saved")
        manager = ExperimentManager(agent, _env_tuple(env), fit_budget=budget, init_kwargs=init_kwargs, n_fit=1,
                                    seed=SEED, output_dir=folder, default_writer_kwargs={"print_log": False})
        manager.fit()
        again = ExperimentManager.load(manager.save(), allow_pickle=True)
        assert again.eval_agents(3, verbose=False) == manager.eval_agents(3, verbose=False), (
            f"{agent.__name__}: a reloaded ExperimentManager evaluates its instance differently")


def check_fit_additive(agent: type[Agent], env: EnvSpec = "continuous_state", init_kwargs: dict | None = None,
                       budget: int = 10) -> None:
    """``fit(budget); save; load; fit(budget)`` gives the agent that ``fit(2 * budget)`` gives (``fit_is_additive``):
    an additive agent is fitted in checkpointed chunks, and resumed from a checkpoint after a kill."""
    split = _built(agent, env, init_kwargs)
    split.fit(budget)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "agent.ckpt"
        split = _loaded(agent, split.save(target) or target, env, init_kwargs)
    split.fit(budget)
    whole = _fitted(agent, env, init_kwargs, 2 * budget)
    assert _behaviour(split, env) == _behaviour(whole, env), (
        f"{agent.__name__}: fit({budget}); save; load; fit({budget}) differs from fit({2 * budget}), so its fit is "
        "not additive"
        + (": it must not declare fit_is_additive = True" if fits_additively(agent) else ""))


def check_rl_agent(agent: type[Agent], env: EnvSpec = "continuous_state", init_kwargs: dict | None = None) -> None:
    """Every check that applies: seeding, save and load, and additivity if the agent declares it."""
    check_seeding_agent(agent, env, init_kwargs)
    check_save_load(agent, env, init_kwargs)
    if fits_additively(agent):
        check_fit_additive(agent, env, init_kwargs)


def _env_tuple(env: EnvSpec) -> EnvSpec:
    return (DEFAULT_ENVS[env], {}) if isinstance(env, str) and env in DEFAULT_ENVS else env


def _kwargs(env: EnvSpec, init_kwargs: dict | None) -> dict[str, Any]:
    return {"env": _env_tuple(env), "seeder": SEED, "_default_writer_kwargs": {"print_log": False}, **(init_kwargs or {})}


def _built(agent: type[Agent], env: EnvSpec, init_kwargs: dict | None) -> Agent:
    seed_torch(SEED)  # as the pipeline does when it builds an agent
    return agent(**_kwargs(env, init_kwargs))


def _loaded(agent: type[Agent], path: Any, env: EnvSpec, init_kwargs: dict | None) -> Agent:
    seed_torch(SEED)
    return call_load(agent, path, allow_pickle=True, **_kwargs(env, init_kwargs))


def _fitted(agent: type[Agent], env: EnvSpec, init_kwargs: dict | None, budget: int) -> Agent:
    built = _built(agent, env, init_kwargs)
    built.fit(budget)
    return built


def _behaviour(agent: Agent, env: EnvSpec) -> dict[str, Any]:
    """What the agent learned and does, as plain values: its learned state (``get_state``, else its public numeric
    attributes) and generator state, and its actions on observations of seeded resets (policy agents) or the
    scores of its own ``eval`` with seeded eval envs."""
    state = agent.get_state() if has_array_state(type(agent)) else {
        name: value for name, value in vars(agent).items()
        if not name.startswith("_") and isinstance(value, (np.ndarray, np.generic, int, float, bool, list, tuple))}
    learned = {name: np.asarray(value).tolist() for name, value in state.items()}
    if not rolls_out_policy(type(agent)):
        acts = score_agent(agent, {}, _PROBE_SEEDS)["score"].tolist()
    else:
        probe = make_env(_env_tuple(env))
        acts = [np.asarray(agent.policy(probe.reset(seed=int(seed))[0])).tolist() for seed in _PROBE_SEEDS]
    return {"learned": learned, "rng": agent.rng.bit_generator.state, "acts": acts}
