"""Stable-Baselines3 algorithms as rlpipe agents: the optional extra, ``pip install -e ".[sb3]"``.

Importing this module imports torch and SB3; nothing else in rlpipe does. Name an agent in a config as
``rlpipe.agents.sb3:PPOAgent`` (or ``A2CAgent``, ``DQNAgent``, ``SACAgent``, ``TD3Agent``: each with its algorithm's
search space for ``optimize``), or ``rlpipe.agents.sb3:SB3Agent`` with ``algo: PPO``. Every other init kwarg is the
algorithm's own (``learning_rate``, ``n_steps``, ``buffer_size``…), checked against its signature at validation.

What the adapter adds to SB3, so that an instance behaves as rlpipe's built-in agents do:

- **Seeding.** SB3's ``seed`` is drawn from a keyed child of the instance's seed. SB3 seeds and draws from the
  process-global generators (``np.random``, ``random``, torch), so the agent keeps its own copy of their states and
  swaps it in only while it trains (under a process-wide lock: SB3 agents fitted in threads of one process take
  turns); torch runs on ``torch_threads`` threads meanwhile (1 by default: the results then do not depend on the
  machine's cores, and small networks train fastest so).
- **Writer.** ``episode_rewards`` and ``episode_length`` at the end of each training episode, and every value SB3's
  logger dumps (``train/loss``, ``train/entropy_loss``, ``rollout/ep_rew_mean``…, but not ``time/*``, which are wall
  clock), all with ``global_step`` = environment steps.
- **Additive fit.** ``fit(a); fit(b)`` continues training (``reset_num_timesteps=False``) and trains exactly as
  ``fit(a + b)``: the budget counts environment steps in total, SB3's schedules measure progress against a fixed
  ``n_timesteps`` rather than against the current ``learn`` call, and the action noise is not reset between calls.
  An on-policy algorithm only stops at the end of a rollout and an off-policy one after ``train_freq``, so
  ``total_env_steps`` may pass the budget by less than one rollout (``n_steps``; ``train_freq``).
- **Checkpoints without pickle** (``get_state``): the networks and optimizers, the replay buffer, the generators'
  states, SB3's counters and pending log values, and the training episode in progress (replayed from its reset and
  actions), so a fit resumed from a checkpoint continues bit for bit, on the CPU.
- **Evaluation** by rlpipe's rollouts of the deterministic policy (``model.predict(obs, deterministic=True)``).

One training environment per instance (SB3's vectorised envs with ``n_envs > 1`` are not supported).
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import numbers
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import get_device, get_linear_fn
from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

from rlpipe.agents.base import AgentWithSimplePolicy
from rlpipe.agents.sb3_search import SAMPLERS
from rlpipe.agents.sb3_state import (
    EpisodeRecord,
    GlobalGenerators,
    decode,
    encode,
    replay_buffer_state,
    replay_episode,
    set_replay_buffer_state,
)
from rlpipe.io.imports import import_object
from rlpipe.runtime.keywords import rejected_keywords
from rlpipe.runtime.seeding import GLOBAL_GENERATORS_LOCK, SeedLike, name_key

_SB3_SEED_KEY = name_key("stable-baselines3")  # SB3's seed: a keyed child of the agent's seed (see rlpipe.runtime.seeding)
# Arguments of SB3's algorithms that the adapter sets itself (or has its own form of), never passed through.
_MANAGED = {"policy", "env", "seed", "device", "verbose", "tensorboard_log", "_init_setup_model", "policy_kwargs",
            "action_noise", "replay_buffer_class", "rollout_buffer_class"}
_SCHEDULES = ("learning_rate", "clip_range", "clip_range_vf")  # a number, "lin_<start>" or a callable of the progress
_COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "_current_progress_remaining", "_n_calls", "exploration_rate")
_ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU", "elu": "ELU", "leaky_relu": "LeakyReLU", "gelu": "GELU", "silu": "SiLU",
                "sigmoid": "Sigmoid"}


class _FixedHorizon:
    """SB3's schedules (learning rate, PPO's clip range, DQN's ε) read a progress that SB3 measures against the end of
    the current ``learn`` call, so splitting a budget over several calls would change them. Here it is measured
    against a fixed length, ``n_timesteps``: ``1 - num_timesteps / n_timesteps``, floored at 0 (1 when not given)."""

    n_timesteps: int | None = None

    def _update_current_progress_remaining(self, num_timesteps: int, total_timesteps: int) -> None:
        horizon = self.n_timesteps
        self._current_progress_remaining = 1.0 if horizon is None else max(0.0, 1.0 - num_timesteps / horizon)


class _PPO(_FixedHorizon, PPO):
    pass


class _A2C(_FixedHorizon, A2C):
    pass


class _DQN(_FixedHorizon, DQN):
    pass


class _SAC(_FixedHorizon, SAC):
    pass


class _TD3(_FixedHorizon, TD3):
    pass


SB3_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "A2C": A2C, "DQN": DQN, "SAC": SAC, "TD3": TD3}
_TRAINED = {"PPO": _PPO, "A2C": _A2C, "DQN": _DQN, "SAC": _SAC, "TD3": _TD3}


def algorithm_keywords(algo: str) -> dict[str, inspect.Parameter]:
    """The keyword arguments of SB3's ``algo`` that an agent passes through (all but those it sets itself)."""
    parameters = inspect.signature(SB3_ALGORITHMS[algo].__init__).parameters.values()
    return {p.name: p for p in parameters if p.name != "self" and p.name not in _MANAGED}


