"""rlpipe.tuning.study: the shared Optuna study, its workers and trials, on PeakAgent (known optimum: x = 0.3,
level "high"): samplers and pruners in a run, reproducibility, resume, failures, interrupted trials, the study's
outputs, and what a config's ``optimize`` section makes of the study.

PeakAgent's score is ``fitted / 100 * (1 - (x - 0.3)**2) + 0.5 * (level == "high")`` plus noise of
0.01, so with fit_budget 100 a trial's value is about ``1 - (x - 0.3)**2 + bonus``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from filelock import FileLock
from optuna.trial import FixedTrial, TrialState

from rlpipe.core.plots import importance_figure, optimization_history_figure
from rlpipe.core.tasks import OptimizeTask
from rlpipe.errors import ConfigError, OptimizationError
from rlpipe.io.paths import OptimizePaths
from rlpipe.io.provenance import library_versions
from rlpipe.spec.experiment import validate_study
from rlpipe.spec.optimize import optimize_problems, sampler_problems
from rlpipe.tuning.report import trials_table
from rlpipe.tuning.study import (
    FAILURES_BEFORE_GIVING_UP,
    counted_trials,
    delete_study,
    fraction_budgets,
    open_study,
    run_worker,
    stored_trial_count,
    summarize_study,
    trial_cap,
    trial_score,
)

from helpers_agents import PeakAgent
from helpers_configs import FLOAT, GRID_SPACE, peak_experiment, peak_task, run
from study_tasks import optimize_task

PNG = b"\x89PNG\r\n\x1a\n"
OPTIMUM = PeakAgent.OPTIMUM  # 0.3


def snapshot(study: optuna.Study) -> list[tuple[int, str, dict[str, Any], float | None]]:
    return [(t.number, t.state.name, t.params, t.value) for t in study.get_trials()]


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials()]


def expected_score(params: dict[str, Any], fitted: float = 100) -> float:
    """PeakAgent's score without its noise."""
    return fitted / 100 * (1 - (params["x"] - OPTIMUM) ** 2) + (0.5 if params["level"] == "high" else 0.0)


def figure_texts(figure: Any) -> list[str]:
    return [text.get_text() for axes in figure.axes for text in axes.texts]


# ---------------------------------------------------------------------------------------------- samplers
@pytest.mark.parametrize("method", ["random", "optuna_default", "cmaes"])
def test_each_sampler_completes_the_requested_trials(tmp_path, method) -> None:
    task = peak_task(sampler_method=method, n_trials=6)
    result, study = run(task, tmp_path / "optimize")
    assert states(study) == ["COMPLETE"] * 6
    assert result["trials"] == {n: "COMPLETE" for n in range(6)} and result["target"] == 6
    for trial in study.get_trials():
        assert -1.0 <= trial.params["x"] <= 1.0 and trial.params["level"] in ("low", "high")
        assert trial.user_attrs["init_kwargs"] == trial.params
        # the mean evaluation return of the 2 instances, up to PeakAgent's noise (sd 0.01 per episode)
        assert trial.value == pytest.approx(expected_score(trial.params), abs=0.04)


def test_grid_visits_every_point_once_and_caps_the_total_at_the_grid_size(tmp_path) -> None:
    task = peak_task(sampler_method="grid", search_space=GRID_SPACE, n_trials=20, n_fit=1)
    assert trial_cap(task, 20) == 12 and trial_cap(task, 5) == 5
    result, study = run(task, tmp_path / "optimize")
    assert result["target"] == 12 and states(study) == ["COMPLETE"] * 12
    visited = sorted(tuple(t.params[k] for k in GRID_SPACE) for t in study.get_trials())
    assert visited == sorted(itertools.product([0.0, 0.25, 0.5], ["low", "high"], [1, 2]))
    # a second worker finds the grid done and runs nothing
    again, study = run(task, tmp_path / "optimize")
    assert again["trials"] == {} and len(study.get_trials()) == 12


