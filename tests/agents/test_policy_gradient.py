"""PolicyGradientAgent (numpy PPO): additivity, checkpoints, seeding, validation, search space, learning."""
from __future__ import annotations

import numpy as np
import optuna
import pytest

from rlpipe.agents.policy_gradient import PolicyGradientAgent
from rlpipe.runtime.rollouts import run_episodes

from agent_assertions import assert_same_agent, writer_rows

# Small and fast: a few updates in a few hundred steps.
SMALL = {"n_steps": 64, "n_minibatches": 4, "n_epochs": 2, "hidden_sizes": (16, 16)}


def make(seed: int = 0, **overrides) -> PolicyGradientAgent:
    return PolicyGradientAgent("CartPole-v1", seeder=seed, **{**SMALL, **overrides})


def test_fit_is_additive_across_a_split_mid_rollout():
    whole = make()
    whole.fit(500)
    split = make()
    split.fit(150)  # 150 = 2 * 64 + 22: the second call starts with a partly filled buffer
    assert split.buffer_pos == 150 % 64
    split.fit(350)
    assert_same_agent(whole, split)
    assert writer_rows(whole) == writer_rows(split)
    assert {"policy_loss", "value_loss", "entropy", "episode_rewards"} <= set(whole.writer._tags)
    assert whole.n_updates == 500 // 64


def test_save_load_continue_equals_uninterrupted(tmp_path):
    whole = make(seed=3)
    whole.fit(400)
    first = make(seed=3)
    first.fit(170)
    path = first.save(tmp_path / "agent.npz")
    resumed = PolicyGradientAgent.load(path, env="CartPole-v1", seeder=3, **SMALL)
    assert resumed.buffer_pos == first.buffer_pos > 0
    assert_same_agent(first, resumed, compare_writers=False)  # writer data is saved beside the checkpoint
    resumed.fit(230)
    assert_same_agent(whole, resumed, compare_writers=False)
    whole_losses = whole.writer.read_tag_value("policy_loss").to_numpy()
    # the resumed agent's writer only saw the updates after the checkpoint
    np.testing.assert_array_equal(resumed.writer.read_tag_value("policy_loss").to_numpy(),
                                  whole_losses[len(first.writer.read_tag_value("policy_loss")):])


def test_same_seed_same_agent_and_different_seed_differs():
    a, b, c = make(seed=7), make(seed=7), make(seed=8)
    for agent in (a, b, c):
        agent.fit(200)
    assert_same_agent(a, b)
    assert writer_rows(a) == writer_rows(b)
    assert not np.array_equal(a.theta, c.theta)


def test_policy_is_greedy_and_does_not_use_the_rng():
    agent = make()
    agent.fit(100)
    before = agent.rng.bit_generator.state
    obs = np.array([0.01, -0.02, 0.03, 0.04], dtype=np.float32)
    action = agent.policy(obs)
    assert action in (0, 1)
    assert action == int(np.argmax(agent._policy_logits(obs)))
    assert agent.rng.bit_generator.state == before


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_steps": 32, "n_minibatches": 64}, "n_minibatches"),
        ({"n_epochs": 1.5}, "n_epochs"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"clip_range": 0.0}, "clip_range"),
        ({"ent_coef": -0.01}, "ent_coef"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"hidden_sizes": ()}, "hidden_sizes"),
        ({"hidden_sizes": (16, 0)}, "hidden_sizes"),
    ],
)
def test_bad_hyperparameter_raises_value_error_naming_it(kwargs, name):
    with pytest.raises(ValueError, match=name):
        PolicyGradientAgent("CartPole-v1", seeder=0, **kwargs)


def test_wrong_space_raises_value_error():
    with pytest.raises(ValueError, match="Box observation space"):
        PolicyGradientAgent("FrozenLake-v1", seeder=0)
    with pytest.raises(ValueError, match="Discrete action space"):
        PolicyGradientAgent("Pendulum-v1", seeder=0)