class SB3Agent(AgentWithSimplePolicy):
    """A Stable-Baselines3 algorithm fitted, checkpointed, evaluated and tuned as rlpipe's built-in agents are.

    Parameters
    ----------
    env:
        Training environment or env spec.
    algo:
        ``"PPO"``, ``"A2C"``, ``"DQN"``, ``"SAC"`` or ``"TD3"`` (fixed by the subclasses ``PPOAgent``…).
    policy:
        SB3's policy: ``"MlpPolicy"`` (default), ``"CnnPolicy"``, ``"MultiInputPolicy"``, or a policy class.
    policy_kwargs:
        SB3's ``policy_kwargs``; as a config writes them, ``activation_fn`` may be a name (``tanh``, ``relu``, ``elu``,
        ``leaky_relu``, ``gelu``, ``silu``, ``sigmoid``) or an import path, and a ``*_class`` value an import path.
    device:
        Torch device, ``"cpu"`` by default (bit-identical results are only promised there).
    n_timesteps:
        The training length SB3's schedules refer to: linear learning rates or clip ranges (``"lin_<start>"``, or a
        callable of the remaining progress) and DQN's ε, which decays over ``exploration_fraction`` of it. Usually
        the experiment's ``fit_budget``. Required by DQN and by schedules; ignored by constant settings.
    action_noise:
        SAC and TD3: ``{type: normal | ornstein_uhlenbeck, sigma: float | list, mean: float | list}`` (sigma in the
        normalised action range [-1, 1]), or an SB3 ``ActionNoise``.
    torch_threads:
        Torch's threads while the agent trains or acts (None: leave torch's setting).
    **algo_kwargs:
        The algorithm's other arguments, e.g. PPO's ``n_steps``, ``batch_size``, ``learning_rate``; ``train_freq``
        may be ``[4, "step"]`` as YAML writes a tuple.

    Attributes
    ----------
    model:
        The SB3 algorithm (``model.policy`` is the torch module).
    """

    name = "SB3"
    fit_is_additive = True
    algo: str | None = None  # fixed by the per-algorithm subclasses

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that fixes ``algo`` gets the algorithm's search space (``sample_parameters``) and a constructor
        of its own, whose signature names the algorithm's arguments: validation checks a config's init_kwargs
        against it, and help() lists them. Only where it would otherwise inherit SB3Agent's: what the subclass, or a
        class between it and SB3Agent, defines is kept."""
        super().__init_subclass__(**kwargs)
        if cls.algo is None:
            return
        if cls.__init__ is SB3Agent.__init__:
            def __init__(self: SB3Agent, env: Any = None, **kwargs: Any) -> None:
                SB3Agent.__init__(self, env, **kwargs)

            __init__.__qualname__ = f"{cls.__qualname__}.__init__"
            __init__.__signature__ = _signature(cls.algo, _CONSTRUCTOR)  # type: ignore[attr-defined]
            cls.__init__ = __init__  # type: ignore[method-assign]
        if cls.sample_parameters.__func__ is SB3Agent.sample_parameters.__func__:  # the base Agent's: none
            cls.sample_parameters = classmethod(_sample_parameters)  # type: ignore[method-assign,assignment]

    def __init__(
        self,
        env: Any = None,
        algo: str | None = None,
        policy: Any = "MlpPolicy",
        policy_kwargs: Mapping[str, Any] | None = None,
        device: str = "cpu",
        n_timesteps: int | None = None,
        action_noise: Any = None,
        torch_threads: int | None = 1,
        eval_env: Any = None,
        copy_env: bool = True,
        compress_pickle: bool = True,
        seeder: SeedLike = None,
        output_dir: Any = None,
        _execution_metadata: Any = None,
        _default_writer_kwargs: dict[str, Any] | None = None,
        _thread_shared_data: dict[str, Any] | None = None,
        **algo_kwargs: Any,
    ) -> None:
        algo = _check_algorithm(type(self), algo)
        _check_arguments(algo, algo_kwargs, action_noise, n_timesteps, torch_threads)
        self.algo, self.n_timesteps, self.torch_threads = algo, n_timesteps, torch_threads
        self.model: Any = None  # reseed (called by Agent's constructor) reseeds it once it exists
        self._generators: GlobalGenerators | None = None
        super().__init__(env, eval_env=eval_env, copy_env=copy_env, compress_pickle=compress_pickle, seeder=seeder,
                         output_dir=output_dir, _execution_metadata=_execution_metadata,
                         _default_writer_kwargs=_default_writer_kwargs, _thread_shared_data=_thread_shared_data)
        if self.env is None:
            raise ValueError(f"{type(self).__name__} needs a training environment")
        kwargs = _algorithm_arguments(algo_kwargs)
        timed = [name for name in _SCHEDULES if callable(kwargs.get(name))] + (["exploration_fraction"] if algo == "DQN" else [])
        if timed and n_timesteps is None:
            raise ValueError(f"{algo}: {', '.join(timed)} change over training, which SB3 measures against the training "
                             "length: give n_timesteps (usually the experiment's fit_budget), so that they change the same "
                             "way however the budget is split into fit calls and checkpointed chunks")
        self._cuda = get_device(device).type == "cuda"
        # SB3 steps the agent's env itself, inside its Monitor (episode returns) and a DummyVecEnv; EpisodeRecord keeps
        # what rebuilds the episode in progress from a checkpoint.
        self._record = EpisodeRecord(self.env)
        self._monitor = Monitor(self._record)
        self._venv = DummyVecEnv([lambda: self._monitor])
        noise = _action_noise(action_noise, self.env.action_space)
        if noise is not None:
            kwargs["action_noise"] = noise
        self._budget = 0  # environment steps asked for by all fit calls so far
        self._callback = _WriterCallback(self)
        with self._own_generators():  # SB3 seeds the global generators and draws the initial weights from torch's
            self.model = _TRAINED[algo](policy, self._venv, policy_kwargs=_policy_kwargs(policy_kwargs), device=device,
                                        seed=self._sb3_seed(), verbose=0, **kwargs)
        self.model.n_timesteps = n_timesteps
        self.model.set_logger(Logger(folder=None, output_formats=[_WriterOutput(self)]))

    # ------------------------------------------------------------------ training
    def fit(self, budget: int, **kwargs: Any) -> None:
        """Train until the environment steps of all fit calls so far, ``budget`` included, are taken."""
        if kwargs:
            raise TypeError(f"{type(self).__name__}.fit takes no keyword arguments besides budget, got {sorted(kwargs)}")
        if isinstance(budget, bool) or int(budget) != budget or budget < 0:
            raise ValueError(f"budget must be a non-negative integer (environment steps), got {budget!r}")
        self._budget += int(budget)
        remaining = self._budget - self.model.num_timesteps
        if remaining > 0:  # else the last rollout already took these steps
            noise = self.model.action_noise
            self._callback.noise_state = copy.deepcopy(vars(noise)) if noise is not None else None
            with self._own_generators():
                self.model.learn(remaining, callback=self._callback, reset_num_timesteps=False,
                                 **({"log_interval": 1} if not isinstance(self.model, OffPolicyAlgorithm) else {}))
        self.total_env_steps = int(self.model.num_timesteps)

    @contextlib.contextmanager
    def _own_generators(self) -> Iterator[None]:
        """Run with the agent's own states of the global generators and its torch threads, then give the process
        its own back: other agents, and rlpipe's check that an agent draws nothing from the global generators,
        see them untouched."""
        with GLOBAL_GENERATORS_LOCK, self._own_threads():  # one SB3 fit at a time per process; reads of the generators wait
            outer = GlobalGenerators(self._cuda)
            if self._generators is not None:
                self._generators.install()
            try:
                yield
            finally:
                self._generators = GlobalGenerators(self._cuda)
                outer.install()

    @contextlib.contextmanager
    def _own_threads(self) -> Iterator[None]:
        """Run torch on ``torch_threads`` threads, then give the process its own setting back."""
        threads = torch.get_num_threads()
        if self.torch_threads is not None and self.torch_threads != threads:
            torch.set_num_threads(self.torch_threads)
        try:
            yield
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def _sb3_seed(self) -> int:
        return int(self.seeder.child(_SB3_SEED_KEY).seed_seq.generate_state(1)[0] >> 1)  # 31 bits: np.random.seed takes it

    def reseed(self, seed_seq: SeedLike = None) -> None:
        """Reseed the agent, its envs and, once built, SB3 (its generators, action space and first reset)."""
        super().reseed(seed_seq)
        if self.model is not None:
            with self._own_generators():
                self.model.set_random_seed(self._sb3_seed())

    # ------------------------------------------------------------------ evaluation
    def policy(self, observation: Any) -> Any:
        """The deterministic action (``model.predict(observation, deterministic=True)``); draws no random number."""
        with self._own_threads():
            action, _ = self.model.predict(observation, deterministic=True)
        return action.item() if isinstance(self.model.action_space, gym.spaces.Discrete) else action

    def export_sb3(self, path: Any) -> None:
        """Save the model as an SB3 zip, which ``stable_baselines3.<ALGO>.load(path)`` reads (not a checkpoint of
        rlpipe: its replay buffer, generators and episode in progress are left out)."""
        self.model.save(path)

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """The training state as arrays (networks, optimizers, replay buffer, generators, episode actions) and one
        JSON value, ``sb3``, with the rest (counters, pending log values, the episode's reset)."""
        arrays: dict[str, np.ndarray] = {}
        model = self.model
        modules, variables = model._get_torch_save_params()
        tensors = {name: _attribute(model, name).state_dict() for name in modules}
        tensors.update({name: _attribute(model, name) for name in variables})
        noise = model.action_noise
        logger = model.logger
        state = {
            "algo": self.algo,
            "budget": self._budget,
            "counters": {name: _plain(getattr(model, name)) for name in _COUNTERS if hasattr(model, name)},
            "torch": encode(tensors, "torch", arrays),
            "generators": self._generators.to_state(arrays),
            "replay_buffer": replay_buffer_state(model.replay_buffer, arrays) if isinstance(model, OffPolicyAlgorithm) else None,
            "action_noise": None if noise is None else encode(
                {key: value for key, value in vars(noise).items() if isinstance(value, np.ndarray)}, "noise", arrays),
            "episodes": None if model.ep_info_buffer is None else [[info["r"], info["l"]] for info in model.ep_info_buffer],
            "successes": None if model.ep_success_buffer is None else [bool(s) for s in model.ep_success_buffer],
            "logger": [[key, float(value), int(logger.name_to_count.get(key, 0)), list(logger.name_to_excluded.get(key, ()))]
                       for key, value in logger.name_to_value.items() if _is_number(value)],
            "started": model._last_obs is not None,
            "episode_reset": self._record.to_state(arrays),
        }
        return {**arrays, "sb3": state}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s output into an agent built with the same init kwargs."""
        saved, arrays = state["sb3"], {key: value for key, value in state.items() if isinstance(value, np.ndarray)}
        if saved["algo"] != self.algo:
            raise ValueError(f"the checkpoint holds a {saved['algo']} model, not a {self.algo} one")
        model = self.model
        tensors = decode(saved["torch"], arrays)
        modules, variables = model._get_torch_save_params()
        for name in modules:
            _attribute(model, name).load_state_dict(tensors[name])
        with torch.no_grad():
            for name in variables:
                _attribute(model, name).copy_(tensors[name])
        for name, value in saved["counters"].items():
            setattr(model, name, value)
        self._budget = int(saved["budget"])
        if saved["replay_buffer"] is not None:
            set_replay_buffer_state(model.replay_buffer, saved["replay_buffer"], arrays)
        if saved["action_noise"] is not None:
            vars(model.action_noise).update(decode(saved["action_noise"], arrays))
        if saved["episodes"] is not None:  # "t", the wall clock, is not kept: SB3 only averages "r" and "l"
            window = model._stats_window_size
            model.ep_info_buffer = deque(({"r": r, "l": n, "t": 0.0} for r, n in saved["episodes"]), maxlen=window)
            model.ep_success_buffer = deque(saved["successes"], maxlen=window)
        logger = model.logger
        for key, value, count, excluded in saved["logger"]:
            logger.name_to_value[key], logger.name_to_count[key] = value, count
            logger.name_to_excluded[key] = tuple(excluded)
        self._generators = GlobalGenerators.from_state(saved["generators"], arrays, self._cuda)
        if saved["started"]:
            self._restore_episode(saved["episode_reset"], arrays)
        self.total_env_steps = int(model.num_timesteps)

    def _restore_episode(self, episode_reset: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Replay the training episode in progress into the env, and give SB3 its last observation."""
        observation = replay_episode(self._monitor, self._record, episode_reset, arrays)
        self._venv._save_obs(0, observation)
        observations = self._venv._obs_from_buf()
        if isinstance(self.model.env, VecTransposeImage):
            observations = self.model.env.transpose_observations(observations)
        self.model._last_obs = observations
        self.model._last_original_obs = observations
        self.model._last_episode_starts = np.array([not self._record.episode_actions])


class _WriterCallback(BaseCallback):
    """Writes each finished training episode's return and length (from SB3's Monitor) to the agent's writer, and puts
    the action noise back as it was before ``learn`` (SB3 resets it at the start of every call)."""

    def __init__(self, agent: SB3Agent) -> None:
        super().__init__(verbose=0)
        self.agent = agent
        self.noise_state: dict[str, Any] | None = None

    def _on_training_start(self) -> None:
        if self.noise_state is not None:
            vars(self.model.action_noise).update(copy.deepcopy(self.noise_state))

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            episode = info.get("episode")
            if episode is not None:
                step = self.model.num_timesteps
                self.agent.writer.add_scalar("episode_rewards", float(episode["r"]), step)
                self.agent.writer.add_scalar("episode_length", int(episode["l"]), step)
        return True


class _WriterOutput(KVWriter):
    """SB3's logger output to the agent's writer: every numeric value of a dump, at ``global_step`` = the dump's step
    (environment steps), in key order; ``time/*`` (wall clock, and counters that restart with each learn call) is left
    out."""

    def __init__(self, agent: SB3Agent) -> None:
        self.agent = agent

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        for key in sorted(key_values):
            value = key_values[key]
            if not key.startswith("time/") and _is_number(value):
                self.agent.writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------- arguments
def _sample_parameters(cls: type[SB3Agent], trial: Any) -> dict[str, Any]:
    """The init kwargs an Optuna trial tries: the search space of ``cls.algo`` (rlpipe.agents.sb3_search)."""
    return SAMPLERS[cls.algo](trial)


def _check_algorithm(agent_class: type[SB3Agent], algo: str | None) -> str:
    algo = agent_class.algo if algo is None else algo
    if algo not in SB3_ALGORITHMS:
        raise ValueError(f"{agent_class.__name__}: algo must be one of {', '.join(SB3_ALGORITHMS)}, got {algo!r}")
    if agent_class.algo not in (None, algo):
        raise ValueError(f"{agent_class.__name__} runs {agent_class.algo}, not {algo}: use SB3Agent with algo: {algo}")
    return algo


def _check_arguments(algo: str, algo_kwargs: Mapping[str, Any], action_noise: Any, n_timesteps: Any,
                     torch_threads: Any) -> None:
    accepted = set(algorithm_keywords(algo))
    problems = rejected_keywords(algo, algo_kwargs, accepted)
    problems += [f"{algo} does not accept '{name}': rlpipe sets it" for name in algo_kwargs if name in _MANAGED]
    if action_noise is not None and "action_noise" not in inspect.signature(SB3_ALGORITHMS[algo].__init__).parameters:
        problems.append(f"{algo} does not accept 'action_noise' (SAC and TD3 do)")
    for name, value in (("n_timesteps", n_timesteps), ("torch_threads", torch_threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            problems.append(f"{name} must be a positive integer or None, got {value!r}")
    if problems:
        raise ValueError("; ".join(problems))


def _algorithm_arguments(algo_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The algorithm's kwargs with what a config writes turned into what SB3 takes: ``"lin_<x>"`` schedules, and
    ``train_freq`` as a tuple."""
    kwargs = dict(algo_kwargs)
    for name in _SCHEDULES:
        if isinstance(kwargs.get(name), str):
            kwargs[name] = _linear_schedule(name, kwargs[name])
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    return kwargs


def _linear_schedule(name: str, text: str) -> Any:
    """``"lin_<start>"`` (rl-baselines3-zoo's notation): from ``start`` down to 0 at the end of ``n_timesteps``."""
    prefix, _, start = text.partition("_")
    try:
        if prefix != "lin":
            raise ValueError
        value = float(start)
    except ValueError:
        raise ValueError(f"{name} must be a number or 'lin_<start>' (linear down to 0), got {text!r}") from None
    try:  # SB3 >= 2.7: a class, which an exported model pickles by reference to SB3 alone
        from stable_baselines3.common.utils import LinearSchedule
    except ImportError:
        return get_linear_fn(value, 0.0, 1.0)
    return LinearSchedule(value, 0.0, 1.0)


def _policy_kwargs(policy_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``policy_kwargs`` with names and import paths (``activation_fn: tanh``, ``optimizer_class: torch.optim:RMSprop``)
    turned into the classes SB3 takes."""
    converted = dict(policy_kwargs or {})
    for key, value in converted.items():
        if isinstance(value, str) and key == "activation_fn" and value in _ACTIVATIONS:
            converted[key] = getattr(torch.nn, _ACTIVATIONS[value])
        elif isinstance(value, str) and (key == "activation_fn" or key.endswith("_class")):
            converted[key] = import_object(value)
    return converted


def _action_noise(spec: Any, action_space: gym.Space) -> ActionNoise | None:
    """An SB3 action noise from ``{type, sigma, mean}`` (arrays of the action's shape), or the noise given."""
    if spec is None or isinstance(spec, ActionNoise):
        return spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"action_noise must be a mapping {{type, sigma, mean}} or an SB3 ActionNoise, got {spec!r}")
    unknown = sorted(set(spec) - {"type", "sigma", "mean"})
    if unknown:
        raise ValueError(f"action_noise takes the keys type, sigma and mean, not {unknown}")
    kind = spec.get("type", "normal")
    shape = action_space.shape
    sigma = np.broadcast_to(np.asarray(spec.get("sigma", 0.1), dtype=np.float64), shape).copy()
    mean = np.broadcast_to(np.asarray(spec.get("mean", 0.0), dtype=np.float64), shape).copy()
    if kind in (None, "none"):
        return None
    if kind == "normal":
        return NormalActionNoise(mean=mean, sigma=sigma)
    if kind in ("ornstein_uhlenbeck", "ornstein-uhlenbeck"):
        return OrnsteinUhlenbeckActionNoise(mean=mean, sigma=sigma)
    raise ValueError(f"action_noise.type must be normal, ornstein_uhlenbeck or none, got {kind!r}")


def _attribute(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------- signatures, for validation and help()
# The constructors take the algorithm's arguments as **kwargs; these signatures name them, so that a config's
# init_kwargs are checked at validation (a typo gets a suggestion) and help() lists them with their defaults.
class _AlgorithmDefault:
    def __repr__(self) -> str:
        return "<the algorithm's default>"


def _signature(algo: str | None, constructor: inspect.Signature) -> inspect.Signature:
    """``constructor`` (SB3Agent's own parameters) with the algorithm's in place of its ``**algo_kwargs``."""
    own = [p for name, p in constructor.parameters.items()
           if p.kind is not p.VAR_KEYWORD and not (algo is not None and name == "algo")]
    if algo is not None:
        passed = list(algorithm_keywords(algo).values())
        if "action_noise" not in inspect.signature(SB3_ALGORITHMS[algo].__init__).parameters:
            own = [p for p in own if p.name != "action_noise"]
    else:  # SB3Agent: any algorithm's arguments (the one named by `algo` checks its own when it is built)
        union = {name: p for each in SB3_ALGORITHMS for name, p in algorithm_keywords(each).items()}
        passed = [p.replace(default=_AlgorithmDefault()) for p in union.values()]
    names = {p.name for p in own}
    return inspect.Signature([*own, *(p.replace(kind=p.KEYWORD_ONLY) for p in passed if p.name not in names)])


_CONSTRUCTOR = inspect.signature(SB3Agent.__init__)
SB3Agent.__init__.__signature__ = _signature(None, _CONSTRUCTOR)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- one class per algorithm
class PPOAgent(SB3Agent):
    """SB3's PPO (on-policy; any action space). ``n_steps`` per rollout; ``batch_size``; ``n_epochs``… (SB3's PPO)."""

    algo = name = "PPO"


class A2CAgent(SB3Agent):
    """SB3's A2C (on-policy; any action space)."""

    algo = name = "A2C"


class DQNAgent(SB3Agent):
    """SB3's DQN (off-policy; Discrete actions). Needs ``n_timesteps``, over whose ``exploration_fraction`` ε decays."""

    algo = name = "DQN"


class SACAgent(SB3Agent):
    """SB3's SAC (off-policy; Box actions)."""

    algo = name = "SAC"


class TD3Agent(SB3Agent):
    """SB3's TD3 (off-policy; Box actions); give it ``action_noise`` to explore."""

    algo = name = "TD3"


AGENTS: dict[str, type[SB3Agent]] = {"PPO": PPOAgent, "A2C": A2CAgent, "DQN": DQNAgent, "SAC": SACAgent, "TD3": TD3Agent}

__all__ = ["SB3Agent", "PPOAgent", "A2CAgent", "DQNAgent", "SACAgent", "TD3Agent", "SB3_ALGORITHMS", "AGENTS"]
