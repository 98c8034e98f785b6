"""Seeds derived from one root ``SeedSequence`` by *keys*, never by stateful spawning.

The seed of instance ``i`` of experiment ``e`` is ``child(root, e, FIT, i)``: it depends on nothing
else, so raising ``n_fit`` keeps earlier instances, job order never changes a number, and any
instance can be re-run alone. Evaluation, optimisation and statistics use their own streams.
"""
from __future__ import annotations

import enum
import hashlib
import random
import sys
import threading
from typing import Any, Union

import numpy as np


class Stream(enum.IntEnum):
    """Independent purposes that draw randomness from an experiment's seed."""

    FIT = 0
    EVAL = 1
    OPTIMIZE = 2
    STATISTICS = 3
    MANAGER = 4  # ExperimentManager's own draws (which instance eval_agents picks, build_eval_env seeds)


def name_key(name: str) -> int:
    """A stable 64-bit integer for a name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


# Keyed children start with this tag, so they never coincide with the children of
# ``SeedSequence.spawn``, whose keys are (0,), (1,), … (it would take 2**64 spawns to reach it).
KEYED_NAMESPACE = 2**64 + 0x726C70697065  # "rlpipe"


def keyed_child(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The child of ``root`` at ``key``: the same every time, whatever was spawned before."""
    return np.random.SeedSequence(
        entropy=root.entropy,
        spawn_key=(*root.spawn_key, KEYED_NAMESPACE, *(int(k) for k in key)),
        pool_size=root.pool_size,
    )


def experiment_stream(
    root: np.random.SeedSequence, experiment: str, stream: Stream, index: int
) -> np.random.SeedSequence:
    """Seed of item ``index`` (an instance, a trial…) of ``stream`` in ``experiment``."""
    return keyed_child(root, name_key(experiment), int(stream), index)


SeedLike = Union[None, int, np.random.SeedSequence, "Seeder"]


class Seeder:
    """A ``SeedSequence`` with its generator, as rlberry's Seeder: ``seeder.rng``, ``spawn``, ``reseed``.

    Unlike rlberry's, constructing a Seeder does not spawn: ``Seeder(s).seed_seq`` is ``s``.
    """

    def __init__(self, seed: SeedLike = None) -> None:
        self.seed_seq = as_seed_sequence(seed)
        self.rng = np.random.default_rng(self.seed_seq)

    def spawn(self, n: int = 1, squeeze: bool = True) -> "Seeder | list[Seeder]":
        """``n`` new independent Seeders (stateful: each call gives new children)."""
        children = [Seeder(s) for s in self.seed_seq.spawn(n)]
        return children[0] if (squeeze and n == 1) else children

    def child(self, *key: int) -> "Seeder":
        """The keyed child ``key`` (stateless: the same key always gives the same Seeder)."""
        return Seeder(keyed_child(self.seed_seq, *key))

    def reseed(self, seed: SeedLike = None) -> None:
        self.seed_seq = as_seed_sequence(seed)
        self.rng = np.random.default_rng(self.seed_seq)

    def generate_state(self, n: int) -> np.ndarray:
        return self.seed_seq.generate_state(n)

    def __repr__(self) -> str:
        return f"Seeder(entropy={self.seed_seq.entropy}, spawn_key={tuple(self.seed_seq.spawn_key)})"


def as_seed_sequence(seed: SeedLike) -> np.random.SeedSequence:
    """Normalise an int, a SeedSequence, a Seeder or None (fresh entropy) to a SeedSequence."""
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, Seeder):
        return seed.seed_seq
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"a seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(int(seed))
    raise TypeError(f"cannot make a seed from {type(seed).__name__} {seed!r}")


def seed_record(seq: np.random.SeedSequence) -> dict:
    """What a result file records so that its seed can be rebuilt exactly."""
    return {"entropy": int(seq.entropy), "spawn_key": [int(k) for k in seq.spawn_key]}


def seed_from_record(record: dict) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=record["entropy"], spawn_key=tuple(record["spawn_key"]))


# Key of the torch seed among an agent seed's keyed children (the Agent base class uses small integers).
TORCH_KEY = name_key("torch")


def torch_seed(seed: SeedLike) -> int:
    """The integer ``torch.manual_seed`` gets for an agent of seed ``seed``: from its keyed child :data:`TORCH_KEY`,
    so it draws nothing from the agent's own streams (63 bits: within what torch accepts)."""
    return int(keyed_child(as_seed_sequence(seed), TORCH_KEY).generate_state(1, np.uint64)[0] >> np.uint64(1))


# Held by whatever swaps its own states into the process-global generators for a while (the Stable-Baselines3 agents,
# while they train) and by what reads or seeds those generators here, so that neither sees nor clobbers the other's.
GLOBAL_GENERATORS_LOCK = threading.RLock()


def seed_torch(seed: SeedLike) -> bool:
    """Seed torch's global generators (CPU and CUDA) from ``seed`` if torch is loaded, as rlberry does when it
    builds an agent; True if it was. Never imports torch (an optional extra): call it after the agent's module is
    imported, before the agent is built. Torch's generators are global to the process, so instances fitted in
    threads of one process (the manager's default) still share them; the pipeline runs one instance per process."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    with GLOBAL_GENERATORS_LOCK:
        torch.manual_seed(torch_seed(seed))
    return True


def global_rng_state() -> dict[str, Any]:
    """A fingerprint of the global random generators no seed of rlpipe reaches (numpy's and Python's) and of
    torch's when torch is loaded: it changes when an agent draws from ``np.random.*``, ``random.*`` or torch, so
    that the draws can be reported (see :func:`unseeded_draws`)."""
    with GLOBAL_GENERATORS_LOCK:
        _, keys, position, *_ = np.random.get_state()
        state: dict[str, Any] = {"numpy": (keys.tobytes(), position), "random": random.getstate()}
        torch = sys.modules.get("torch")
        if torch is not None:
            state["torch"] = np.asarray(torch.get_rng_state()).tobytes()
    return state


def unseeded_draws(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The global generators drawn from between two :func:`global_rng_state` fingerprints, ``before`` taken after
    the agent's module was imported and before the agent was built. Torch, when loaded at ``before``, was seeded
    by :func:`seed_torch` at build and its draws reproduce; torch imported only later (inside ``__init__`` or
    ``fit``) was not, and counts as drawn from."""
    seeded = {"torch"} if "torch" in before else set()
    return [name for name in after if name not in seeded and before.get(name) != after[name]]
