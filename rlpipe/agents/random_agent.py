"""An agent that acts uniformly at random: the baseline every table needs."""
from __future__ import annotations

from typing import Any

from rlpipe.agents.base import AgentWithSimplePolicy


class RandomAgent(AgentWithSimplePolicy):
    """Samples actions from the action space; ``fit`` just runs ``budget`` random environment steps."""

    name = "Random"
    fit_is_additive = True

    def fit(self, budget: int, **kwargs: Any) -> None:
        for _ in range(int(budget)):
            self.current_observation()
            self.step_env(self.env.action_space.sample())

    def policy(self, observation: Any) -> Any:
        return self.eval_env.action_space.sample()

    def get_state(self) -> dict[str, Any]:
        # Nothing learned; the action spaces' generators it samples from are saved by the base class.
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass

    @classmethod
    def sample_parameters(cls, trial: Any) -> dict[str, Any]:
        return {}
