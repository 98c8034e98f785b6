"""Agents written rlberry's way, as a researcher brings them: importable as ``rlberry_style_agents:Name``.

None of them uses rlpipe's episode helpers (``current_observation``/``step_env``). They step ``self.env``
themselves, draw from ``self.rng`` or ``env.action_space.sample()``, log tags of their own, override
``eval`` without ``**kwargs``, have no ``get_state``, need no budget, or have no environment at all.
Only the import of the base classes changed from rlberry.
"""
from __future__ import annotations

import json
import random
import types
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.agents import Agent, AgentWithSimplePolicy
from rlpipe.runtime.wrappers import WriterWrapper


class SelfSteppingQAgent(AgentWithSimplePolicy):
    """Tabular Q-learning as rlberry_scool's QLAgent writes it: ``env.reset()`` at the start of every ``fit``, its own
    ε-greedy loop on ``self.env``, ``episode_rewards`` logged at every step with the step index of this call."""

    name = "SelfSteppingQ"

    def __init__(self, env: Any, gamma: float = 0.99, alpha: float = 0.1, epsilon: float = 0.2, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.gamma, self.alpha, self.epsilon = gamma, alpha, epsilon
        self.Q = np.zeros((self.env.observation_space.n, self.env.action_space.n))
        self.total_budget = 0

    def fit(self, budget: int, **kwargs: Any) -> None:
        observation, _ = self.env.reset()
        episode_rewards = 0.0
        for i in range(budget):
            if self.rng.random() < self.epsilon:
                action = self.env.action_space.sample()
            else:
                action = int(self.Q[observation].argmax())
            next_observation, reward, terminated, truncated, _ = self.env.step(action)
            episode_rewards += reward
            self.writer.add_scalar("episode_rewards", episode_rewards, i)
            target = reward if terminated else reward + self.gamma * self.Q[next_observation].max()
            self.Q[observation, action] += self.alpha * (target - self.Q[observation, action])
            observation = next_observation
            if terminated or truncated:
                observation, _ = self.env.reset()
                episode_rewards = 0.0
        self.total_budget += budget

    def policy(self, observation: Any) -> int:
        return int(self.Q[observation].argmax())


class OwnTagsAgent(AgentWithSimplePolicy):
    """Logs only tags of its own (``reward`` through rlberry's WriterWrapper, ``q_norm``), never ``episode_rewards``."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.env = WriterWrapper(self.env, self.writer, write_scalar="reward")
        self.counts = np.zeros(self.env.action_space.n)

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.env.reset()
        for step in range(budget):
            action = self.env.action_space.sample()
            _, _, terminated, truncated, _ = self.env.step(action)
            self.counts[action] += 1
            self.writer.add_scalar("q_norm", float(np.linalg.norm(self.counts)), step)
            if terminated or truncated:
                self.env.reset()

    def policy(self, observation: Any) -> int:
        return int(np.argmax(self.counts))


class StrictEvalAgent(AgentWithSimplePolicy):
    """Overrides ``eval`` with a signature that takes no ``**kwargs``; records every call's arguments.

    Its score rewards a known hyperparameter optimum: ``-(x - 3)**2`` plus a little seeded noise from the
    eval env, so a tuner that optimises this eval finds x = 3 (a policy rollout would score every x alike).
    """

    def __init__(self, env: Any, x: float = 0.0, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.x = float(x)
        self.eval_calls: list[dict[str, Any]] = []

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.env.reset()
        for _ in range(budget):
            self.env.step(self.env.action_space.sample())

    def policy(self, observation: Any) -> int:
        return 0

    def eval(self, eval_horizon: int = 5, n_simulations: int = 2) -> float:
        self.eval_calls.append({"eval_horizon": eval_horizon, "n_simulations": n_simulations})
        noise = float(self.eval_env.np_random.normal(scale=0.01))
        return -((self.x - 3.0) ** 2) + noise

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        return {"x": trial.suggest_float("x", 0.0, 6.0)}


class HorizonOnlyEvalAgent(AgentWithSimplePolicy):
    """An ``eval`` that takes only ``eval_horizon``: it must never be passed ``n_simulations``."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        pass

    def policy(self, observation: Any) -> int:
        return 0

    def eval(self, eval_horizon: int = 5) -> float:
        return float(eval_horizon)


class NoBudgetAgent(AgentWithSimplePolicy):
    """Needs no budget (rlberry documents ``fit_budget=-1``): records the budgets it was given."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.budgets: list[int] = []

    def fit(self, budget: int = None, **kwargs: Any) -> None:
        self.budgets.append(budget)

    def policy(self, observation: Any) -> int:
        return 0


class EnvlessAgent(Agent):
    """No environment at all (rlberry's default ``train_env=(None, None)``): its eval is a number of its own."""

    def __init__(self, level: float = 1.0, **kwargs: Any) -> None:
        Agent.__init__(self, **kwargs)
        self.level = level
        self.fitted = False

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.fitted = True

    def eval(self, **kwargs: Any) -> float:
        return self.level + float(self.rng.normal(scale=0.1))


class GridEnv:
    """A callable object that builds FrozenLake: an env constructor that is neither a function nor a class."""

    def __init__(self, slippery: bool) -> None:
        self.slippery = slippery

    def __call__(self, **kwargs: Any) -> Any:
        import gymnasium

        return gymnasium.make("FrozenLake-v1", is_slippery=self.slippery, **kwargs)


def make_lake(is_slippery: bool = False, map_name: str = "4x4") -> Any:
    """A plain function env constructor, to be wrapped in ``functools.partial``."""
    import gymnasium

    return gymnasium.make("FrozenLake-v1", is_slippery=is_slippery, map_name=map_name)


class GlobalRandomAgent(AgentWithSimplePolicy):
    """Draws from numpy's global generator, as rlberry's plotting test agent does (``np.random.randint(5)``)."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.env.reset()
        for _ in range(budget + np.random.randint(5)):
            self.env.step(self.env.action_space.sample())

    def policy(self, observation: Any) -> int:
        return 0


class PythonRandomAgent(AgentWithSimplePolicy):
    """Draws from Python's global generator (``random.randint``), never from numpy's: how long it trains depends on
    a number no seed of rlpipe reaches."""

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.env.reset()
        for _ in range(budget + random.randint(0, 4)):
            self.env.step(self.env.action_space.sample())

    def policy(self, observation: Any) -> int:
        return 0


class FreshEntropyAgent(AgentWithSimplePolicy):
    """Draws its exploration bonus from ``np.random.default_rng()``: a new generator seeded from the operating system,
    so no global state changes, yet two agents of the same seed differ."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.bonus = np.zeros(self.env.action_space.n)

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.bonus += np.random.default_rng().random(self.bonus.shape) * budget

    def policy(self, observation: Any) -> int:
        return int(np.argmax(self.bonus))


class OpenFileAgent(AgentWithSimplePolicy):
    """Holds an open file, which no pickle can save."""

    def __init__(self, env: Any, path: str = "agent.log", **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.log_file = open(path, "w")  # noqa: SIM115 - the point of this agent

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.log_file.write(f"fit {budget}\n")

    def policy(self, observation: Any) -> int:
        return 0


class OneStepQAgent(AgentWithSimplePolicy):
    """A contextual bandit on the env's first step, with array checkpoints and an additive fit.

    Every step is a one-step episode: ``self.env.reset()`` without a seed (the start state is drawn from the env's
    own generator), one ``self.env.step`` of an ε-greedy action explored with ``self.env.action_space.sample()``.
    No episode runs across ``fit`` calls, so ``fit(a); fit(b)`` is ``fit(a + b)`` as long as the env's and the
    action space's generators go on where they were, after a checkpoint too.
    """

    fit_is_additive = True

    def __init__(self, env: Any, epsilon: float = 0.5, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.epsilon = epsilon
        self.totals = np.zeros((self.env.observation_space.n, self.env.action_space.n))
        self.counts = np.zeros_like(self.totals)

    def fit(self, budget: int, **kwargs: Any) -> None:
        for _ in range(budget):
            observation, _ = self.env.reset()
            if self.rng.random() < self.epsilon:
                action = int(self.env.action_space.sample())
            else:
                action = self.policy(observation)
            _, reward, *_ = self.env.step(action)
            self.totals[observation, action] += reward
            self.counts[observation, action] += 1

    def policy(self, observation: Any) -> int:
        return int(np.argmax(self.totals[observation] / np.maximum(self.counts[observation], 1)))

    def get_state(self) -> dict[str, Any]:
        return {"totals": self.totals, "counts": self.counts}

    def set_state(self, state: dict[str, Any]) -> None:
        self.totals, self.counts = state["totals"], state["counts"]


class OwnSaveAgent(AgentWithSimplePolicy):
    """Saves and loads itself as rlberry agents holding torch networks do: ``save(filename)`` writes a file of its own
    and the classmethod ``load(filename, **kwargs)`` builds ``cls(**kwargs)`` and reads it (no ``allow_pickle``)."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.preferences = np.zeros(self.env.action_space.n)

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.preferences += self.rng.random(self.preferences.shape) * budget

    def policy(self, observation: Any) -> int:
        return int(np.argmax(self.preferences))

    def save(self, filename: Any) -> Path:
        Path(filename).write_text(json.dumps(self.preferences.tolist()))
        return Path(filename)

    @classmethod
    def load(cls, filename: Any, **kwargs: Any) -> "OwnSaveAgent":
        agent = cls(**kwargs)
        agent.preferences = np.array(json.loads(Path(filename).read_text()))
        return agent


class InitDrawAgent(AgentWithSimplePolicy):
    """Initialises its table from numpy's global generator in its constructor (``np.random.randn``); ``fit`` draws
    only from ``self.rng``."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        self.Q = np.random.randn(self.env.observation_space.n, self.env.action_space.n)

    def fit(self, budget: int, **kwargs: Any) -> None:
        self.Q += self.rng.normal(size=self.Q.shape) * budget

    def policy(self, observation: Any) -> int:
        return int(self.Q[observation].argmax())


class TorchStyleAgent(AgentWithSimplePolicy):
    """Draws from torch's global generator when built and in ``fit``, as agents holding torch networks do (initial
    weights, exploration noise). Imports torch where it uses it; the tests give it a small fake ``torch``."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        AgentWithSimplePolicy.__init__(self, env, **kwargs)
        import torch

        self.weights = [float(torch.rand(1))]

    def fit(self, budget: int, **kwargs: Any) -> None:
        import torch

        self.weights += [float(torch.rand(1)) for _ in range(budget)]

    def policy(self, observation: Any) -> int:
        return 0


def fake_torch_module() -> types.ModuleType:
    """A stand-in for ``torch`` (not installed in the tests) with what rlpipe and TorchStyleAgent use of it:
    ``manual_seed`` (recorded in ``seeds``), ``rand`` and ``get_rng_state`` (a uint8 array, as torch's ByteTensor)."""
    torch = types.ModuleType("torch")
    generator = {"rng": np.random.default_rng(67280421310721)}  # torch's own default seed
    torch.seeds = []

    def manual_seed(seed: int) -> None:
        torch.seeds.append(seed)
        generator["rng"] = np.random.default_rng(seed)

    def rand(*size: int) -> float:
        return float(generator["rng"].random())

    def get_rng_state() -> np.ndarray:
        return np.frombuffer(repr(generator["rng"].bit_generator.state).encode(), dtype=np.uint8)

    torch.manual_seed, torch.rand, torch.get_rng_state = manual_seed, rand, get_rng_state
    return torch