def test_grid_with_fewer_trials_than_points_and_rlberry_style_grid(tmp_path) -> None:
    task = peak_task(sampler_method="grid", search_space=GRID_SPACE, n_trials=5, n_fit=1)
    _, study = run(task, tmp_path / "declarative")
    points = {tuple(t.params[k] for k in GRID_SPACE) for t in study.get_trials()}
    assert len(study.get_trials()) == 5 and len(points) == 5  # no point twice
    # rlberry's way: the grid given as sampler_kwargs.search_space, the agent's sample_parameters asks for it
    explicit = {"x": [0.1, 0.3], "level": ["low", "high"]}
    task = peak_task(sampler_method="grid", sampler_kwargs={"search_space": explicit}, n_trials=10, n_fit=1)
    assert trial_cap(task, 10) == 4
    _, study = run(task, tmp_path / "explicit")
    assert sorted((t.params["x"], t.params["level"]) for t in study.get_trials()) == \
        sorted(itertools.product([0.1, 0.3], ["low", "high"]))


def test_grid_point_of_an_interrupted_trial_is_tried_again(tmp_path) -> None:
    """A killed grid trial is failed, which the grid sampler counts as visited: its point must still be run,
    even when the killed trials held the study's last slots."""
    task = peak_task(sampler_method="grid", search_space=GRID_SPACE, n_trials=12, n_fit=1)
    paths = OptimizePaths(tmp_path / "optimize")
    run_worker(task, paths, n_trials=10)
    with FileLock(paths.study_lock):
        study = open_study(task, paths)
        dead = [study.ask(), study.ask()]  # their workers "die": the running locks are free
    assert [trial.number for trial in dead] == [10, 11]
    run_worker(task, paths)
    study = open_study(task, paths)
    trials = study.get_trials()
    assert [t.state for t in trials[10:12]] == [TrialState.FAIL] * 2
    assert all(t.user_attrs["interrupted"] is True for t in trials[10:12])
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    visited = sorted(tuple(t.params[k] for k in GRID_SPACE) for t in complete)
    assert visited == sorted(itertools.product([0.0, 0.25, 0.5], ["low", "high"], [1, 2]))
    assert len(counted_trials(study)) == 12 == len(complete)


# ---------------------------------------------------------------------------------------------- pruners
def test_fraction_budgets_sum_to_the_fit_budget() -> None:
    assert fraction_budgets(1000, 0.3) == [300, 300, 300, 100]
    assert fraction_budgets(7, 0.5) == [4, 3]
    assert fraction_budgets(100, 0.25) == [25, 25, 25, 25]
    assert fraction_budgets(1000, 1.0) == [1000]
    assert fraction_budgets(1, 0.1) == [1]  # never a zero budget
    for budget in range(1, 120):
        for fraction in (0.01, 0.1, 0.25, 0.3, 1 / 3, 0.5, 0.7, 0.99, 1.0):
            budgets = fraction_budgets(budget, fraction)
            assert sum(budgets) == budget and min(budgets) >= 1, (budget, fraction, budgets)
            assert all(b == budgets[0] for b in budgets[:-1]) and budgets[-1] <= budgets[0]


# Seed 3, random sampler, 16 trials, fit_fraction 0.25 (steps 1..3 reported): which trials the pruner
# stops is a deterministic function of the trials' scores, recorded here from a run.
PRUNED = {
    "none": [],
    "halving": [2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15],
    "median": [6, 7, 9, 10, 11, 12, 13, 14, 15],  # MedianPruner waits for 5 finished trials
}


