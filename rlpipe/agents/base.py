"""Agent base classes with rlberry's Agent API.

An agent written for rlberry runs after changing only its import: its constructor keywords, ``fit``,
``eval``/``policy``, ``reseed(seed_seq)``, ``writer``, ``rng``, ``save``/``load`` are rlberry's, and its
environments are seeded from its seeder when it is built (as rlberry's ``process_env`` does), so an
agent that calls ``self.env.reset()`` / ``self.env.step()`` itself gets the same numbers for the same
seed. On top of that API, the base class offers what the pipeline can use when an agent opts in
(see :mod:`rlpipe.agents.capabilities`):

- **episode helpers** ``current_observation()`` / ``step_env(action)``: every episode is reset with a
  seed drawn from the agent's own ``rng``, ``episode_rewards`` and ``episode_length`` are written at
  the end of each episode with ``global_step`` = total environment steps, and the episode in progress
  is recorded (reset seed + actions) so that a checkpoint can restore the environment mid-episode;
- **checkpoints without pickle**: subclasses return their learned state from ``get_state()`` as
  arrays and JSON values, and restore it in ``set_state()``; ``save``/``load`` add the states of the
  agent's generators, of its environments' and their spaces' generators (what ``env.step`` and
  ``action_space.sample()`` draw from), and the episode in progress. Agents without ``get_state`` are
  saved with cloudpickle (trusted use only);
- **additive fit**: ``fit(a); fit(b)`` trains exactly as ``fit(a + b)`` for agents built on the helpers;
  an agent declares it with ``fit_is_additive = True``, and only then is it fitted in chunks.
"""
from __future__ import annotations

import inspect
import os
import uuid
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rlpipe.errors import CheckpointError
from rlpipe.io.checkpoint import (
    is_pickle_checkpoint,
    read_checkpoint,
    read_pickle_checkpoint,
    write_checkpoint,
    write_pickle_checkpoint,
)
from rlpipe.io.imports import object_path
from rlpipe.runtime.envs import EnvSpec, env_generators, make_env, seed_env
from rlpipe.runtime.keywords import suggestion
from rlpipe.runtime.rollouts import run_episodes
from rlpipe.runtime.seeding import Seeder, SeedLike, seed_from_record, seed_record
from rlpipe.runtime.writer import DefaultWriter, writer_methods

# Keyed children of an agent's seed (see rlpipe.runtime.seeding): stable whatever the agent draws.
_TRAIN_ENV_KEY, _EVAL_KEY, _EVAL_ENV_KEY = 0, 1, 2
_ACTIONS = "__episode_actions__"


class NullWriter:
    """Stands in for a disabled writer: answers every writer method and records nothing, and is falsy. A name no
    writer has (a typo such as ``add_scaler``) raises, as it would with the writer enabled."""

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name in writer_methods():
            return lambda *args, **kwargs: None
        raise AttributeError(f"the writer has no method '{name}'{suggestion(name, writer_methods())}")


