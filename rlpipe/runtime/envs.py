"""Environment specs → gymnasium environments.

A spec is one of:
- a gymnasium id string, e.g. ``"CartPole-v1"`` (``"module:Env-v0"`` imports ``module`` first);
- a mapping ``{id: ..., kwargs: {...}, wrappers: [...]}`` or ``{constructor: "pkg.mod:make_env", kwargs: {...}}``;
- an rlberry-style tuple ``(constructor, kwargs)`` where constructor is a callable, an import path or an id
  (a two-item list is read the same way: JSON and YAML have no tuples);
- an already built ``gymnasium.Env`` (used as is, or deep-copied);
- ``None`` or ``(None, None)``: no environment (rlberry's default ``train_env`` for agents that need none).
Each wrapper is ``"pkg.mod:Wrapper"`` or ``{wrapper: "pkg.mod:Wrapper", kwargs: {...}}``.
"""
from __future__ import annotations

import copy
import difflib
import functools
import importlib
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from rlpipe.errors import ConfigError, EnvSpecError
from rlpipe.io.imports import import_object, importable_path
from rlpipe.runtime.keywords import accepted_keywords, rejected_keywords

EnvSpec = Any  # str | Mapping | tuple | gym.Env
_GYM_MAKE_OPTIONS = {"max_episode_steps", "disable_env_checker", "render_mode"}



def is_no_env(spec: EnvSpec) -> bool:
    """True for the specs that mean "no environment": None and rlberry's default ``(None, None)``."""
    return spec is None or (isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] is None)


def make_env(spec: EnvSpec, copy_instance: bool = True) -> gym.Env | None:
    """Build a fresh environment from ``spec`` (None for :func:`is_no_env` specs)."""
    if is_no_env(spec):
        return None
    if isinstance(spec, gym.Env):
        return copy.deepcopy(spec) if copy_instance else spec
    constructor, kwargs, wrappers = _normalise(spec)
    env = constructor(**kwargs)
    if not isinstance(env, gym.Env):
        raise EnvSpecError(f"the env constructor returned {type(env).__name__}, not a gymnasium.Env")
    for wrapper, wrapper_kwargs in wrappers:
        env = wrapper(env, **wrapper_kwargs)
    return env


def seed_env(env: Any, seed: np.random.SeedSequence) -> None:
    """Seed everything random in ``env`` from ``seed``, as rlberry does when it builds an agent.

    An env with its own ``reseed`` (rlberry's envs) gets a SeedSequence; any other env a seeded
    ``reset``, which seeds gymnasium's ``np_random``, so an agent that later calls ``env.reset()``
    and ``env.step()`` itself gets the same numbers for the same seed. The action and observation
    spaces (which ``space.sample()`` draws from) are seeded too.
    """
    env_seed, action_seed, observation_seed = (int(value) for value in seed.generate_state(3) >> 1)
    reseed = getattr(env, "reseed", None)
    if callable(reseed):
        reseed(np.random.SeedSequence(env_seed))
    else:
        env.reset(seed=env_seed)
    for space, space_seed in ((getattr(env, "action_space", None), action_seed),
                              (getattr(env, "observation_space", None), observation_seed)):
        if isinstance(space, gym.spaces.Space):
            space.seed(space_seed)


def env_generators(env: Any) -> dict[str, np.random.Generator]:
    """The generators an agent draws from through ``env``, by name: the env's own (gymnasium's ``np_random``, or
    the ``rng`` of an env with its own ``reseed``) and those of its action and observation spaces and their
    subspaces (``action_space.sample()``). Empty without an env."""
    if env is None:
        return {}
    unwrapped = getattr(env, "unwrapped", env)
    own = getattr(unwrapped, "__dict__", {})
    found = {key: own[attribute] for key, attribute in (("np_random", "_np_random"), ("rng", "rng"))
             if isinstance(own.get(attribute), np.random.Generator)}
    for name in ("action_space", "observation_space"):
        found.update(_space_generators(getattr(env, name, None), name))
    return found


def _space_generators(space: Any, name: str) -> dict[str, np.random.Generator]:
    if not isinstance(space, gym.spaces.Space):
        return {}
    generator = vars(space).get("_np_random")
    found = {name: generator} if isinstance(generator, np.random.Generator) else {}
    children = getattr(space, "spaces", None)  # Dict, Tuple, OneOf: each subspace samples with its own generator
    items = children.items() if isinstance(children, dict) else enumerate(children) if isinstance(children, tuple) else ()
    for key, child in items:
        found.update(_space_generators(child, f"{name}/{key}"))
    for attribute in ("feature_space", "node_space", "edge_space"):  # Sequence, Graph
        found.update(_space_generators(getattr(space, attribute, None), f"{name}/{attribute}"))
    return found


def env_to_config(spec: EnvSpec, what: str) -> Any:
    """An env spec as a config writes it: a gymnasium id, ``{id, kwargs}`` or ``{constructor, kwargs}`` with
    import paths; a ConfigError names what a config cannot name (an env instance, a lambda)."""
    if is_no_env(spec) or isinstance(spec, str):
        return None if is_no_env(spec) else spec
    if isinstance(spec, gym.Env):
        raise ConfigError(f"{what} is an environment instance, which a config cannot name: pass (constructor, kwargs)")
    if isinstance(spec, Mapping):
        constructor = spec.get("constructor")
        if constructor is None or isinstance(constructor, str):
            return dict(spec)
        return {**spec, "constructor": _config_name(constructor, f"{what} constructor")}
    constructor, kwargs = spec
    kwargs = dict(kwargs or {})
    if isinstance(constructor, str):
        return {"id" if constructor in gym.registry else "constructor": constructor, "kwargs": kwargs}
    return {"constructor": _config_name(constructor, f"{what} constructor"), "kwargs": kwargs}


