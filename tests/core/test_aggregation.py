"""Aggregation of one experiment, in process: statistics over instances, and refusal to aggregate fewer."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from rlpipe.core.aggregation import aggregate_experiment
from rlpipe.core.evaluation import evaluate_instance
from rlpipe.core.fitting import fit_instance
from rlpipe.errors import RlpipeError
from rlpipe.io.paths import StudyPaths
from rlpipe.spec.experiment import validate_study

from study_tasks import aggregate_task, eval_task, fit_task

CONFIG = {"seed": 5, "report": {"bootstrap_samples": 500}, "experiments": {"lake": {
    "agent": "rlpipe.agents.QLearningAgent", "train_env": "FrozenLake-v1", "fit_budget": 500, "n_fit": 3,
    "eval_kwargs": {"eval_horizon": 30, "n_simulations": 8}, "writer": {"print_log": False}}}}


@pytest.fixture
def fitted(tmp_path):
    """A study folder whose three instances are fitted and evaluated."""
    study = validate_study(CONFIG)
    paths = StudyPaths(tmp_path).experiment("lake")
    for i in range(3):
        fit_instance(fit_task(study, "lake", i), paths.instance(i))
        evaluate_instance(eval_task(study, "lake", i), paths.instance(i).checkpoint, paths.instance(i).evaluation)
    return study, paths


def aggregate(study, paths):
    task = aggregate_task(study, "lake")
    return aggregate_experiment(task, [paths.instance(i) for i in task.instances], paths)


def test_statistics_are_over_instance_means(fitted):
    study, paths = fitted
    summary = aggregate(study, paths)
    episodes = pd.read_parquet(paths.evaluation)
    means = episodes.groupby("instance").discounted_return.mean()
    assert summary["n"] == summary["n_fit"] == 3
    assert summary["mean"] == pytest.approx(means.mean()) and summary["median"] == pytest.approx(means.median())
    assert summary["per_instance"] == {str(i): pytest.approx(v) for i, v in means.items()}
    assert json.loads(paths.summary.read_text())["mean"] == summary["mean"]
    assert len(pd.read_parquet(paths.writer_data).instance.unique()) == 3


def test_a_missing_instance_is_reported_not_averaged_away(fitted):
    study, paths = fitted
    paths.instance(1).evaluation.unlink()
    with pytest.raises(RlpipeError, match=r"1 of 3 instances of 'lake' have no fit or evaluation \(instances 1\)"):
        aggregate(study, paths)
    assert not paths.summary.exists()


def test_a_truncated_table_is_named(fitted):
    study, paths = fitted
    table = paths.instance(2).writer
    table.write_bytes(table.read_bytes()[:40])
    with pytest.raises(RlpipeError, match=rf"{table} cannot be read .*delete it and rerun"):
        aggregate(study, paths)
    assert not paths.summary.exists()