@pytest.mark.parametrize("pruner", ["none", "halving", "median"])
def test_pruners_with_fit_fraction(tmp_path, pruner) -> None:
    task = peak_task(pruner_method=pruner, fit_fraction=0.25, n_trials=16)
    result, study = run(task, tmp_path / "optimize")
    trials = study.get_trials()
    pruned = [t.number for t in trials if t.state is TrialState.PRUNED]
    assert pruned == PRUNED[pruner]
    assert all(t.state is TrialState.COMPLETE for t in trials if t.number not in pruned)
    assert result["trials"] == {t.number: t.state.name for t in trials}
    for trial in trials:
        steps = sorted(trial.intermediate_values)
        if trial.state is TrialState.COMPLETE:
            assert steps == [1, 2, 3]  # reported after every step but the last
            # step s reports the score after s * 25 of the 100 budget: s/4 * (1 - (x-0.3)^2) + bonus, noise sd ~0.005
            values = [trial.intermediate_values[s] for s in steps] + [trial.value]
            np.testing.assert_allclose(values, [expected_score(trial.params, 25 * s) for s in (1, 2, 3, 4)], atol=0.04)
        else:
            assert steps == [1]  # both pruners decide at the first rung here
            assert trial.value == trial.intermediate_values[1]  # a pruned trial keeps its last reported score
    record = summarize_study(task, OptimizePaths(tmp_path / "optimize"))
    expected = {"complete": 16 - len(PRUNED[pruner])} | ({"pruned": len(PRUNED[pruner])} if PRUNED[pruner] else {})
    assert record["trials"] == expected


# ---------------------------------------------------------------------------------------------- optimum
def test_tpe_finds_the_known_optimum(tmp_path) -> None:
    task = peak_task(sampler_method="optuna_default", n_trials=30)
    _, study = run(task, tmp_path / "optimize")
    best = study.best_trial
    assert best.params["level"] == "high"
    # The score's noise (sd 0.01 per episode, averaged over 2 instances x 2 episodes: sd ~0.005) hides
    # |x - 0.3| below ~0.07 (penalty (x-0.3)^2 < 0.005); with seed 3 TPE lands within 0.003 of 0.3, so
    # 0.05 leaves a wide margin while still ruling out a search that did not converge (random search
    # with the same 30 trials gets 0.055).
    assert abs(best.params["x"] - OPTIMUM) < 0.05
    assert best.value == max(t.value for t in study.get_trials())


# ---------------------------------------------------------------------------------------------- reproducibility
def test_same_seed_same_trials_other_seed_other_trials(tmp_path) -> None:
    # 12 TPE trials: 10 random start-up trials, then 2 from the model (which depends on earlier trials)
    first = snapshot(run(peak_task(sampler_method="optuna_default", n_trials=12), tmp_path / "a")[1])
    second = snapshot(run(peak_task(sampler_method="optuna_default", n_trials=12), tmp_path / "b")[1])
    assert first == second and len(first) == 12
    other = snapshot(run(peak_task(seed=4, sampler_method="optuna_default", n_trials=12), tmp_path / "c")[1])
    assert all(a[2]["x"] != b[2]["x"] for a, b in zip(first, other))
    assert all(a[3] != b[3] for a, b in zip(first, other))


def _worker_process(task: OptimizeTask, folder: Path, worker: int) -> None:
    """A worker in its own (spawned) process; what it ran goes to its worker record."""
    paths = OptimizePaths(folder)
    result = run_worker(task, paths, worker)
    paths.worker_record(worker).parent.mkdir(parents=True, exist_ok=True)
    paths.worker_record(worker).write_text(json.dumps(result))


def test_random_search_gives_the_same_trials_with_one_or_three_worker_processes(tmp_path) -> None:
    # fit_seconds makes the workers' trials overlap in time
    task = peak_task(n_trials=9, n_fit=1, init_kwargs={"fit_seconds": 0.02})
    _, alone = run(task, tmp_path / "one")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker_process, args=(task, tmp_path / "three", w)) for w in range(3)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
    assert [p.exitcode for p in processes] == [0, 0, 0]
    paths = OptimizePaths(tmp_path / "three")
    shared = open_study(task, paths)
    assert snapshot(shared) == snapshot(alone) and len(shared.get_trials()) == 9
    ran = [json.loads(paths.worker_record(w).read_text())["trials"] for w in range(3)]
    numbers = [int(n) for trials in ran for n in trials]
    assert sorted(numbers) == list(range(9))  # each trial run by exactly one worker


def test_trial_score_replays_a_stored_trial_exactly(tmp_path) -> None:
    task = peak_task(n_trials=4)
    _, study = run(task, tmp_path / "optimize")
    for trial in study.get_trials():
        replayed = trial_score(FixedTrial(trial.params, number=trial.number), task, tmp_path / "replay")
        assert replayed == trial.value
    # the instances' seeds come from the trial number: the same parameters under another number score differently
    trial = study.get_trials()[0]
    assert trial_score(FixedTrial(trial.params, number=99), task, tmp_path / "replay") != trial.value


