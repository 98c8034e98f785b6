"""rlpipe.manager.check_agent: the checks pass for agents that keep their promises and name the broken one otherwise."""
from __future__ import annotations

from typing import Any

import pytest

from rlpipe.agents import QLearningAgent, RandomAgent, ValueIterationAgent
from rlpipe.manager.check_agent import check_fit_additive, check_rl_agent, check_save_load, check_seeding_agent

from rlberry_style_agents import GlobalRandomAgent, SelfSteppingQAgent, StrictEvalAgent

LAKE = "discrete_state"
TAXI = ("Taxi-v4", {})


class ClaimsAdditiveQAgent(SelfSteppingQAgent):
    """Declares an additive fit it does not have: it restarts its episode in every fit call."""

    fit_is_additive = True


class ForgetfulQAgent(QLearningAgent):
    """Its checkpoint forgets the Q table."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass


@pytest.mark.parametrize("agent, env", [(QLearningAgent, LAKE), (RandomAgent, "continuous_state"),
                                        (ValueIterationAgent, LAKE), (SelfSteppingQAgent, LAKE),
                                        (StrictEvalAgent, LAKE)])
def test_agents_that_keep_their_promises_pass(agent, env) -> None:
    check_rl_agent(agent, env)


def test_a_false_additivity_claim_is_caught() -> None:
    check_fit_additive(QLearningAgent, TAXI, budget=300)
    with pytest.raises(AssertionError, match="must not declare fit_is_additive = True"):
        check_fit_additive(ClaimsAdditiveQAgent, TAXI, budget=300)
    with pytest.raises(AssertionError, match="fit_is_additive"):
        check_rl_agent(ClaimsAdditiveQAgent, TAXI)


def test_draws_from_the_global_generator_are_caught() -> None:
    with pytest.raises(AssertionError, match="GlobalRandomAgent.fit draws from numpy's or Python's global"):
        check_seeding_agent(GlobalRandomAgent, LAKE)


def test_a_checkpoint_that_loses_state_is_caught() -> None:
    with pytest.raises(AssertionError, match="loaded from its checkpoint does not behave as the agent that was saved"):
        check_save_load(ForgetfulQAgent, TAXI, budget=500)
