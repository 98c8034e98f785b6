"""What the tests of the fit and evaluate stages share (tests/core/test_fitting.py, tests/core/test_evaluation.py):
a small validated Q-learning study on FrozenLake-v1, and the leftovers an interrupted write would leave."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlpipe.spec.experiment import validate_study


def make_study(**overrides: Any):
    experiment = {
        "agent": "rlpipe.agents.QLearningAgent",
        "train_env": "FrozenLake-v1",
        "fit_budget": 1000,
        "n_fit": 2,
        "n_checkpoints": 5,
        "init_kwargs": {"epsilon_decay_steps": 300},
        "eval_kwargs": {"n_simulations": 6, "eval_horizon": 100, "gamma": 0.9},
        "writer": {"print_log": False},
    }
    experiment.update(overrides)
    return validate_study({"seed": 1, "experiments": {"ql": experiment}})


def leftovers(folder: Path) -> list[str]:
    """Temporary files or progress state left in ``folder``."""
    return [str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name == "progress"]