# ---------------------------------------------------------------------------------------------- resume
def test_resume_adds_trials_to_the_same_study(tmp_path) -> None:
    paths = OptimizePaths(tmp_path / "optimize")
    small, large = peak_task(sampler_method="optuna_default", n_trials=4), peak_task(sampler_method="optuna_default", n_trials=7)
    assert small.study_name == large.study_name  # n_trials is not part of the identity
    run_worker(small, paths)
    first = snapshot(open_study(small, paths))
    assert stored_trial_count(large, paths) == 4
    result = run_worker(large, paths)
    assert sorted(result["trials"]) == [4, 5, 6]
    resumed = snapshot(open_study(large, paths))
    assert len(resumed) == 7 and resumed[:4] == first
    assert resumed == snapshot(run(large, tmp_path / "fresh")[1])  # as if run in one go
    assert delete_study(large, paths) and stored_trial_count(large, paths) == 0
    assert not delete_study(large, OptimizePaths(tmp_path / "nothing"))


def test_study_name_changes_with_what_a_trial_computes_only() -> None:
    base = peak_task()
    same = [peak_task(n_trials=50), peak_task(timeout=10.0), peak_task(n_optuna_workers=4),
            peak_task(storage="sqlite:///elsewhere.db")]
    assert {task.study_name for task in same} == {base.study_name}
    different = [peak_task(seed=4), peak_task(sampler_method="optuna_default"), peak_task(n_fit=3),
                 peak_task(fit_fraction=0.5), peak_task(pruner_method="median"),
                 peak_task(experiment={"fit_budget": 200}), peak_task(init_kwargs={"fit_seconds": 0.001}),
                 peak_task(experiment={"eval_kwargs": {"eval_horizon": 6, "n_simulations": 2}}),
                 peak_task(search_space={"x": {"type": "float", "low": -1.0, "high": 1.0}})]
    names = [task.study_name for task in different]
    assert base.study_name not in names and len(set(names)) == len(names)
    assert base.study_name == "peak-afef0263c192"  # the key of studies already stored: it must not change


# ---------------------------------------------------------------------------------------------- failures
def test_failed_trials_are_recorded_and_the_best_completed_trial_wins(tmp_path) -> None:
    # seed 3: trial 0 samples x = 0.678, the only one above 0.6
    task = peak_task(init_kwargs={"fail_above": 0.6})
    _, study = run(task, tmp_path / "optimize")
    trials = study.get_trials()
    failed = [t for t in trials if t.state is TrialState.FAIL]
    assert [t.number for t in failed] == [0] and len(trials) == 8
    assert failed[0].user_attrs["error"] == f"ValueError: x={failed[0].params['x']:.3f} is above fail_above=0.6"
    assert failed[0].user_attrs["init_kwargs"] == failed[0].params  # what the failed trial tried is kept
    assert all(t.params["x"] <= 0.6 for t in trials if t.state is TrialState.COMPLETE)
    assert study.best_trial.state is TrialState.COMPLETE
    record = summarize_study(task, OptimizePaths(tmp_path / "optimize"))
    assert record["trials"] == {"complete": 7, "fail": 1}
    assert record["first_error"] == f"First error (trial 0): {failed[0].user_attrs['error']}"
    assert record["best_trial"] == study.best_trial.number


def test_every_trial_failing_stops_the_worker_with_the_first_error(tmp_path) -> None:
    task = peak_task(init_kwargs={"fail_above": -2.0}, n_trials=10)
    paths = OptimizePaths(tmp_path / "optimize")
    with pytest.raises(OptimizationError) as raised:
        run_worker(task, paths)
    message = str(raised.value)
    assert f"the first {FAILURES_BEFORE_GIVING_UP} trials failed" in message
    assert "First error (trial 0): ValueError: x=" in message and "is above fail_above=-2.0" in message
    study = open_study(task, paths)
    assert states(study) == ["FAIL"] * FAILURES_BEFORE_GIVING_UP  # no trial beyond the limit
    with pytest.raises(OptimizationError, match=r"no trial of 'peak' completed \(trials: 3 fail\)\. "
                                                r"First error \(trial 0\): ValueError: x="):
        summarize_study(task, paths)
    assert not paths.best_init_kwargs.exists()