class Agent:
    """Base class of all agents.

    Parameters
    ----------
    env, eval_env:
        Environments or env specs (gymnasium id, ``{id|constructor, kwargs}``, ``(constructor, kwargs)``).
        ``eval_env`` defaults to a separate instance built from ``env``.
    copy_env:
        Deep-copy ``env`` when it is an instance rather than a spec.
    compress_pickle:
        Compress the checkpoint with bz2 when the agent is saved with pickle (no ``get_state``).
    seeder:
        Seed of this agent (int, SeedSequence, Seeder, or None for fresh entropy). The agent's ``rng``,
        the episode reset seeds and its environments (their ``reset`` seed and spaces) all derive from it.
    output_dir:
        Folder the agent may write to (not created until used).

    Attributes
    ----------
    fit_is_additive:
        Class attribute: True when ``fit(a); fit(b)`` trains exactly as ``fit(a + b)``. Only such
        agents are fitted in several checkpointed chunks unless an experiment asks for chunks.
    """

    name: str = ""
    fit_is_additive: bool = False

    def __init__(
        self,
        env: EnvSpec | gym.Env | None = None,
        eval_env: EnvSpec | gym.Env | None = None,
        copy_env: bool = True,
        compress_pickle: bool = True,
        seeder: SeedLike = None,
        output_dir: str | os.PathLike | None = None,
        _execution_metadata: Any = None,
        _default_writer_kwargs: dict[str, Any] | None = None,
        _thread_shared_data: dict[str, Any] | None = None,
    ) -> None:
        self.name = self.name or type(self).__name__
        self.env = None if env is None else make_env(env, copy_instance=copy_env)
        eval_source = env if eval_env is None else eval_env
        self.eval_env = make_env(eval_source, copy_instance=True)
        self.compress_pickle = compress_pickle
        self._unique_id = f"{self.name}_{uuid.uuid4().hex}"
        self.output_dir = Path(output_dir) if output_dir is not None else Path(f"output_{self._unique_id}")
        self._execution_metadata = _execution_metadata
        self._thread_shared_data = _thread_shared_data if _thread_shared_data is not None else {}
        writer_kwargs = {"name": self.name, "execution_metadata": _execution_metadata, **(_default_writer_kwargs or {})}
        self._writer: Any = DefaultWriter(**writer_kwargs)
        self.total_env_steps = 0
        self._observation: Any = None
        self._episode_seed: int | None = None
        self._episode_actions: list[Any] = []
        self._episode_return = 0.0
        self.reseed(seeder if seeder is not None else Seeder())

    # ------------------------------------------------------------------ rlberry API
    def fit(self, budget: int, **kwargs: Any) -> None:
        """Train for ``budget`` more units (environment steps for the built-in agents). Additive."""
        raise NotImplementedError

    def eval(self, **kwargs: Any) -> float:
        """A scalar score of the current agent (higher is better)."""
        raise NotImplementedError

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        """Suggest init kwargs with ``trial.suggest_*`` for hyperparameter optimisation."""
        raise NotImplementedError(f"{cls.__name__} does not define sample_parameters(trial)")

    @property
    def rng(self) -> np.random.Generator:
        return self.seeder.rng

    @property
    def writer(self) -> Any:
        return self._writer

    def set_writer(self, writer: Any) -> None:
        """Replace the writer; ``None`` disables writing (calls on the writer then do nothing)."""
        self._writer = NullWriter() if writer is None else writer

    @property
    def unique_id(self) -> str:
        return self._unique_id

    @property
    def thread_shared_data(self) -> dict[str, Any]:
        return self._thread_shared_data

    def reseed(self, seed_seq: SeedLike = None) -> None:
        """Reseed the agent (``None``: a fresh child of its current seed) and its train and eval environments."""
        self.seeder = Seeder(seed_seq) if seed_seq is not None else self.seeder.spawn(1)
        self._eval_rng = self.seeder.child(_EVAL_KEY).rng
        for env, key in ((self.env, _TRAIN_ENV_KEY), (self.eval_env, _EVAL_ENV_KEY)):
            if env is not None:
                seed_env(env, self.seeder.child(key).seed_seq)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters and their current values (rlberry's and scikit-learn's ``get_params``)."""
        names = [name for klass in type(self).__mro__ if "__init__" in vars(klass)
                 for name, parameter in inspect.signature(klass.__init__).parameters.items()
                 if name != "self" and parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)]
        return {name: getattr(self, name, None) for name in dict.fromkeys(names)}

    # ------------------------------------------------------------------ episode helpers
    def current_observation(self) -> Any:
        """Observation of the episode in progress; starts a new, seeded episode if none is running."""
        if self._episode_seed is None:
            self._episode_seed = int(self.rng.integers(2**31 - 1))
            self._observation, _ = self.env.reset(seed=self._episode_seed)
            self._episode_actions = []
            self._episode_return = 0.0
        return self._observation

    def step_env(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        """``env.step`` that counts steps, records the episode, and writes its return when it ends."""
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.total_env_steps += 1
        self._episode_return += float(reward)
        self._episode_actions.append(action)
        self._observation = observation
        if terminated or truncated:
            self.writer.add_scalar("episode_rewards", self._episode_return, self.total_env_steps)
            self.writer.add_scalar("episode_length", len(self._episode_actions), self.total_env_steps)
            self._episode_seed = None
        return observation, reward, terminated, truncated, info

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """Learned state as ``{name: ndarray | JSON value}``. Override together with :meth:`set_state`."""
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""
        raise NotImplementedError

    def save(self, filename: str | os.PathLike) -> Path:
        """Save the agent to ``filename`` (arrays + JSON; cloudpickle for agents without ``get_state``)."""
        try:
            state = self.get_state()
        except NotImplementedError:
            return self._save_pickled(filename)
        arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
        if _ACTIONS in arrays:
            raise ValueError(f"'{_ACTIONS}' is reserved in agent states")
        arrays[_ACTIONS] = np.asarray(self._episode_actions)
        meta = {
            "agent_class": object_path(type(self)),
            "state": {k: v for k, v in state.items() if not isinstance(v, np.ndarray)},
            "seed": seed_record(self.seeder.seed_seq),
            "rng": self.rng.bit_generator.state,
            "eval_rng": self._eval_rng.bit_generator.state,
            "env_generators": {name: {key: generator.bit_generator.state for key, generator in env_generators(env).items()}
                               for name, env in (("env", self.env), ("eval_env", self.eval_env))},
            "total_env_steps": self.total_env_steps,
            "episode_seed": self._episode_seed,
            "episode_return": self._episode_return,
        }
        return write_checkpoint(filename, arrays, meta)

    @classmethod
    def load(cls, filename: str | os.PathLike, allow_pickle: bool = False, **kwargs: Any) -> "Agent":
        """Build ``cls(**kwargs)`` (the init kwargs, env included) and restore the saved state into it.

        Pickled checkpoints are only read with ``allow_pickle=True``: unpickling runs code from the file.
        """
        if Path(filename).is_file() and is_pickle_checkpoint(filename):
            agent = cls(**kwargs)
            payload = read_pickle_checkpoint(filename, trusted=allow_pickle, references=agent._runtime_objects())
            _check_class(filename, payload["agent_class"], cls)
            agent.__dict__.update(payload["state"])
            return agent
        arrays, meta = read_checkpoint(filename)
        _check_class(filename, meta["agent_class"], cls)
        agent = cls(**kwargs)
        agent._restore(arrays, meta)
        return agent

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        actions = arrays.pop(_ACTIONS)
        self.reseed(seed_from_record(meta["seed"]))
        self.set_state({**meta["state"], **arrays})
        self.rng.bit_generator.state = meta["rng"]
        self._eval_rng.bit_generator.state = meta["eval_rng"]
        self.total_env_steps = meta["total_env_steps"]
        self._episode_seed = meta["episode_seed"]
        self._episode_return = meta["episode_return"]
        self._episode_actions = list(actions)
        if self._episode_seed is not None:  # replay the episode in progress: gymnasium envs are deterministic given the seed
            self._observation, _ = self.env.reset(seed=self._episode_seed)
            for action in self._episode_actions:
                self._observation, *_ = self.env.step(action)
        # Last, so that the generators are where they were at save time, whatever reseed and the replay drew:
        # an agent may draw from them between episodes (action_space.sample(), env.reset() without a seed).
        for name, env in (("env", self.env), ("eval_env", self.eval_env)):
            saved = meta.get("env_generators", {}).get(name, {})
            for key, generator in env_generators(env).items():
                if key in saved:
                    generator.bit_generator.state = saved[key]

    def _save_pickled(self, filename: str | os.PathLike) -> Path:
        payload = {"agent_class": object_path(type(self)), "state": dict(self.__dict__)}
        try:
            return write_pickle_checkpoint(filename, payload, compress=self.compress_pickle,
                                           references=self._runtime_objects())
        except Exception as error:  # name the attribute at fault: the pickler's own message rarely does
            raise CheckpointError(f"{type(self).__name__} cannot be checkpointed with pickle: {_unpicklable(self, error)}. "
                                  "Give it get_state/set_state, or create that attribute where it is used") from error

    def _runtime_objects(self) -> dict[str, Any]:
        """Objects a pickled checkpoint refers to by name instead of holding: the writer (its data is saved by
        the caller, and it may hold open files) and the caller's shared data, both given again at load."""
        return {"writer": self._writer, "thread_shared_data": self._thread_shared_data}


