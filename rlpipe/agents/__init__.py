"""Agents: the base classes and the built-in numpy agents (name them in a config as ``rlpipe.agents.<Class>``).

The Stable-Baselines3 agents live in :mod:`rlpipe.agents.sb3` (``rlpipe.agents.sb3:PPOAgent``…), which this package
does not import: they need torch, an optional extra."""
from rlpipe.agents.base import Agent, AgentTorch, AgentWithSimplePolicy
from rlpipe.agents.policy_gradient import PolicyGradientAgent
from rlpipe.agents.q_learning import QLearningAgent
from rlpipe.agents.random_agent import RandomAgent
from rlpipe.agents.sarsa import SarsaAgent
from rlpipe.agents.value_iteration import ValueIterationAgent

__all__ = ["Agent", "AgentTorch", "AgentWithSimplePolicy", "PolicyGradientAgent", "QLearningAgent", "RandomAgent", "SarsaAgent",
           "ValueIterationAgent"]