def test_summarize_without_any_trial_is_an_error(tmp_path) -> None:
    with pytest.raises(OptimizationError, match=r"\(trials: none\)\. No trial recorded an error"):
        summarize_study(peak_task(), OptimizePaths(tmp_path / "optimize"))


# ---------------------------------------------------------------------------------------------- interrupted trials
def test_a_trial_whose_worker_died_is_failed_and_not_counted(tmp_path) -> None:
    task = peak_task(n_trials=4)
    paths = OptimizePaths(tmp_path / "optimize")
    paths.folder.mkdir(parents=True)
    dead = open_study(task, paths).ask()  # asked, never finished, running lock free: a killed worker
    assert dead.number == 0 and stored_trial_count(task, paths) == 0  # counting fails it first
    result = run_worker(task, paths)
    study = open_study(task, paths)
    trials = study.get_trials()
    assert trials[0].state is TrialState.FAIL and trials[0].user_attrs["interrupted"] is True
    assert trials[0].user_attrs["error"].startswith("interrupted")
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE] * 4
    assert result["trials"] == {1: "COMPLETE", 2: "COMPLETE", 3: "COMPLETE", 4: "COMPLETE"}
    assert len(counted_trials(study)) == 4 == stored_trial_count(task, paths)
    assert not paths.running_lock(study.study_name, 0).exists()
    record = summarize_study(task, paths)
    assert record["trials"] == {"complete": 4} and record["first_error"] is None  # the interruption is not a failure


def test_a_running_trial_whose_lock_is_held_is_left_alone(tmp_path) -> None:
    task = peak_task(n_trials=3)
    paths = OptimizePaths(tmp_path / "optimize")
    paths.folder.mkdir(parents=True)
    alive = open_study(task, paths).ask()
    paths.running_lock(task.study_name, alive.number).parent.mkdir(parents=True)
    lock = FileLock(paths.running_lock(task.study_name, alive.number))
    lock.acquire(timeout=0)
    try:
        result = run_worker(task, paths)
        study = open_study(task, paths)
        assert states(study) == ["RUNNING", "COMPLETE", "COMPLETE"]  # the running trial counts towards 3
        assert "interrupted" not in study.get_trials()[0].user_attrs
        assert sorted(result["trials"]) == [1, 2]
    finally:
        lock.release()
    result = run_worker(task, paths)  # its worker is gone now: failed, and replaced
    study = open_study(task, paths)
    assert states(study) == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert study.get_trials()[0].user_attrs["interrupted"] is True
    assert sorted(result["trials"]) == [3] and len(counted_trials(study)) == 3


def test_timeout_stops_starting_trials(tmp_path) -> None:
    # each trial sleeps 0.1 s in its single fit, so 1 s holds at most ~11 trials, far from 50
    task = peak_task(n_trials=50, n_fit=1, timeout=1.0, init_kwargs={"fit_seconds": 0.1})
    result, study = run(task, tmp_path / "optimize")
    assert 1 <= len(study.get_trials()) < 50
    assert set(states(study)) == {"COMPLETE"} and len(result["trials"]) == len(study.get_trials())


