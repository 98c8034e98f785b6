"""rlpipe.agents.capabilities: what rlpipe may assume of an agent class, decided in one place."""
from __future__ import annotations

from typing import Any

import pytest

from rlpipe.agents import Agent, AgentWithSimplePolicy, QLearningAgent, RandomAgent
from rlpipe.agents import capabilities as cap
from rlpipe.runtime.keywords import rejected_keywords

from helpers_agents import EvalOnlyAgent, PickledCounterAgent
from rlberry_style_agents import EnvlessAgent, HorizonOnlyEvalAgent, SelfSteppingQAgent, StrictEvalAgent


class NoEvalNoPolicy(Agent):
    def fit(self, budget: int, **kwargs: Any) -> None:
        pass


@pytest.mark.parametrize("agent, rolls, arrays, additive, evaluable", [
    (QLearningAgent, True, True, True, True),
    (RandomAgent, True, True, True, True),
    (SelfSteppingQAgent, True, False, False, True),  # a policy, the base eval, no get_state
    (StrictEvalAgent, False, False, False, True),  # its own eval
    (EvalOnlyAgent, False, True, False, True),
    (PickledCounterAgent, True, False, False, True),
    (EnvlessAgent, False, False, False, True),
    (NoEvalNoPolicy, False, False, False, False),
    (AgentWithSimplePolicy, False, False, False, False),  # no policy to roll out
])
def test_capabilities_of_each_kind_of_agent(agent, rolls, arrays, additive, evaluable) -> None:
    assert cap.rolls_out_policy(agent) is rolls
    assert cap.has_array_state(agent) is arrays
    assert cap.fits_additively(agent) is additive
    assert cap.is_evaluable(agent) is evaluable


def test_eval_settings_default_to_the_base_evals_own_defaults() -> None:
    assert cap.EVAL_SETTINGS == {"eval_horizon": 10**5, "n_simulations": 10, "gamma": 1.0}
    assert cap.eval_settings({"gamma": 0.9, "other": 1}) == {"eval_horizon": 10**5, "n_simulations": 10, "gamma": 0.9}


def test_valid_eval_keywords() -> None:
    assert cap.valid_eval_keywords(QLearningAgent) == {"eval_horizon", "n_simulations", "gamma"}
    assert cap.valid_eval_keywords(HorizonOnlyEvalAgent) == {"eval_horizon"}  # `self` is no keyword of a method
    assert cap.valid_eval_keywords(StrictEvalAgent) == {"eval_horizon", "n_simulations"}
    assert cap.valid_eval_keywords(EnvlessAgent) is None  # eval(**kwargs): anything goes
    assert rejected_keywords("eval", ["self"], cap.valid_eval_keywords(HorizonOnlyEvalAgent)) == [
        "eval does not accept 'self' (allowed: eval_horizon)"]


def test_call_eval_adds_only_what_the_signature_accepts() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[dict] = []

    class Strict(Recorder):
        def eval(self, eval_horizon: int = 5) -> float:
            self.calls.append({"eval_horizon": eval_horizon})
            return 1.0

    class Loose(Recorder):
        def eval(self, **kwargs: Any) -> float:
            self.calls.append(kwargs)
            return 2.0

    strict, loose = Strict(), Loose()
    assert cap.call_eval(strict, {"eval_horizon": 3}, n_simulations=1, self=4) == 1.0  # `self` is not a keyword
    assert cap.call_eval(loose, {"eval_horizon": 3}, n_simulations=1) == 2.0
    assert strict.calls == [{"eval_horizon": 3}] and loose.calls == [{"eval_horizon": 3, "n_simulations": 1}]
