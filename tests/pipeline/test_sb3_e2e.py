"""End-to-end with the Stable-Baselines3 agents: Snakemake runs a tiny study of two SB3 algorithms to the numbers the
ExperimentManager gives, and SB3 fit jobs SIGKILLed between checkpointed chunks resume to exactly the numbers of an
uninterrupted fit (the record says where each resumed, so a fresh fit cannot pass for a resumed one)."""
from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rlpipe.core.evaluation import evaluate_instance
from rlpipe.io.paths import ExperimentPaths, InstancePaths
from rlpipe.manager.experiment_manager import ExperimentManager
from rlpipe.spec.experiment import validate_study
from rlpipe.spec.search_space import tuned_keys

from snakemake_runner import RLPIPE, ok, run_snakemake
from study_tasks import eval_task, run_settings, task_batch
from test_resume_after_kill import outputs, wait_for_progress

pytest.importorskip("stable_baselines3", reason="the sb3 extra is not installed: pip install -e '.[sb3]'")

pytestmark = pytest.mark.e2e

from rlpipe.agents.sb3 import DQNAgent  # noqa: E402

NET = {"net_arch": [16]}
STUDY = {
    "seed": 5,
    "report": {"bootstrap_samples": 200},
    "experiments": {
        "ppo": {
            "agent": "rlpipe.agents.sb3:PPOAgent",
            "train_env": "CartPole-v1",
            "init_kwargs": {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "policy_kwargs": NET},
            "fit_budget": 512,
            "n_fit": 2,
            "instances_per_job": 2,  # one fit and one evaluate job: each pays torch's import once
            "n_checkpoints": 4,
            "eval_kwargs": {"eval_horizon": 100, "n_simulations": 3},
            "writer": {"print_log": False},
        },
        "sac": {
            "agent": "rlpipe.agents.sb3.SB3Agent",
            "train_env": "Pendulum-v1",
            "init_kwargs": {"algo": "SAC", "learning_starts": 50, "batch_size": 32, "buffer_size": 1000,
                            "policy_kwargs": NET},
            "fit_budget": 300,
            "n_fit": 2,
            "instances_per_job": 2,
            "eval_kwargs": {"eval_horizon": 50, "n_simulations": 2},
            "writer": {"print_log": False},
        },
        # the other three algorithms, one instance each
        "a2c": {"agent": "rlpipe.agents.sb3:A2CAgent", "train_env": "CartPole-v1", "fit_budget": 200, "n_fit": 1,
                "init_kwargs": {"n_steps": 8, "policy_kwargs": NET}, "eval_kwargs": {"eval_horizon": 50, "n_simulations": 2}},
        "dqn": {"agent": "rlpipe.agents.sb3:DQNAgent", "train_env": "CartPole-v1", "fit_budget": 300, "n_fit": 1,
                "init_kwargs": {"n_timesteps": 300, "learning_starts": 50, "buffer_size": 1000, "policy_kwargs": NET},
                "eval_kwargs": {"eval_horizon": 50, "n_simulations": 2}},
        "td3": {"agent": "rlpipe.agents.sb3:TD3Agent", "train_env": "Pendulum-v1", "fit_budget": 200, "n_fit": 1,
                "init_kwargs": {"learning_starts": 50, "batch_size": 32, "buffer_size": 1000, "policy_kwargs": NET,
                                "action_noise": {"type": "normal", "sigma": 0.2}},
                "eval_kwargs": {"eval_horizon": 50, "n_simulations": 2}},
    },
}
# Long enough (a few seconds) to be killed between chunks: on-policy PPO and off-policy DQN (with a replay buffer).
KILLED = {
    "ppo": {"agent": "rlpipe.agents.sb3:PPOAgent", "init_kwargs": {"n_steps": 128, "batch_size": 64, "n_epochs": 4,
                                                                   "policy_kwargs": {"net_arch": [32]}}},
    "dqn": {"agent": "rlpipe.agents.sb3:DQNAgent", "init_kwargs": {"n_timesteps": 8000, "learning_starts": 100,
                                                                   "buffer_size": 10000, "policy_kwargs": {"net_arch": [32]}}},
}
BUDGET, CHUNKS = 8000, 8


def writer_values(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)[["tag", "value", "global_step"]]


def test_snakemake_fits_evaluates_and_aggregates_sb3_agents_as_the_manager_does(tmp_path: Path) -> None:
    workdir = tmp_path / "study"
    ok(run_snakemake(workdir, STUDY))
    results = workdir / "results"
    summary = pd.read_csv(results / "summary.csv")
    assert list(summary["experiment"]) == ["ppo", "sac", "a2c", "dqn", "td3"]
    assert list(summary["n_fit"]) == [2, 2, 1, 1, 1] and summary["mean"].notna().all()
    for name, spec in STUDY["experiments"].items():
        for i in range(spec["n_fit"]):
            record = json.loads((results / name / "instances" / str(i) / "fit.json").read_text())
            assert sum(record["chunks"]) == spec["fit_budget"] and record["total_env_steps"] >= spec["fit_budget"]
            assert not record["unseeded_draws"]  # SB3 drew from the agent's own copy of the global generators
        tags = set(pd.read_parquet(results / name / "writer_data.parquet")["tag"])
        assert {"episode_rewards", "episode_length"} <= tags
    assert len(json.loads((results / "ppo" / "instances" / "0" / "fit.json").read_text())["chunks"]) == 4
    assert {"train/loss", "train/entropy_loss", "rollout/ep_rew_mean"} <= set(
        pd.read_parquet(results / "ppo" / "writer_data.parquet")["tag"])

    # The Python driver, on the same config, gives the same instances: same writer rows, same evaluation episodes.
    manager = ExperimentManager.from_config(workdir / "config.yaml", "ppo", output_dir=tmp_path / "manager")
    manager.fit()
    episodes = manager.evaluate()
    for i in range(2):
        folder = results / "ppo" / "instances" / str(i)
        pd.testing.assert_frame_equal(writer_values(folder / "writer.parquet"),
                                      writer_values(manager.paths.instance(i).writer))
    pipeline = pd.read_parquet(results / "ppo" / "evaluation.parquet").drop(columns="experiment")
    pd.testing.assert_frame_equal(pipeline.reset_index(drop=True), episodes[pipeline.columns].reset_index(drop=True))