def _config_name(obj: Any, what: str) -> str:
    path = importable_path(obj)
    if path is None:
        raise ConfigError(f"{what} {obj!r} cannot be named in a config: define it at the top level of an importable module")
    return path


def check_env_spec(spec: EnvSpec) -> None:
    """Raise :class:`EnvSpecError` if ``spec`` names an unknown id, constructor or wrapper, or passes one of
    them a keyword it does not accept, without building the environment."""
    if isinstance(spec, gym.Env) or is_no_env(spec):
        return
    constructor, kwargs, wrappers = _normalise(spec)
    accepted = constructor.keywords() if isinstance(constructor, _Registered) else accepted_keywords(constructor)
    problems = rejected_keywords(describe_env(spec), kwargs, accepted)
    for wrapper, wrapper_kwargs in wrappers:
        problems += rejected_keywords(f"wrapper {wrapper.__name__}", wrapper_kwargs, accepted_keywords(wrapper))
    if problems:
        raise EnvSpecError("; ".join(problems))


def describe_env(spec: EnvSpec) -> str:
    """A short human name for tables: the gymnasium id or the constructor's path ("none" without an env)."""
    if is_no_env(spec):
        return "none"
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return str(spec.get("id") or spec.get("constructor"))
    if isinstance(spec, tuple) and spec:
        return spec[0] if isinstance(spec[0], str) else _constructor_name(spec[0])
    if isinstance(spec, gym.Env):
        return spec.spec.id if spec.spec is not None else type(spec).__name__
    return repr(spec)


def _constructor_name(constructor: Any) -> str:
    """A stable name of a constructor: a function's or class's name, a partial's function, a callable object's class
    (never a repr, which holds a memory address)."""
    while isinstance(constructor, functools.partial):
        constructor = constructor.func
    if isinstance(constructor, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return constructor.__name__
    return type(constructor).__name__


def _normalise(spec: EnvSpec) -> tuple[Callable[..., gym.Env], dict, list[tuple[Callable, dict]]]:
    if isinstance(spec, str):
        return _gym_constructor(spec), {}, []
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2:
            raise EnvSpecError(f"an env tuple must be (constructor, kwargs), got {len(spec)} items")
        head, kwargs = spec
        if isinstance(head, str):
            constructor = _gym_constructor(head) if head in gym.registry else _id_or_import_path(head)
        elif callable(head):
            constructor = head
        else:
            raise EnvSpecError(f"an env constructor must be callable or a string, got {type(head).__name__}")
        return constructor, dict(kwargs or {}), []
    if isinstance(spec, Mapping):
        has_id, has_ctor = "id" in spec, "constructor" in spec
        if has_id == has_ctor:
            raise EnvSpecError("an env spec needs exactly one of 'id' (a gymnasium id) or 'constructor' (an import path)")
        constructor = _gym_constructor(spec["id"]) if has_id else _import_constructor(spec["constructor"])
        wrappers = [_wrapper(w) for w in spec.get("wrappers") or []]
        return constructor, dict(spec.get("kwargs") or {}), wrappers
    raise EnvSpecError(f"cannot make an environment from {type(spec).__name__} {spec!r}")


def _id_or_import_path(text: str) -> Callable[..., gym.Env]:
    """Strings in rlberry-style tuples may be a callable's import path or a gymnasium id."""
    try:
        candidate = import_object(text)
    except ImportError:
        return _gym_constructor(text)
    if not callable(candidate):
        raise EnvSpecError(f"env constructor '{text}' is not callable")
    return candidate


def _gym_constructor(env_id: str) -> Callable[..., gym.Env]:
    if ":" in env_id:  # gymnasium's "module:EnvId" form registers the env on import
        module, _, bare_id = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise EnvSpecError(f"env id '{env_id}': cannot import module '{module}' ({error})") from None
        env_id = bare_id
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise EnvSpecError(f"gymnasium does not know the env id '{env_id}'{hint}")
    return _Registered(env_id)


@dataclass(frozen=True)
class _Registered:
    """A registered gymnasium id, built with ``gymnasium.make``."""

    env_id: str

    def __call__(self, **kwargs: Any) -> gym.Env:
        return gym.make(self.env_id, **kwargs)

    def keywords(self) -> set[str] | None:
        """What ``gymnasium.make`` accepts for this id: its own options and the registered class's arguments."""
        entry_point = gym.spec(self.env_id).entry_point
        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        accepted = accepted_keywords(creator)
        return None if accepted is None else accepted | _GYM_MAKE_OPTIONS


def _import_constructor(path: str) -> Callable[..., gym.Env]:
    try:
        constructor = import_object(path)
    except ImportError as error:
        raise EnvSpecError(str(error)) from None
    if not callable(constructor):
        raise EnvSpecError(f"env constructor '{path}' is not callable")
    return constructor


def _wrapper(item: Any) -> tuple[Callable, dict]:
    path, kwargs = (item, {}) if isinstance(item, str) else (item.get("wrapper"), item.get("kwargs") or {})
    try:
        wrapper = import_object(path)
    except ImportError as error:
        raise EnvSpecError(f"wrapper: {error}") from None
    if not callable(wrapper):
        raise EnvSpecError(f"wrapper '{path}' is not callable")
    return wrapper, dict(kwargs)