def test_budget_must_be_a_non_negative_integer():
    agent = make()
    with pytest.raises(ValueError, match="budget"):
        agent.fit(-1)
    agent.fit(0)
    assert agent.total_env_steps == 0


def test_sample_parameters_builds_an_agent():
    fixed = optuna.trial.FixedTrial({
        "hidden_size": 32, "learning_rate": 1e-3, "n_steps": 128, "n_minibatches": 4, "n_epochs": 4,
        "gamma": 0.99, "gae_lambda": 0.9, "clip_range": 0.2, "ent_coef": 1e-3,
    })
    params = PolicyGradientAgent.sample_parameters(fixed)
    assert params["hidden_sizes"] == (32, 32) and params["n_steps"] == 128
    PolicyGradientAgent("CartPole-v1", seeder=0, **params).fit(10)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        trial = study.ask()
        agent = PolicyGradientAgent("CartPole-v1", seeder=0, **PolicyGradientAgent.sample_parameters(trial))
        agent.fit(10)
        study.tell(trial, 0.0)


def test_gradients_match_finite_differences():
    """The hand-written backward pass agrees with numerical derivatives of the same loss."""
    agent = make(seed=1, ent_coef=0.05, max_grad_norm=None, normalize_advantages=False)
    rng = np.random.default_rng(0)
    n = 8
    obs = rng.standard_normal((n, 4))
    actions = rng.integers(2, size=n)
    old_log_probs = np.log(rng.uniform(0.3, 0.7, size=n))
    advantages = rng.standard_normal(n)
    returns = rng.standard_normal(n)

    def loss() -> float:
        stats = agent._minibatch_gradients(obs, actions, old_log_probs, advantages, returns)
        return stats[0] - agent.ent_coef * stats[2] + agent.vf_coef * stats[1]

    loss()
    grads = {key: value.copy() for key, value in agent._grads.items()}
    assert np.abs(agent.grad).max() > 0
    eps = 1e-6
    for key in ("pi.W0", "pi.b1", "pi.W2", "vf.W0", "vf.b2"):
        param = agent.params[key]
        for flat in range(0, param.size, max(1, param.size // 5)):
            index = np.unravel_index(flat, param.shape)
            saved = param[index]
            param[index] = saved + eps
            up = loss()
            param[index] = saved - eps
            down = loss()
            param[index] = saved
            numeric = (up - down) / (2 * eps)
            assert grads[key][index] == pytest.approx(numeric, rel=1e-4, abs=1e-8), (key, index)


def test_learns_cartpole_quickly():
    """Default hyperparameters: well above a random policy (~22) after a short fit."""
    agent = PolicyGradientAgent("CartPole-v1", seeder=0)
    agent.set_writer(None)
    agent.fit(15_000)
    returns = run_episodes(agent.policy, agent.eval_env, list(range(10)), 500, 1.0)["return"]
    assert returns.mean() > 150


def test_gae_bootstraps_after_truncation_but_not_after_termination():
    agent = make(n_steps=4, n_minibatches=1, gamma=0.9, gae_lambda=0.5)
    agent.buf_rewards[:] = 1.0
    agent.buf_terminated[:] = [False, True, False, False]
    agent.buf_done[:] = [False, True, True, False]  # step 1 terminates, step 2 is truncated
    values, next_values = np.array([1.0, 2.0, 3.0, 4.0]), np.array([5.0, 6.0, 7.0, 8.0])
    advantages = agent._advantages(values, next_values)
    # deltas: 1 + .9*5 - 1 = 4.5; 1 - 2 = -1 (terminated); 1 + .9*7 - 3 = 4.3 (truncated: bootstrap);
    # 1 + .9*8 - 4 = 4.2 (rollout cut: bootstrap). Carry gamma*lambda = .45 only into step 0.
    np.testing.assert_allclose(advantages, [4.5 + 0.45 * -1.0, -1.0, 4.3, 4.2])
