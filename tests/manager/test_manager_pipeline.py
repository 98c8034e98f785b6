"""One core, two drivers: the Snakemake pipeline and ExperimentManager read each other's results."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlpipe.agents import QLearningAgent
from rlpipe.manager.experiment_manager import ExperimentManager

from snakemake_runner import ok, run_snakemake

pytestmark = pytest.mark.e2e

CONFIG = {
    "seed": 11,
    "experiments": {
        "lake": {
            "agent": "rlpipe.agents.QLearningAgent",
            "train_env": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": True}},
            "init_kwargs": {"epsilon_decay_steps": 800},
            "fit_budget": 2000,
            "n_fit": 2,
            "n_checkpoints": 4,
            "eval_kwargs": {"eval_horizon": 60, "n_simulations": 6},
            "writer": {"print_log": False},
        }
    },
}


def assert_same_instances(ours: ExperimentManager, theirs: ExperimentManager) -> None:
    for a, b in zip(ours.get_agent_instances(), theirs.get_agent_instances(), strict=True):
        np.testing.assert_array_equal(a.q, b.q)
        assert a.total_env_steps == b.total_env_steps
    columns = ["tag", "value", "global_step"]
    ours_data, theirs_data = ours.get_writer_data(), theirs.get_writer_data()
    assert sorted(ours_data) == sorted(theirs_data)
    for instance, frame in ours_data.items():
        pd.testing.assert_frame_equal(frame[columns], theirs_data[instance][columns])


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("pipeline")
    ok(run_snakemake(workdir, CONFIG))
    return workdir / "results" / "lake"


def test_a_pipeline_experiment_loads_as_a_manager(pipeline_folder) -> None:
    manager = ExperimentManager.load(pipeline_folder)
    assert manager.agent_class is QLearningAgent
    assert manager.agent_name == "lake" and manager.n_fit == 2 and manager.fit_budget == 2000
    assert manager.eval_kwargs == {"eval_horizon": 60, "n_simulations": 6}
    assert manager.seeder.seed_seq.entropy == 11
    agents = manager.get_agent_instances()
    assert [a.total_env_steps for a in agents] == [2000, 2000]
    assert len(manager.eval_agents(5, verbose=False)) == 5
    data = manager.get_writer_data()
    assert sorted(data) == [0, 1]
    assert all(set(frame.tag) == {"episode_rewards", "episode_length"} for frame in data.values())


def test_a_manager_from_the_config_reproduces_the_pipeline(pipeline_folder, tmp_path) -> None:
    manager = ExperimentManager.from_config(CONFIG, "lake", output_dir=tmp_path)
    manager.fit()
    assert_same_instances(manager, ExperimentManager.load(pipeline_folder))


def test_the_config_of_a_manager_reproduces_it_in_the_pipeline(tmp_path) -> None:
    manager = ExperimentManager(QLearningAgent, ("FrozenLake-v1", {"is_slippery": True}), fit_budget=1500, n_fit=2,
                                seed=5, agent_name="mine", output_dir=tmp_path / "manager",
                                init_kwargs={"learning_rate": 0.3}, eval_kwargs={"eval_horizon": 40, "n_simulations": 3},
                                default_writer_kwargs={"print_log": False})
    manager.fit()
    ok(run_snakemake(tmp_path / "pipeline", manager.to_config()))
    assert_same_instances(manager, ExperimentManager.load(tmp_path / "pipeline" / "results" / "mine"))


def test_the_managers_evaluate_and_aggregate_match_the_pipelines(pipeline_folder, tmp_path) -> None:
    import json

    manager = ExperimentManager.from_config(CONFIG, "lake", output_dir=tmp_path)
    manager.fit()
    episodes = manager.evaluate()
    pipeline_episodes = pd.read_parquet(pipeline_folder / "evaluation.parquet").drop(columns="experiment")
    pd.testing.assert_frame_equal(episodes, pipeline_episodes)
    manager.aggregate()
    ours = json.loads((manager.output_dir / "summary.json").read_text())
    theirs = json.loads((pipeline_folder / "summary.json").read_text())
    assert ours.pop("fit_wall_time_s") != theirs.pop("fit_wall_time_s")  # the clock fields differ
    assert ours.pop("fit_cpu_time_s") != theirs.pop("fit_cpu_time_s")
    assert json.dumps(ours, sort_keys=True) == json.dumps(theirs, sort_keys=True)  # one experiment, one summary
    assert ours["agent"] == "rlpipe.agents.q_learning:QLearningAgent" and ours["task_hash"] == theirs["task_hash"]
    assert (manager.output_dir / "learning_curve.png").is_file()
