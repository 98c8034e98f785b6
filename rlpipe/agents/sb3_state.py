"""A Stable-Baselines3 model's whole training state as arrays and JSON values, and back, without pickle.

What :class:`~rlpipe.agents.sb3.SB3Agent` checkpoints so that a resumed fit continues exactly where it stopped:

- torch state dicts (the policy with its target networks, each optimizer, SAC's entropy coefficient) and the
  replay buffer of an off-policy algorithm, as arrays;
- the generators SB3 draws from, which are process-global (numpy's ``np.random``, Python's ``random``, torch's):
  the agent keeps its own copy of their states and swaps them in around each ``learn`` (see :class:`GlobalGenerators`);
- the training environment mid-episode, which SB3 steps itself: :class:`EpisodeRecord` records the reset of the
  episode in progress (its seed and the env's generator states before it) and its actions, which
  :func:`replay_episode` replays into a fresh environment (gymnasium envs are deterministic given these).

Nothing here is read with pickle: arrays come back from an ``.npz`` opened with ``allow_pickle=False``, nested
values from JSON, so a checkpoint cannot run code.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlpipe.runtime.envs import env_generators

Arrays = dict[str, np.ndarray]
_REPLAY_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


# ---------------------------------------------------------------------------------------------- nested values
def encode(value: Any, key: str, arrays: Arrays) -> Any:
    """``value`` (nested dicts, lists, tuples of tensors, arrays and plain values, as a torch ``state_dict`` is) as
    JSON, its tensors and arrays moved to ``arrays`` under keys starting with ``key``. Dict keys keep their type
    (optimizer states are keyed by int), so dicts are written as lists of pairs."""
    if isinstance(value, torch.Tensor):
        arrays[key] = value.detach().cpu().numpy().copy()
        return {"tensor": key}
    if isinstance(value, np.ndarray):
        arrays[key] = value.copy()
        return {"array": key}
    if isinstance(value, Mapping):
        return {"dict": [[name, encode(item, f"{key}.{i}", arrays)] for i, (name, item) in enumerate(value.items())]}
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [encode(item, f"{key}.{i}", arrays) for i, item in enumerate(value)]}
    if isinstance(value, (np.generic,)):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"{key}: cannot checkpoint a {type(value).__name__} without pickle")


def decode(node: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Any:
    """The value :func:`encode` wrote (tensors on the CPU; ``load_state_dict`` moves them to their device)."""
    [(kind, content)] = node.items()
    if kind == "tensor":
        return torch.from_numpy(np.array(arrays[content]))
    if kind == "array":
        return np.array(arrays[content])
    if kind == "dict":
        return {name: decode(item, arrays) for name, item in content}
    if kind in ("list", "tuple"):
        items = [decode(item, arrays) for item in content]
        return tuple(items) if kind == "tuple" else items
    return content


# ---------------------------------------------------------------------------------------------- replay buffer
def replay_buffer_state(buffer: Any, arrays: Arrays) -> dict[str, Any]:
    """The filled rows of a ``ReplayBuffer`` (or ``DictReplayBuffer``) into ``arrays``, its position as JSON. One row
    past ``pos`` is kept: with ``optimize_memory_usage`` it holds the next observation of the last transition."""
    rows = buffer.buffer_size if buffer.full else min(buffer.pos + 1, buffer.buffer_size)
    for field in _REPLAY_FIELDS:
        value = getattr(buffer, field, None)
        if isinstance(value, np.ndarray):
            arrays[f"replay.{field}"] = value[:rows].copy()
        elif isinstance(value, Mapping):  # DictReplayBuffer: one array per observation key
            for name, part in value.items():
                arrays[f"replay.{field}.{name}"] = part[:rows].copy()
    return {"pos": int(buffer.pos), "full": bool(buffer.full), "rows": int(rows)}


def set_replay_buffer_state(buffer: Any, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    rows = int(meta["rows"])
    for field in _REPLAY_FIELDS:
        value = getattr(buffer, field, None)
        targets = {f"replay.{field}": value} if isinstance(value, np.ndarray) else (
            {f"replay.{field}.{name}": part for name, part in value.items()} if isinstance(value, Mapping) else {})
        for key, target in targets.items():
            saved = arrays[key]
            if saved.shape[1:] != target.shape[1:] or rows > len(target):
                raise ValueError(f"checkpoint entry {key} has shape {saved.shape}, but the replay buffer holds "
                                 f"{target.shape}: was it made with another buffer_size or environment?")
            target[:rows] = saved
    buffer.pos, buffer.full = int(meta["pos"]), bool(meta["full"])


# ---------------------------------------------------------------------------------------------- global generators
class GlobalGenerators:
    """The states of the process-global generators SB3 draws from: numpy's legacy ``np.random`` (DQN's ε-greedy
    draws, replay sampling, action noise), Python's ``random`` and torch's (CPU, and CUDA when used)."""

    def __init__(self, cuda: bool = False) -> None:
        self.cuda = cuda
        self.numpy = np.random.get_state()
        self.python = random.getstate()
        self.torch = torch.get_rng_state()
        self.torch_cuda = torch.cuda.get_rng_state_all() if cuda else []

    def install(self) -> None:
        """Make these the process's current states."""
        np.random.set_state(self.numpy)
        random.setstate(self.python)
        torch.set_rng_state(self.torch)
        if self.cuda:
            torch.cuda.set_rng_state_all(self.torch_cuda)

    def to_state(self, arrays: Arrays) -> dict[str, Any]:
        name, keys, position, has_gauss, cached_gaussian = self.numpy
        arrays["generators.numpy"] = np.asarray(keys)
        arrays["generators.torch"] = self.torch.numpy().copy()
        for i, state in enumerate(self.torch_cuda):
            arrays[f"generators.torch_cuda.{i}"] = state.numpy().copy()
        version, internal, gauss_next = self.python
        return {"numpy": [name, int(position), int(has_gauss), float(cached_gaussian)],
                "python": [version, list(internal), gauss_next], "cuda_devices": len(self.torch_cuda)}

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], cuda: bool) -> "GlobalGenerators":
        generators = cls.__new__(cls)
        name, position, has_gauss, cached_gaussian = meta["numpy"]
        generators.numpy = (name, np.array(arrays["generators.numpy"], dtype=np.uint32), position, has_gauss,
                            cached_gaussian)
        version, internal, gauss_next = meta["python"]
        generators.python = (version, tuple(internal), gauss_next)
        generators.torch = torch.from_numpy(np.array(arrays["generators.torch"]))
        generators.torch_cuda = [torch.from_numpy(np.array(arrays[f"generators.torch_cuda.{i}"]))
                                 for i in range(meta["cuda_devices"])]
        generators.cuda = cuda and bool(generators.torch_cuda)
        return generators


