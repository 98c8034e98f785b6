"""ExperimentManager.optimize_hyperparams: rlberry's signature over the pipeline's optimisation core."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import pandas as pd
import pytest

from rlpipe.errors import OptimizationError
from rlpipe.manager.experiment_manager import ExperimentManager

from helpers_agents import NoiseAgent, PeakAgent

LAKE = ("FrozenLake-v1", {"is_slippery": False})
RANDOM = {"timeout": None, "sampler_method": "random", "n_optuna_workers": 2}


def peak_manager(tmp_path: Path, agent: type = PeakAgent, **kwargs) -> ExperimentManager:
    settings = dict(train_env=LAKE, fit_budget=100, n_fit=2, seed=11, output_dir=tmp_path, outdir_id_style=None,
                    eval_kwargs={"eval_horizon": 5, "n_simulations": 2}, default_writer_kwargs={"print_log": False})
    return ExperimentManager(agent, **{**settings, **kwargs})


def trials(manager: ExperimentManager) -> pd.DataFrame:
    return pd.read_parquet(manager.output_dir / "optimize" / "trials.parquet").sort_values("number", ignore_index=True)


def test_signature_is_rlberrys_plus_search_space_storage_and_confirm() -> None:
    parameters = inspect.signature(ExperimentManager.optimize_hyperparams).parameters
    expected = {"n_trials": 256, "timeout": 60, "n_fit": 2, "n_optuna_workers": 2, "optuna_parallelization": "thread",
                "sampler_method": "optuna_default", "pruner_method": "halving", "continue_previous": False,
                "fit_fraction": 1.0, "sampler_kwargs": None, "disable_evaluation_writers": True,
                "custom_eval_function": None, "search_space": None, "storage": None, "confirm": None}
    assert {name: p.default for name, p in parameters.items() if name != "self"} == expected


def test_returns_the_best_trial_and_updates_init_kwargs_then_fit_uses_them(tmp_path) -> None:
    manager = peak_manager(tmp_path, init_kwargs={"x": -0.9, "fit_seconds": 0.0})
    manager.fit()
    best = manager.optimize_hyperparams(n_trials=24, timeout=None, n_optuna_workers=1)  # TPE, reproducible with 1 worker
    table = trials(manager)
    assert len(table) == 24 and set(table["state"]) == {"COMPLETE"}
    top = table.loc[table["value"].idxmax()]
    assert best == {"x": top["params_x"], "level": top["params_level"]} == json.loads(top["user_attrs_init_kwargs"])
    assert best["level"] == "high" and abs(best["x"] - PeakAgent.OPTIMUM) < 0.2
    assert manager.init_kwargs == {**best, "fit_seconds": 0.0}  # untuned keys kept
    assert manager.best_hyperparams == best
    assert not manager.paths.instance(0).checkpoint.exists()  # fitted with other parameters: deleted
    manager.fit()
    assert [agent.x for agent in manager.get_agent_instances()] == [best["x"]] * 2
    assert ExperimentManager.load(manager.output_dir).best_hyperparams == best


def test_threads_and_processes_give_the_same_trials(tmp_path) -> None:
    tables = []
    for parallelization in ("thread", "process"):
        manager = peak_manager(tmp_path / parallelization)
        manager.optimize_hyperparams(n_trials=6, optuna_parallelization=parallelization, **RANDOM)
        tables.append(trials(manager)[["number", "value", "params_x", "params_level"]])
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_continue_previous_adds_trials_and_otherwise_the_study_starts_over(tmp_path) -> None:
    manager = peak_manager(tmp_path)
    manager.optimize_hyperparams(n_trials=3, **RANDOM)
    first = trials(manager)
    manager.optimize_hyperparams(n_trials=2, continue_previous=True, **RANDOM)
    resumed = trials(manager)
    assert len(resumed) == 5
    pd.testing.assert_frame_equal(resumed.iloc[:3][["number", "value", "params_x"]], first[["number", "value", "params_x"]])
    manager.optimize_hyperparams(n_trials=2, **RANDOM)
    restarted = trials(manager)
    assert len(restarted) == 2  # same trials as the first two of a fresh study
    pd.testing.assert_frame_equal(restarted[["number", "value", "params_x"]], first.iloc[:2][["number", "value", "params_x"]])


def test_custom_eval_function_scores_the_fitted_agents(tmp_path) -> None:
    seen: list[int] = []

    def closest_to_minus_half(agents: list) -> float:
        seen.append(len(agents))
        assert all(agent.fitted == 100 for agent in agents)
        return -abs(agents[0].x + 0.5)

    manager = peak_manager(tmp_path)
    best = manager.optimize_hyperparams(n_trials=20, n_fit=3, custom_eval_function=closest_to_minus_half, **RANDOM)
    assert seen == [3] * 20
    assert abs(best["x"] + 0.5) < 0.1


def test_declarative_search_space_and_rlberry_style_grid(tmp_path) -> None:
    space = {"x": {"type": "float", "low": 0.0, "high": 0.6, "step": 0.3}, "level": {"type": "categorical", "choices": ["high"]}}
    manager = peak_manager(tmp_path / "declarative")
    best = manager.optimize_hyperparams(n_trials=50, timeout=None, sampler_method="grid", search_space=space)
    assert len(trials(manager)) == 3 and best == {"x": 0.3, "level": "high"}  # the grid has 3 points

    rlberry_style = peak_manager(tmp_path / "rlberry")
    best = rlberry_style.optimize_hyperparams(n_trials=50, timeout=None, sampler_method="grid",
                                              sampler_kwargs={"search_space": {"x": [-1.0, 0.25, 1.0], "level": ["low", "high"]}})
    assert len(trials(rlberry_style)) == 6 and best == {"x": 0.25, "level": "high"}


def test_pruning_with_fit_fraction(tmp_path) -> None:
    manager = peak_manager(tmp_path, fit_budget=400)
    manager.optimize_hyperparams(n_trials=16, fit_fraction=0.25, pruner_method="median", **RANDOM)
    states = trials(manager)["state"].value_counts()
    assert states["PRUNED"] > 0 and states["COMPLETE"] > 0


def test_more_trial_instances_than_manager_instances_with_per_instance_kwargs(tmp_path) -> None:
    """rlberry #218: optimize's n_fit above the manager's n_fit broke init_kwargs_per_instance."""
    manager = peak_manager(tmp_path, n_fit=2, init_kwargs_per_instance=[{"fit_seconds": 0.0}, {"fit_seconds": 0.001}])
    manager.optimize_hyperparams(n_trials=2, n_fit=5, **RANDOM)
    assert len(trials(manager)) == 2