# ---------------------------------------------------------------------------------------------- outputs
def test_summarize_study_writes_its_outputs(tmp_path) -> None:
    task = peak_task(init_kwargs={"fail_above": 0.6})
    paths = OptimizePaths(tmp_path / "optimize")
    _, study = run(task, paths.folder)
    record = summarize_study(task, paths)
    written = yaml.safe_load(paths.best_init_kwargs.read_text())
    complete = [t for t in study.get_trials() if t.state is TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value)
    assert written["init_kwargs"] == best.params == best.user_attrs["init_kwargs"]
    assert written["best_value"] == max(t.value for t in complete) == record["best_value"]
    assert written["best_trial"] == best.number
    assert written["trials"] == {"complete": 7, "fail": 1}
    assert written["root_seed"] == task.root_seed == {"entropy": 3, "spawn_key": []}
    assert written["study"] == task.study_name and written["storage"] == str(paths.journal)
    assert written["versions"] == library_versions() and "optuna" in written["versions"]
    assert set(written["importances"]) == {"x", "level"}
    table = pd.read_parquet(paths.trials)
    assert list(table["number"]) == list(range(8))
    assert list(table["state"]) == ["FAIL"] + ["COMPLETE"] * 7
    assert [json.loads(text) for text in table["user_attrs_init_kwargs"]] == [t.params for t in study.get_trials()]
    assert table["user_attrs_error"].iloc[0].startswith("ValueError: x=")
    assert table["value"].iloc[1:].tolist() == [t.value for t in complete]
    for plot in (paths.history_plot, paths.importance_plot):
        assert plot.read_bytes()[:8] == PNG


def test_plots_say_no_data_on_empty_input(tmp_path) -> None:
    empty = pd.DataFrame({"number": pd.Series([], dtype=int), "value": pd.Series([], dtype=float),
                          "state": pd.Series([], dtype=str)})
    assert "no data" in figure_texts(optimization_history_figure(empty, "empty"))
    failed_only = pd.DataFrame({"number": [0, 1], "value": [np.nan, np.nan], "state": ["FAIL", "FAIL"]})
    assert "no data" in figure_texts(optimization_history_figure(failed_only, "failed"))
    assert "no data" in figure_texts(importance_figure({}, "empty"))
    _, study = run(peak_task(n_trials=4), tmp_path / "optimize")
    figure = optimization_history_figure(trials_table(study), "four")
    assert "no data" not in figure_texts(figure) and figure.axes[0].get_title() == "four"
    figure = importance_figure({"x": 0.75, "level": 0.25}, "importance")
    assert [bar.get_width() for bar in figure.axes[0].patches] == [0.25, 0.75]  # most important at the top


# ---------------------------------------------------------------------------------------------- config
def test_minimal_optimize_section_gets_its_defaults() -> None:
    spec = {**peak_experiment(), "optimize": {}}
    study = validate_study({"seed": 3, "experiments": {"peak": spec}})
    assert study.experiments["peak"].optimize == {
        "n_trials": 32, "timeout": None, "n_fit": 2, "n_optuna_workers": 2, "sampler_method": "optuna_default",
        "sampler_kwargs": {}, "pruner_method": "halving", "fit_fraction": 1.0, "storage": None,
        "confirm": {"enabled": True, "top_k": 3, "n_fit": 8, "alpha": 0.05}}
    task = optimize_task(study, "peak")  # the confirmation is not part of the study
    assert task.settings == {"n_fit": 2, "sampler_method": "optuna_default", "sampler_kwargs": {},
                             "pruner_method": "halving", "fit_fraction": 1.0, "search_space": None}
    assert (task.n_trials, task.timeout, task.n_optuna_workers, task.storage) == (32, None, 2, None)
    without = validate_study({"seed": 3, "experiments": {"peak": {k: v for k, v in spec.items() if k != "optimize"}}})
    with pytest.raises(ConfigError, match="experiment 'peak' has no 'optimize' section"):
        optimize_task(without, "peak")


def test_optimize_problems_of_the_python_api() -> None:
    def problems(section: dict[str, Any], per_instance: list[dict[str, Any]] | None = None) -> list[str]:
        return optimize_problems(section, PeakAgent, per_instance, check_sampler_kwargs=True)

    section: dict[str, Any] = {}
    assert problems(section) == []
    assert section["sampler_method"] == "optuna_default" and section["n_trials"] == 32  # defaults filled in
    assert problems({"n_trials": 0}) == ["n_trials: 0 is less than the minimum of 1"]
    assert problems({"sampler_method": "grid"}) == [
        "search_space: the grid sampler needs a search_space (its grid is built from it)"]
    assert problems({"search_space": {"x": FLOAT}}, [{"x": 0.5}]) == [
        "search_space.x: is set per instance in init_kwargs_per_instance, so it cannot be tuned"]
    assert problems({"search_space": {"level": {"type": "categorical", "choices": ["1e-3"]}}}) == [  # as a config's
        "search_space.level.choices[0]: '1e-3' was read as a string (YAML 1.1 floats need a dot and a signed exponent: "
        "write 1.0e-3)"]
    assert sampler_problems("grid", {"search_space": {"x": [0.1, 0.2]}}, None) == []  # rlberry's explicit grid


