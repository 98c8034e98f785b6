"""What rlpipe may assume of an agent class beyond rlberry's contract, decided in one place.

rlberry promises only a constructor, ``fit(budget)`` and ``eval(**eval_kwargs)`` (or a ``policy`` for
an ``AgentWithSimplePolicy``). Everything else is a capability an agent has or lacks, and when it lacks
one, rlpipe does what rlberry would do rather than something that changes the agent's numbers:

- **rolls out its policy**: an ``AgentWithSimplePolicy`` that keeps the base ``eval``. The evaluate stage
  then runs the episodes itself (one row per episode); any other agent is scored by calling its own
  ``eval`` (one row per call);
- **array state**: ``get_state``/``set_state`` overridden, so checkpoints need no pickle;
- **additive fit**: ``fit_is_additive = True``, so fitting in checkpointed chunks is exact.

:func:`call_eval` passes ``eval`` what the user wrote, plus rlpipe's own keys only where the
signature accepts them; :func:`call_load` passes ``load`` ``allow_pickle`` only where it names it.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from rlpipe.agents.base import Agent, AgentWithSimplePolicy
from rlpipe.runtime.keywords import method_keywords

# The rollout settings and their defaults are those of the base eval, so a rollout by the evaluate stage
# and agent.eval() agree on what an unset key means.
EVAL_SETTINGS = {name: parameter.default for name, parameter in
                 inspect.signature(AgentWithSimplePolicy.eval).parameters.items()
                 if parameter.default is not inspect.Parameter.empty}


def rolls_out_policy(agent_class: type) -> bool:
    """True when the evaluate stage may roll out ``policy`` itself: the agent did not write its own ``eval``."""
    return (issubclass(agent_class, AgentWithSimplePolicy) and agent_class.eval is AgentWithSimplePolicy.eval
            and agent_class.policy is not AgentWithSimplePolicy.policy)


def has_array_state(agent_class: type) -> bool:
    """True when checkpoints are arrays + JSON (``get_state``/``set_state``), False when they must be pickled."""
    return agent_class.get_state is not Agent.get_state and agent_class.set_state is not Agent.set_state


def fits_additively(agent_class: type) -> bool:
    """True when the agent declares ``fit(a); fit(b)`` equal to ``fit(a + b)``."""
    return bool(getattr(agent_class, "fit_is_additive", False))


def eval_settings(eval_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``eval_horizon``, ``n_simulations`` and ``gamma``: the user's, else the base eval's defaults."""
    return {**EVAL_SETTINGS, **{k: v for k, v in eval_kwargs.items() if k in EVAL_SETTINGS}}


def valid_eval_keywords(agent_class: type) -> set[str] | None:
    """The ``eval_kwargs`` keys an experiment may set (None: any). A policy rollout reads only the rollout
    settings; an agent's own ``eval`` takes what its signature names (anything with ``**kwargs``)."""
    if agent_class.eval is AgentWithSimplePolicy.eval:
        return set(EVAL_SETTINGS)
    return method_keywords(agent_class, "eval")


def call_eval(agent: Any, eval_kwargs: Mapping[str, Any], **extra: Any) -> float:
    """``agent.eval(**eval_kwargs)`` plus each ``extra`` keyword its signature accepts (e.g. rlberry's
    ``n_simulations=1`` per call): an ``eval`` without ``**kwargs`` never receives a key it cannot take."""
    accepted = method_keywords(type(agent), "eval")
    added = {k: v for k, v in extra.items() if accepted is None or k in accepted}
    return float(agent.eval(**{**eval_kwargs, **added}))


def call_load(agent_class: type, filename: Any, allow_pickle: bool = False, **kwargs: Any) -> Any:
    """``agent_class.load(filename, **kwargs)``, with ``allow_pickle`` only if ``load`` names it: an rlberry-style
    ``load(cls, filename, **kwargs)`` passes its keywords on to the constructor, which would not take it."""
    parameter = inspect.signature(agent_class.load).parameters.get("allow_pickle")
    if parameter is not None and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
        kwargs["allow_pickle"] = allow_pickle
    return agent_class.load(filename, **kwargs)


def is_evaluable(agent_class: type) -> bool:
    """True when the agent can be scored: a policy to roll out, or an ``eval`` of its own."""
    return rolls_out_policy(agent_class) or agent_class.eval not in (Agent.eval, AgentWithSimplePolicy.eval)
