"""Agents written rlberry's way through the Snakemake pipeline: reproducible whatever the scheduling, scored by
their own eval, aggregated whatever tags they log, refused before any job when their checkpoints need pickle."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from rlpipe import ExperimentManager, read_writer_data

from snakemake_runner import ok, run_snakemake

pytestmark = pytest.mark.e2e

STUDY = {
    "seed": 42,
    "report": {"bootstrap_samples": 200},
    "experiments": {
        "taxi_q": {  # steps self.env itself, no get_state: pickled checkpoints, fitted in one call
            "agent": "rlberry_style_agents:SelfSteppingQAgent",
            "train_env": "Taxi-v4",
            "fit_budget": 3000,
            "n_fit": 3,
            "allow_pickle": True,
            "eval_kwargs": {"eval_horizon": 60, "n_simulations": 4},
            "writer": {"print_log": False},
        },
        "own_tags": {  # never logs episode_rewards, the default learning-curve tag
            "agent": "rlberry_style_agents:OwnTagsAgent",
            "train_env": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}},
            "fit_budget": 40,
            "n_fit": 2,
            "allow_pickle": True,
            "eval_kwargs": {"eval_horizon": 10, "n_simulations": 2},
            "writer": {"print_log": False},
        },
        "strict_eval": {  # its own eval, without **kwargs
            "agent": "rlberry_style_agents:StrictEvalAgent",
            "train_env": "FrozenLake-v1",
            "init_kwargs": {"x": 2.0},
            "fit_budget": 10,
            "n_fit": 2,
            "allow_pickle": True,
            "eval_kwargs": {"eval_horizon": 4, "n_simulations": 3},
            "writer": {"print_log": False},
        },
        "envless": {  # no environment, no budget
            "agent": "rlberry_style_agents:EnvlessAgent",
            "fit_budget": -1,
            "n_fit": 2,
            "allow_pickle": True,
            "writer": {"print_log": False},
        },
    },
}


def tables(workdir: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet table of the run, without the wall-clock column."""
    found = {}
    for path in sorted((workdir / "results").rglob("*.parquet")):
        frame = pq.read_table(path).to_pandas()
        found[str(path.relative_to(workdir))] = frame.drop(columns=["dw_time_elapsed"], errors="ignore")
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    folders = {}
    for cores in (1, 2):
        folders[cores] = tmp_path_factory.mktemp(f"cores{cores}")
        ok(run_snakemake(folders[cores], STUDY, cores=cores))
    return folders


def test_same_seed_same_numbers_with_1_or_2_cores(runs) -> None:
    one, two = tables(runs[1]), tables(runs[2])
    assert one.keys() == two.keys() and len(one) == 2 * 4 + 9 * 2  # per-instance and per-experiment tables
    for name in one:
        pd.testing.assert_frame_equal(one[name], two[name], obj=name)
    agents = [ExperimentManager.load(runs[c] / "results/taxi_q", allow_pickle=True).get_agent_instances() for c in (1, 2)]
    for a, b in zip(*agents, strict=True):
        assert (a.Q == b.Q).all() and a.Q.any()  # the learned Q tables are bit-identical
    writer = one["results/taxi_q/writer_data.parquet"]
    assert set(writer.instance) == {0, 1, 2}
    per_instance = [writer[writer.instance == i].value.to_numpy() for i in range(3)]
    assert not (per_instance[0][:500] == per_instance[1][:500]).all()  # instances are seeded apart


def test_a_self_stepping_agent_is_fitted_in_one_call(runs) -> None:
    record = json.loads((runs[1] / "results/taxi_q/instances/0/fit.json").read_text())
    assert record["chunks"] == [3000] and record["task"]["chunks"] == 1  # part of what its fit computes


def test_the_manager_reproduces_the_pipeline_for_a_self_stepping_agent(runs, tmp_path) -> None:
    manager = ExperimentManager.from_config(STUDY, "taxi_q", output_dir=tmp_path)
    manager.fit()
    ours = read_writer_data(manager)[["instance", "tag", "value", "global_step"]]
    theirs = pd.read_parquet(runs[2] / "results/taxi_q/writer_data.parquet")[["instance", "tag", "value", "global_step"]]
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True))
    episodes = manager.evaluate()
    pipeline = pd.read_parquet(runs[2] / "results/taxi_q/evaluation.parquet").drop(columns=["experiment"])
    pd.testing.assert_frame_equal(episodes.reset_index(drop=True)[pipeline.columns], pipeline)


def test_a_custom_eval_is_what_the_evaluate_stage_scores(runs) -> None:
    evaluation = pd.read_parquet(runs[1] / "results/strict_eval/evaluation.parquet")
    assert (evaluation.unit == "eval").all() and len(evaluation) == 2 * 3
    assert evaluation["return"].isna().all()
    assert evaluation.score.between(-1.05, -0.95).all()  # -(x - 3)^2 at x = 2, with its small noise
    summary = json.loads((runs[1] / "results/strict_eval/summary.json").read_text())
    assert summary["metric"] == "score" and -1.05 < summary["mean"] < -0.95


def test_an_agent_without_env_or_budget_runs(runs) -> None:
    evaluation = pd.read_parquet(runs[1] / "results/envless/evaluation.parquet")
    assert (evaluation.unit == "eval").all() and evaluation.score.between(0.5, 1.5).all()
    record = json.loads((runs[1] / "results/envless/instances/1/fit.json").read_text())
    assert record["fit_calls"] == [-1] and record["chunks"] == [-1]


def test_an_agent_logging_its_own_tags_is_aggregated_with_a_warning(runs) -> None:
    summary = json.loads((runs[1] / "results/own_tags/summary.json").read_text())
    assert summary["learning_curve_tags"] == ["reward", "q_norm"]  # what it logged, in logging order
    log = (runs[1] / "results/own_tags/aggregate.log").read_text()
    assert "no instance logged the learning-curve tag 'episode_rewards'" in log
    assert (runs[1] / "results/own_tags/learning_curve.png").read_bytes().startswith(b"\x89PNG")
    envless = json.loads((runs[1] / "results/envless/summary.json").read_text())
    assert envless["learning_curve_tags"] == []  # logged nothing: a figure that says so, not a failure


def test_pickled_checkpoints_are_refused_before_any_job(tmp_path) -> None:
    config = json.loads(json.dumps(STUDY))
    del config["experiments"]["taxi_q"]["allow_pickle"]
    result = run_snakemake(tmp_path, config)
    assert result.returncode != 0
    assert "experiments.taxi_q.allow_pickle: SelfSteppingQAgent has no get_state/set_state" in result.stderr
    assert "No job was run" in result.stderr and not (tmp_path / "results").exists()