# ---------------------------------------------------------------------------------------------- tuned keys
def test_optimize_task_leaves_tuned_keys_out_of_its_identity() -> None:
    before = peak_task(init_kwargs={"x": -0.9, "level": "low", "fit_seconds": 0.0}, sampler_method="optuna_default")
    assert before.init_kwargs == {"fit_seconds": 0.0}
    written_back = peak_task(init_kwargs={"x": 0.31, "level": "high", "fit_seconds": 0.0}, sampler_method="optuna_default")
    assert written_back.identity() == before.identity()
    assert peak_task(init_kwargs={"fit_seconds": 0.0}, sampler_method="optuna_default").identity() == before.identity()
    assert peak_task(init_kwargs={"x": -0.9, "fit_seconds": 0.5}, sampler_method="optuna_default").identity() != before.identity()
    # a declarative search space tunes only its keys: the others stay in the task and reach the agents
    only_x = {"x": {"type": "float", "low": -1.0, "high": 1.0}}
    task = peak_task(init_kwargs={"x": 0.9, "level": "high"}, search_space=only_x)
    assert task.init_kwargs == {"level": "high"}
    assert peak_task(init_kwargs={"x": -0.2, "level": "high"}, search_space=only_x).identity() == task.identity()
    assert peak_task(init_kwargs={"x": 0.9, "level": "low"}, search_space=only_x).identity() != task.identity()


def test_untuned_init_kwargs_reach_the_trials(tmp_path) -> None:
    only_x = {"x": {"type": "float", "low": 0.3, "high": 0.3}}  # a single value: the score is known
    high = trial_score(FixedTrial({"x": 0.3}, number=0), peak_task(init_kwargs={"level": "high"}, search_space=only_x), tmp_path)
    low = trial_score(FixedTrial({"x": 0.3}, number=0), peak_task(init_kwargs={"level": "low"}, search_space=only_x), tmp_path)
    assert high == pytest.approx(1.5, abs=0.05) and low == pytest.approx(1.0, abs=0.05)


# ---------------------------------------------------------------------------------------------- review fixes
def test_counting_stored_trials_fails_those_of_dead_workers_first(tmp_path) -> None:
    task = peak_task(n_trials=3)
    paths = OptimizePaths(tmp_path / "optimize")
    run_worker(task, paths)
    with FileLock(paths.study_lock):
        open_study(task, paths).ask()  # a worker killed during its trial
    assert stored_trial_count(task, paths) == 3
    assert states(open_study(task, paths)) == ["COMPLETE"] * 3 + ["FAIL"]


def test_two_lambdas_as_custom_eval_function_are_two_studies() -> None:
    task = peak_task()
    first = dataclasses.replace(task, custom_eval_function=lambda agents: 1.0)
    second = dataclasses.replace(task, custom_eval_function=lambda agents: 2.0)
    assert len({task.study_name, first.study_name, second.study_name}) == 3


def test_how_trials_log_is_not_part_of_the_study() -> None:
    task = peak_task()
    assert dataclasses.replace(task, writer_kwargs={"print_log": True}).study_name == task.study_name


def test_validating_a_config_never_imports_optuna() -> None:
    """Every job of a cluster run validates the config: that must not load Optuna (only tuning_problems does)."""
    code = ("import sys; from rlpipe.spec.experiment import validate_study; import json; "
            f"validate_study(json.loads({json.dumps(json.dumps({'experiments': {'peak': {**peak_experiment(), 'optimize': {'sampler_kwargs': {'n_startup_trials': 3}}}}}))})); "
            "assert 'optuna' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