def _unpicklable(agent: Agent, error: Exception) -> str:
    """Which attribute of ``agent`` cannot be pickled, and why."""
    import cloudpickle

    runtime = {id(obj) for obj in agent._runtime_objects().values()}
    for name, value in vars(agent).items():
        if id(value) in runtime:
            continue
        try:
            cloudpickle.dumps(value)
        except Exception as attribute_error:
            return f"attribute '{name}' ({type(value).__name__}) cannot be pickled ({attribute_error})"
    return str(error)


def _check_class(filename: str | os.PathLike, saved: str, cls: type) -> None:
    if saved != object_path(cls):
        raise CheckpointError(f"checkpoint {filename} holds a {saved}, not a {object_path(cls)}")


class AgentWithSimplePolicy(Agent):
    """An agent with a ``policy(observation) -> action``, evaluated by Monte-Carlo rollouts."""

    def policy(self, observation: Any) -> Any:
        """The action to take in ``observation`` when evaluating."""
        raise NotImplementedError

    def eval(self, eval_horizon: int = 10**5, n_simulations: int = 10, gamma: float = 1.0, **kwargs: Any) -> float:
        """Mean discounted return of ``n_simulations`` episodes of at most ``eval_horizon`` steps on ``eval_env``.

        Episode seeds come from the agent's own evaluation stream, so evaluating never changes training.
        Other keywords are accepted and ignored, as in rlberry.
        """
        seeds = self._eval_rng.integers(2**31 - 1, size=n_simulations)
        episodes = run_episodes(self.policy, self.eval_env, seeds, eval_horizon, gamma)
        return float(np.mean(episodes["discounted_return"]))


class AgentTorch(Agent):
    """rlberry's base class of agents that hold torch modules, for rlberry code that subclasses it.

    rlpipe needs no torch for it: such an agent has no ``get_state``, so it is checkpointed with
    cloudpickle like any other (tensors included) and read back with ``allow_pickle``. Unlike
    rlberry's, loading does not move tensors to another device: a checkpoint of CUDA tensors needs
    CUDA to load.
    """
