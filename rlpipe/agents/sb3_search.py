"""Search spaces of the Stable-Baselines3 agents for hyperparameter optimisation, one per algorithm.

In the spirit of rl-baselines3-zoo's samplers (what to tune and over which ranges), scaled to the budgets an
rlpipe study tunes on (one environment, tens of thousands of steps). Each returns the same keys whatever it draws
(rlpipe finds the tuned keys by probing), and only values a config can hold: ``policy_kwargs`` names its
activation (``"tanh"``), which :class:`~rlpipe.agents.sb3.SB3Agent` turns into the torch module. Discount factors
are sampled as ``1 - gamma`` on a log scale, where their effect (the horizon) varies evenly. No torch here.
"""
from __future__ import annotations

from typing import Any

_ACTOR_CRITIC_ARCHS = {"tiny": {"pi": [64], "vf": [64]}, "small": {"pi": [64, 64], "vf": [64, 64]},
                       "medium": {"pi": [256, 256], "vf": [256, 256]}}
_Q_ARCHS = {"tiny": [64], "small": [64, 64], "medium": [256, 256]}
_CONTINUOUS_ARCHS = {"small": [64, 64], "medium": [256, 256], "big": [400, 300]}


def _discount(trial: Any, name: str, low: float, high: float) -> float:
    """``1 - x`` with ``x`` log-uniform in [low, high] (suggested as ``one_minus_<name>``)."""
    return 1.0 - trial.suggest_float(f"one_minus_{name}", low, high, log=True)


def _actor_critic(trial: Any) -> dict[str, Any]:
    """What PPO and A2C tune alike: discounting, learning rate, entropy bonus, gradient clipping and networks."""
    arch = trial.suggest_categorical("net_arch", list(_ACTOR_CRITIC_ARCHS))
    return {
        "gamma": _discount(trial, "gamma", 1e-4, 0.05),
        "gae_lambda": _discount(trial, "gae_lambda", 1e-3, 0.2),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
        "ent_coef": trial.suggest_float("ent_coef", 1e-8, 0.1, log=True),
        "max_grad_norm": trial.suggest_float("max_grad_norm", 0.3, 2.0),
        "policy_kwargs": {"net_arch": _ACTOR_CRITIC_ARCHS[arch],
                          "activation_fn": trial.suggest_categorical("activation_fn", ["tanh", "relu"])},
    }


def _training_frequency(trial: Any, choices: list[int]) -> dict[str, int]:
    """``train_freq`` env steps between updates, each update taking as many gradient steps (zoo's choice for SAC and
    TD3): the ratio of gradient steps to env steps stays 1."""
    train_freq = trial.suggest_categorical("train_freq", choices)
    return {"train_freq": train_freq, "gradient_steps": train_freq}


def sample_ppo(trial: Any) -> dict[str, Any]:
    n_steps = trial.suggest_categorical("n_steps", [64, 128, 256, 512, 1024, 2048])
    batch_size = trial.suggest_categorical("batch_size", [32, 64, 128, 256])
    return {
        "n_steps": n_steps,
        "batch_size": min(batch_size, n_steps),  # a minibatch cannot exceed the rollout
        "n_epochs": trial.suggest_categorical("n_epochs", [1, 5, 10, 20]),
        "clip_range": trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3]),
        **_actor_critic(trial),
    }


def sample_a2c(trial: Any) -> dict[str, Any]:
    return {
        "n_steps": trial.suggest_categorical("n_steps", [5, 8, 16, 32, 64, 128]),
        "normalize_advantage": trial.suggest_categorical("normalize_advantage", [False, True]),
        **_actor_critic(trial),
    }


def sample_dqn(trial: Any) -> dict[str, Any]:
    train_freq = trial.suggest_categorical("train_freq", [1, 4, 16, 64, 256])
    # zoo's subsampling: fewer gradient steps than env steps between updates
    subsample = trial.suggest_categorical("subsample_steps", [1, 2, 4, 8])
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "buffer_size": trial.suggest_categorical("buffer_size", [10_000, 50_000, 100_000]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 500, 1000, 5000]),
        "gamma": _discount(trial, "gamma", 1e-3, 0.1),
        "exploration_fraction": trial.suggest_float("exploration_fraction", 0.05, 0.5),
        "exploration_final_eps": trial.suggest_float("exploration_final_eps", 0.0, 0.2),
        "target_update_interval": trial.suggest_categorical("target_update_interval", [1, 10, 100, 1000, 5000]),
        "train_freq": train_freq,
        "gradient_steps": max(train_freq // subsample, 1),
        "policy_kwargs": {"net_arch": _Q_ARCHS[trial.suggest_categorical("net_arch", list(_Q_ARCHS))]},
    }


def _off_policy_continuous(trial: Any) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
        "buffer_size": trial.suggest_categorical("buffer_size", [10_000, 100_000, 1_000_000]),
        "learning_starts": trial.suggest_categorical("learning_starts", [0, 100, 1000, 5000]),
        "gamma": _discount(trial, "gamma", 1e-3, 0.05),
        "tau": trial.suggest_categorical("tau", [0.005, 0.01, 0.02, 0.05]),
        **_training_frequency(trial, [1, 4, 8, 16, 64]),
        "policy_kwargs": {"net_arch": _CONTINUOUS_ARCHS[trial.suggest_categorical("net_arch", list(_CONTINUOUS_ARCHS))]},
    }


def sample_sac(trial: Any) -> dict[str, Any]:
    return _off_policy_continuous(trial)  # the entropy coefficient is learned (SAC's default ent_coef="auto")


def sample_td3(trial: Any) -> dict[str, Any]:
    noise = trial.suggest_categorical("noise_type", ["normal", "ornstein_uhlenbeck"])
    return {**_off_policy_continuous(trial),
            "action_noise": {"type": noise, "sigma": trial.suggest_float("noise_std", 0.05, 0.8)}}


SAMPLERS = {"PPO": sample_ppo, "A2C": sample_a2c, "DQN": sample_dqn, "SAC": sample_sac, "TD3": sample_td3}
