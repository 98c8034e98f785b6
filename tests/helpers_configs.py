"""Configs and optimize tasks shared by the tests of ``rlpipe.spec`` and ``rlpipe.tuning``.

The minimal config (``EXPERIMENT``, ``MINIMAL``, :func:`config`, :func:`top`) and the hyperparameter
study of ``helpers_agents.PeakAgent`` (known optimum: x = 0.3, level "high"): :func:`peak_experiment`,
:func:`peak_task`, :func:`run`. Importing this module does not import Optuna (:func:`run` imports the
study runner when called), so the spec tests that use it stay free of Optuna.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlpipe.core.tasks import OptimizeTask
from rlpipe.io.paths import OptimizePaths
from rlpipe.spec.experiment import validate_study

from study_tasks import optimize_task

if TYPE_CHECKING:
    import optuna

# ---------------------------------------------------------------------------------------------- configs
EXPERIMENT = {"agent": "rlpipe.agents.QLearningAgent", "train_env": "FrozenLake-v1", "fit_budget": 100}
MINIMAL = {"experiments": {"e": EXPERIMENT}}


def config(**experiment_overrides: Any) -> dict:
    """The minimal config with keys of experiment ``e`` replaced (``None`` deletes a key)."""
    result = copy.deepcopy(MINIMAL)
    for key, value in experiment_overrides.items():
        if value is None:
            del result["experiments"]["e"][key]
        else:
            result["experiments"]["e"][key] = value
    return result


def top(**overrides: Any) -> dict:
    return {**copy.deepcopy(MINIMAL), **overrides}


# ---------------------------------------------------------------------------------------------- PeakAgent studies
PEAK = "helpers_agents:PeakAgent"
FLOAT = {"type": "float", "low": 0.0, "high": 1.0}
GRID_SPACE = {  # 3 x 2 x 2 = 12 points; fail_above >= 1 never fails with x <= 0.5, it is only an int dimension
    "x": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.25},
    "level": {"type": "categorical", "choices": ["low", "high"]},
    "fail_above": {"type": "int", "low": 1, "high": 2},
}


def peak_experiment(optimize: dict[str, Any] | None = None, **experiment: Any) -> dict[str, Any]:
    spec = {"agent": PEAK, "train_env": "FrozenLake-v1", "fit_budget": 100,
            "eval_kwargs": {"eval_horizon": 5, "n_simulations": 2},
            "optimize": {"n_trials": 8, "n_fit": 2, "sampler_method": "random", **(optimize or {})}}
    return {**spec, **experiment}


def peak_task(seed: int = 3, init_kwargs: dict[str, Any] | None = None, experiment: dict[str, Any] | None = None,
              **optimize: Any) -> OptimizeTask:
    spec = peak_experiment(optimize, init_kwargs=init_kwargs or {}, **(experiment or {}))
    return optimize_task(validate_study({"seed": seed, "experiments": {"peak": spec}}), "peak")


def run(task: OptimizeTask, folder: Path, **kwargs: Any) -> tuple[dict[str, Any], optuna.Study]:
    """One worker over the study, then the study as stored."""
    from rlpipe.tuning.study import open_study, run_worker

    paths = OptimizePaths(folder)
    result = run_worker(task, paths, **kwargs)
    return result, open_study(task, paths)