# ---------------------------------------------------------------------------------------------- the episode in progress
class EpisodeRecord(gym.Wrapper):
    """Records how the episode in progress began (the reset's seed and options, and the states of the env's
    generators just before it) and the actions taken since, so :func:`replay_episode` can rebuild it.

    It wraps the agent's training env inside SB3's ``Monitor``; SB3 resets and steps it itself.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.episode_reset: dict[str, Any] | None = None
        self.episode_actions: list[np.ndarray] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        generators = {name: generator.bit_generator.state for name, generator in env_generators(self.env).items()}
        self.episode_reset = {"seed": seed, "options": options, "generators": generators}
        self.episode_actions = []
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        self.episode_actions.append(np.array(action, copy=True))
        return self.env.step(action)

    def to_state(self, arrays: Arrays) -> dict[str, Any] | None:
        if self.episode_actions:
            arrays["episode.actions"] = np.stack(self.episode_actions)
        return self.episode_reset


def replay_episode(outer: gym.Env, record: EpisodeRecord, episode_reset: Mapping[str, Any],
                   arrays: Mapping[str, np.ndarray]) -> Any:
    """Rebuild the saved episode in progress through ``outer`` (the env stack whose innermost wrapper is ``record``):
    restore the generators as they were before its reset, reset with its seed and options, take its actions.
    Returns the last observation."""
    generators = env_generators(record.env)
    for name, state in episode_reset["generators"].items():
        if name in generators:
            generators[name].bit_generator.state = state
    kwargs = {"options": episode_reset["options"]} if episode_reset["options"] else {}
    observation, _ = outer.reset(seed=episode_reset["seed"], **kwargs)
    for action in arrays.get("episode.actions", ()):
        observation, *_ = outer.step(action)
    return observation
