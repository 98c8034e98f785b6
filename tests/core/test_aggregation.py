"""Aggregation of one experiment, in process: statistics over instances, and refusal to aggregate fewer."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from rlpipe.core import aggregation, tasks
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


def test_the_fit_budget_is_what_the_instances_were_fitted_for(fitted):
    """A second fit call adds to the budget (ExperimentManager: fit(); fit(300)), and the summary says so."""
    study, paths = fitted
    assert aggregate(study, paths)["fit_budget"] == 500
    more = [tasks.fit_task(study.experiment("lake"), study.root, i, fit_budget=300) for i in range(3)]
    fit_instance(more[0], paths.instance(0), continue_fit=True)
    summary = aggregate(study, paths)
    assert summary["fit_budget"] is None  # the instances differ: none is the experiment's
    assert summary["fit_budget_per_instance"] == {"0": 800, "1": 500, "2": 500}
    for task in more[1:]:
        fit_instance(task, paths.instance(task.instance), continue_fit=True)
    summary = aggregate(study, paths)
    assert summary["fit_budget"] == 800 and summary["fit_budget_per_instance"] == {"0": 800, "1": 800, "2": 800}
    assert json.loads(paths.summary.read_text())["fit_budget"] == 800


def test_the_learning_curve_is_plotted_against_the_global_step(fitted, monkeypatch):
    """Environment steps only for the built-in agents: another agent logs steps of its own."""
    study, paths = fitted
    xlabels = []
    draw = aggregation.plots.learning_curves_figure
    monkeypatch.setattr(aggregation.plots, "learning_curves_figure",
                        lambda panels, xlabel, *args, **kwargs: xlabels.append(xlabel) or draw(panels, xlabel, *args, **kwargs))
    aggregate(study, paths)
    assert xlabels == ["global step"]



def with_learning_curve_tag(tag: str):
    return validate_study({**CONFIG, "experiments": {"lake": {**CONFIG["experiments"]["lake"], "learning_curve": {"tag": tag}}}})


def test_the_learning_curve_shows_the_configured_tag_or_falls_back_to_the_logged_ones(fitted, caplog):
    """QLearningAgent logs episode_rewards and episode_length: the configured tag alone when it was logged, else the
    tags that were, with a warning naming the missing one (config/README.md, learning_curve.tag)."""
    _, paths = fitted

    def aggregated(tag: str) -> tuple[dict, list[str]]:
        caplog.clear()
        with caplog.at_level("WARNING", logger="rlpipe"):
            summary = aggregate(with_learning_curve_tag(tag), paths)
        assert json.loads(paths.summary.read_text())["learning_curve_tags"] == summary["learning_curve_tags"]
        return summary, [r.getMessage() for r in caplog.records if r.name.startswith("rlpipe")]

    summary, warnings = aggregated("episode_rewards")
    assert summary["learning_curve_tags"] == ["episode_rewards"]
    assert warnings == []

    summary, warnings = aggregated("episode_reward")  # a typo: the stage goes on with the tags that were logged
    assert summary["learning_curve_tags"] == ["episode_rewards", "episode_length"]
    assert len(warnings) == 1, warnings
    assert "no instance logged the learning-curve tag 'episode_reward';" in warnings[0]
    assert "('episode_rewards', 'episode_length')" in warnings[0]
