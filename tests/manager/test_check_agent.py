"""rlpipe.manager.check_agent: the checks pass for agents that keep their promises and name the broken one otherwise."""
from __future__ import annotations

from typing import Any

import pytest

from rlpipe.agents import QLearningAgent, RandomAgent, ValueIterationAgent
from rlpipe.manager.check_agent import check_fit_additive, check_rl_agent, check_save_load, check_seeding_agent

from rlberry_style_agents import (
    FreshEntropyAgent,
    GlobalRandomAgent,
    OneStepQAgent,
    PythonRandomAgent,
    SelfSteppingQAgent,
    StrictEvalAgent,
)

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


class ResumesWithoutCountsAgent(OneStepQAgent):
    """Additive in memory, but loading forgets the visit counts: fitting it in resumable chunks is not exact."""

    def set_state(self, state: dict[str, Any]) -> None:
        self.totals = state["totals"]


@pytest.mark.parametrize("agent, env", [(QLearningAgent, LAKE), (RandomAgent, "continuous_state"),
                                        (ValueIterationAgent, LAKE), (SelfSteppingQAgent, LAKE),
                                        (StrictEvalAgent, LAKE), (OneStepQAgent, TAXI)])
def test_agents_that_keep_their_promises_pass(agent, env) -> None:
    check_rl_agent(agent, env)


def test_a_false_additivity_claim_is_caught() -> None:
    check_fit_additive(QLearningAgent, TAXI, budget=300)
    with pytest.raises(AssertionError, match="must not declare fit_is_additive = True"):
        check_fit_additive(ClaimsAdditiveQAgent, TAXI, budget=300)
    with pytest.raises(AssertionError, match="fit_is_additive"):
        check_rl_agent(ClaimsAdditiveQAgent, TAXI)


def test_the_additivity_check_resumes_from_a_checkpoint_between_the_fits() -> None:
    """An additive agent is fitted in chunks and resumed after a kill: fit(a); save; load; fit(b) must be fit(a + b)."""
    check_fit_additive(OneStepQAgent, TAXI, budget=50)  # its env's and action space's generators survive the checkpoint
    with pytest.raises(AssertionError, match=r"fit\(50\); save; load; fit\(50\) differs from fit\(100\)"):
        check_fit_additive(ResumesWithoutCountsAgent, TAXI, budget=50)


def test_draws_from_the_global_generator_are_caught() -> None:
    with pytest.raises(AssertionError, match="GlobalRandomAgent.fit draws from numpy's or Python's global"):
        check_seeding_agent(GlobalRandomAgent, LAKE)


def test_draws_from_pythons_random_module_are_caught() -> None:
    with pytest.raises(AssertionError, match="PythonRandomAgent.fit draws from numpy's or Python's global"):
        check_seeding_agent(PythonRandomAgent, LAKE)


def test_an_agent_seeded_from_fresh_entropy_is_not_reproducible() -> None:
    """np.random.default_rng() leaves every global generator alone, so only the comparison of two agents of one seed
    can catch it."""
    message = r"FreshEntropyAgent is not reproducible: two instances with seed 42 behave differently after fit\(20\)"
    with pytest.raises(AssertionError, match=message):
        check_seeding_agent(FreshEntropyAgent, LAKE)
    with pytest.raises(AssertionError, match="FreshEntropyAgent is not reproducible"):
        check_rl_agent(FreshEntropyAgent, LAKE)


def test_a_checkpoint_that_loses_state_is_caught() -> None:
    with pytest.raises(AssertionError, match="loaded from its checkpoint does not behave as the agent that was saved"):
        check_save_load(ForgetfulQAgent, TAXI, budget=500)
