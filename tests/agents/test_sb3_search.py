"""Tests of rlpipe.agents.sb3_search: every search space, sampled by real Optuna trials, keeps to its ranges."""
from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from rlpipe.agents.sb3_search import SAMPLERS

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sampled(algo: str, n: int = 40) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    draws = []
    for _ in range(n):
        trial = study.ask()
        draws.append(SAMPLERS[algo](trial))
        study.tell(trial, 0.0)
    return draws


@pytest.mark.parametrize("algo", list(SAMPLERS))
def test_a_search_space_returns_the_same_keys_and_discounts_below_one(algo):
    draws = sampled(algo)
    assert all(set(draw) == set(draws[0]) for draw in draws)
    assert all(0.9 <= draw["gamma"] < 1 for draw in draws)
    assert len({draw["gamma"] for draw in draws}) == len(draws)  # really drawn


def test_ppo_never_asks_for_a_minibatch_longer_than_its_rollout():
    assert all(draw["batch_size"] <= draw["n_steps"] for draw in sampled("PPO", 80))
    assert any(draw["batch_size"] < 64 for draw in sampled("PPO", 80))


def test_off_policy_spaces_keep_gradient_steps_to_env_steps():
    assert all(draw["gradient_steps"] == draw["train_freq"] for draw in sampled("SAC"))
    assert all(1 <= draw["gradient_steps"] <= draw["train_freq"] for draw in sampled("DQN"))
    assert {draw["action_noise"]["type"] for draw in sampled("TD3")} == {"normal", "ornstein_uhlenbeck"}


def test_policy_kwargs_name_their_activation_as_a_config_writes_it():
    assert {draw["policy_kwargs"]["activation_fn"] for draw in sampled("PPO")} == {"tanh", "relu"}


def test_the_search_spaces_import_no_torch():
    code = "import sys, rlpipe.agents.sb3_search; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