def test_every_trial_failing_raises_with_the_first_error(tmp_path) -> None:
    manager = peak_manager(tmp_path, init_kwargs={"fail_above": -2.0})
    with pytest.raises(OptimizationError, match=r"none completed.*ValueError: x=.* is above fail_above=-2.0"):
        manager.optimize_hyperparams(n_trials=10, **RANDOM)
    assert manager.init_kwargs == {"fail_above": -2.0} and manager.best_hyperparams is None


def test_confirm_writes_back_only_a_setting_shown_better_on_fresh_seeds(tmp_path) -> None:
    """The pipeline's confirmation on the manager's pool: PeakAgent's x = -0.9, level "low" is beaten, so the confirmed
    winner replaces it."""
    manager = peak_manager(tmp_path, init_kwargs={"x": -0.9, "level": "low", "fit_seconds": 0.0})
    best = manager.optimize_hyperparams(n_trials=6, confirm={"top_k": 2, "n_fit": 6}, **RANDOM)
    selection = manager.confirmation
    assert selection["decision"] == "written" and best == selection["chosen"]["init_kwargs"] == manager.best_hyperparams
    assert manager.init_kwargs == {**best, "fit_seconds": 0.0} and best["level"] == "high"
    table = pd.read_csv(manager.output_dir / "optimize" / "confirmation.csv", dtype={"candidate": str})
    assert list(table.candidate) == ["0", "1", "current"] and table.written.sum() == 1
    assert json.loads((manager.output_dir / "optimize" / "selection.json").read_text())["chosen"]["init_kwargs"] == best


def test_confirm_keeps_the_current_values_when_the_scores_are_noise(tmp_path) -> None:
    manager = peak_manager(tmp_path, NoiseAgent, init_kwargs={"x": 0.0, "level": "low"})
    manager.fit()
    best = manager.optimize_hyperparams(n_trials=6, confirm={}, **RANDOM)
    assert manager.confirmation["decision"] == "refused" and "so nothing was written" in manager.confirmation["reason"]
    assert best == {"x": 0.0, "level": "low"} == manager.init_kwargs  # the current values: nothing replaced
    assert manager.paths.instance(0).checkpoint.exists()  # fitted with the kept values: still valid
    top = trials(manager).sort_values("value", ascending=False).iloc[0]
    assert json.loads(top["user_attrs_init_kwargs"]) != best  # what rlberry's behaviour would have taken


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sampler_method": "tpe"}, "sampler_method"),
    ({"pruner_method": "hyperband"}, "pruner_method"),
    ({"fit_fraction": 0.0}, "fit_fraction"),
    ({"optuna_parallelization": "dask"}, "optuna_parallelization"),
    ({"sampler_method": "grid"}, "grid sampler needs a search_space"),
    ({"search_space": {"y": {"type": "float", "low": 0, "high": 1}}}, "PeakAgent does not accept 'y'"),
    ({"sampler_kwargs": {"seed": 3}}, "sampler_kwargs.seed"),
    ({"confirm": {"n_fit": 3}}, "confirm.n_fit: 3 seeds are too few for the confirmation ever to pass"),
    ({"confirm": {"top_n": 3}}, "confirm: unknown key 'top_n'"),
])
def test_bad_arguments_fail_before_any_trial(tmp_path, kwargs, message) -> None:
    manager = peak_manager(tmp_path)
    with pytest.raises(ValueError, match=message):
        manager.optimize_hyperparams(n_trials=2, **kwargs)
    assert not (manager.output_dir / "optimize").exists()
