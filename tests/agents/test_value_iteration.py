"""ValueIterationAgent (rlpipe/agents/value_iteration.py): exact values, convergence, no dependence on the seed."""
from __future__ import annotations

import numpy as np
import pytest

from rlpipe.agents import ValueIterationAgent

from agent_assertions import writer_rows
from toy_envs import FL, FL_DET, CountdownEnv


# ---------------------------------------------------------------------------------------------- seeding
def test_value_iteration_does_not_depend_on_the_seed():
    a = ValueIterationAgent(FL, gamma=0.95, seeder=1)
    b = ValueIterationAgent(FL, gamma=0.95, seeder=2)
    a.fit(30)
    b.fit(30)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.q, b.q)


# ---------------------------------------------------------------------------------------------- value iteration
def test_value_iteration_on_deterministic_frozen_lake():
    agent = ValueIterationAgent(FL_DET, gamma=0.9, seeder=0)
    agent.fit(100)
    assert agent.converged
    assert agent.sweeps < 100  # stopped early
    assert agent.total_env_steps == 0
    v = agent.values.reshape(4, 4)
    # Reward 1 only on reaching the goal (15): from a state k steps away, V = 0.9 ** (k - 1).
    assert v[3, 2] == pytest.approx(1.0)  # state 14, next to the goal
    assert v[2, 2] == pytest.approx(0.9)  # state 10
    assert v[0, 0] == pytest.approx(0.9**5)  # start: 6 steps from the goal
    for hole_or_goal in (5, 7, 11, 12, 15):
        assert agent.values[hole_or_goal] == 0.0  # terminal states
    assert agent.eval(eval_horizon=100, n_simulations=5) == 1.0
    residuals = agent.writer.read_tag_value("bellman_residual")
    assert residuals.index.tolist() == list(range(1, agent.sweeps + 1))
    assert residuals.iloc[0] == pytest.approx(1.0)  # first sweep: V(14) goes from 0 to 1
    assert residuals.iloc[-1] < agent.epsilon


def test_value_iteration_budget_after_convergence_is_a_no_op():
    agent = ValueIterationAgent(FL_DET, gamma=0.9, seeder=0)
    agent.fit(100)
    sweeps, rows = agent.sweeps, writer_rows(agent)
    agent.fit(50)
    assert agent.sweeps == sweeps
    assert writer_rows(agent) == rows


def test_value_iteration_needs_a_transition_table():
    with pytest.raises(ValueError, match="needs the transition table env.unwrapped.P"):
        ValueIterationAgent((CountdownEnv, {}), seeder=0)