def killed_config(name: str) -> dict:
    return {"seed": 11, "experiments": {"pg": {
        **KILLED[name], "train_env": "CartPole-v1", "fit_budget": BUDGET, "n_fit": 1, "n_checkpoints": CHUNKS,
        "eval_kwargs": {"eval_horizon": 100, "n_simulations": 3}, "writer": {"print_log": False}}}}


def fit_command(experiment: Path, config: dict) -> list[str]:
    study = validate_study(config)
    task, run = task_batch(study, "pg", "fit", 0).to_json(), str(run_settings(study, "pg"))
    return [RLPIPE, "fit", "--task", task, "--run", run, "--batch", "0", "--experiment-dir", str(experiment)]


def evaluation(folder: Path, config: dict) -> pd.DataFrame:
    """The instance's evaluation rows, made from its checkpoint as the evaluate stage makes them."""
    study, paths = validate_study(config), InstancePaths(folder)
    evaluate_instance(eval_task(study, "pg", 0), paths.checkpoint, paths.evaluation, run_settings(study, "pg"))
    return pd.read_parquet(paths.evaluation)


@pytest.mark.parametrize("name", list(KILLED))
def test_a_killed_sb3_fit_resumes_after_its_last_chunk_to_the_uninterrupted_numbers(tmp_path: Path, name: str) -> None:
    config = killed_config(name)
    reference = tmp_path / "reference" / "pg"
    subprocess.run(fit_command(reference, config), check=True, capture_output=True, timeout=300)

    experiment = tmp_path / "killed" / "pg"
    folder = ExperimentPaths(experiment).instance(0).folder
    job = subprocess.Popen(fit_command(experiment, config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_progress(InstancePaths(folder).progress / "progress.json", 2 * BUDGET // CHUNKS, job)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the fit finished before the kill: lengthen it"
    saved = json.loads((InstancePaths(folder).progress / "progress.json").read_text())["budget_done"]
    result = subprocess.run(fit_command(experiment, config), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(InstancePaths(folder).fit_record.read_text())
    assert record["resumed_at"] == saved > 0 and sum(record["chunks"]) == BUDGET - saved  # it resumed, it did not refit
    # the checkpoint (networks, optimizers, replay buffer, generators, episode in progress), the writer rows and the
    # evaluation are those of the uninterrupted fit
    expected = ExperimentPaths(reference).instance(0).folder
    (arrays, writer, meta), (ref_arrays, ref_writer, ref_meta) = outputs(folder), outputs(expected)
    assert arrays.keys() == ref_arrays.keys() and (name != "dqn" or "replay.observations" in arrays)
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], ref_arrays[key], err_msg=key)
    assert meta == ref_meta
    pd.testing.assert_frame_equal(writer, ref_writer)
    pd.testing.assert_frame_equal(evaluation(folder, config), evaluation(expected, config))


def test_snakemake_optimize_tunes_an_sb3_agent_with_its_search_space_and_writes_the_best_back(tmp_path: Path) -> None:
    budget = 300
    config = {"seed": 2, "experiments": {"dqn": {
        "agent": "rlpipe.agents.sb3:DQNAgent", "train_env": "CartPole-v1", "fit_budget": budget, "n_fit": 1,
        "init_kwargs": {"n_timesteps": budget}, "eval_kwargs": {"eval_horizon": 50, "n_simulations": 2},
        "writer": {"print_log": False},
        "optimize": {"n_trials": 3, "n_fit": 1, "n_optuna_workers": 1, "sampler_method": "random",
                     "confirm": {"enabled": False}}}}}
    ok(run_snakemake(tmp_path, config, "optimize"))
    folder = tmp_path / "results" / "dqn" / "optimize"
    trials = pd.read_parquet(folder / "trials.parquet")
    assert list(trials["state"]) == ["COMPLETE"] * 3 and trials["value"].notna().all()
    best = yaml.safe_load((folder / "best_init_kwargs.yaml").read_text())
    assert set(best["init_kwargs"]) == set(tuned_keys(DQNAgent, None))  # DQNAgent.sample_parameters' keys
    assert best["best_value"] == pytest.approx(trials["value"].max())
    written = yaml.safe_load((tmp_path / "config.yaml").read_text())["experiments"]["dqn"]["init_kwargs"]
    assert written == {"n_timesteps": budget, **best["init_kwargs"]}  # unconfirmed: the best trial is written back
