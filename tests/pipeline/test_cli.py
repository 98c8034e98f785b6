"""rlpipe.pipeline.cli: the stage entry points, in process through main([...]) and once as ``python -m rlpipe``."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from rlpipe.io.paths import ExperimentPaths
from rlpipe.pipeline.cli import main
from rlpipe.spec.experiment import validate_study

from study_tasks import eval_task, run_settings, task_batch

REPO = Path(__file__).resolve().parents[2]

GOOD = {
    "seed": 2,
    "experiments": {
        "ql": {
            "agent": "rlpipe.agents.QLearningAgent",
            "train_env": "FrozenLake-v1",
            "fit_budget": 300,
            "n_fit": 2,
            "n_checkpoints": 3,
            "eval_kwargs": {"n_simulations": 3, "eval_horizon": 50},
            "writer": {"print_log": False},
        },
        "rand": {"agent": "rlpipe.agents.RandomAgent", "train_env": "FrozenLake-v1", "fit_budget": 100},
    },
}


def write_config(tmp_path: Path, config: dict, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


QUIET = str(run_settings(validate_study(GOOD), "ql"))  # how GOOD's jobs run: writer.print_log false


# ---------------------------------------------------------------------------------------------- validate
def test_validate_good_file(tmp_path, capsys):
    path = write_config(tmp_path, GOOD)
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{path}: valid (2 experiments: ql, rand)"
    assert captured.err == ""


def test_validate_the_shipped_default_config(capsys):
    """config/config.yaml, as the README tells users to check it: `rlpipe validate config/config.yaml` exits 0."""
    path = REPO / "config" / "config.yaml"
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    names = list(yaml.safe_load(path.read_text())["experiments"])
    assert captured.out.strip() == f"{path}: valid ({len(names)} experiments: {', '.join(names)})" and captured.err == ""


def test_validate_bad_file(tmp_path, capsys):
    bad = json.loads(json.dumps(GOOD))
    bad["experiments"]["ql"]["n_fit"] = 0
    bad["experiments"]["rand"]["agent"] = "rlpipe.agents.Nope"
    path = write_config(tmp_path, bad)
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "experiments.ql.n_fit: 0 is less than the minimum of 1" in captured.err
    assert "experiments.rand.agent: cannot import 'rlpipe.agents.Nope'" in captured.err
    assert captured.err.startswith(f"rlpipe validate: invalid config ({path}):\n  - ")
    assert "Traceback" not in captured.err


def test_validate_reports_the_sampler_keywords_with_every_other_problem(tmp_path, capsys):
    bad = json.loads(json.dumps(GOOD))
    bad["experiments"]["ql"]["optimize"] = {"sampler_kwargs": {"n_startup_trial": 5},
                                            "search_space": {"gamma": {"type": "float", "low": 0.5, "high": 0.9}}}
    bad["experiments"]["rand"]["n_fit"] = 0
    path = write_config(tmp_path, bad)
    assert main(["validate", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"rlpipe validate: invalid config ({path}):",
        "  - experiments.rand.n_fit: 0 is less than the minimum of 1",
        "  - experiments.ql.optimize.sampler_kwargs: TPESampler does not accept 'n_startup_trial' "
        "(did you mean 'n_startup_trials'?)"]


def test_validate_malformed_yaml(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("experiments: {ql: [1, 2}\n")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml is not valid YAML" in err
    assert "Traceback" not in err


def test_validate_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml does not exist" in capsys.readouterr().err


def test_validate_as_a_subprocess(tmp_path):
    good = write_config(tmp_path, GOOD)
    result = subprocess.run([sys.executable, "-m", "rlpipe", "validate", str(good)], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "valid (2 experiments: ql, rand)" in result.stdout

    bad = json.loads(json.dumps(GOOD))
    bad["experiments"]["ql"]["eval_kwargs"]["gamma"] = 2
    result = subprocess.run([sys.executable, "-m", "rlpipe", "validate", str(write_config(tmp_path, bad, "bad.yaml"))],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 1
    assert "experiments.ql.eval_kwargs.gamma: 2 is greater than the maximum of 1" in result.stderr


def test_missing_stage_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- fit / evaluate
def batch_json(stage: str, batch: int = 1, **experiment_overrides) -> str:
    """A fit or evaluate job's task: GOOD's batch ``batch`` (instance ``batch``: auto batches of one)."""
    config = json.loads(json.dumps(GOOD))
    config["experiments"]["ql"].update(experiment_overrides)
    return task_batch(validate_study(config), "ql", stage, batch).to_json()


def run_stage(stage: str, task: str, folder: Path, run: str | None = QUIET, batch: int = 1) -> int:
    return main([stage, "--task", task, *(["--run", run] if run else []), "--batch", str(batch),
                 "--experiment-dir", str(folder)])


def test_fit_and_evaluate_succeed(tmp_path, capsys):
    folder = tmp_path / "ql"
    assert run_stage("fit", batch_json("fit"), folder) == 0
    paths = ExperimentPaths(folder)
    record = json.loads(paths.instance(1).fit_record.read_text())
    assert record["total_env_steps"] == 300 and record["chunks"] == [100, 100, 100]  # the run's n_checkpoints
    fitted = json.loads(paths.batch("fit", 1).record.read_text())
    assert fitted["instances"] == [1] and fitted["task_hashes"] == {"1": record["task_hash"]}
    assert run_stage("evaluate", batch_json("evaluate"), folder) == 0
    table = pq.read_table(paths.instance(1).evaluation)
    assert table.num_rows == 3
    assert table.column("seed").to_pylist() == eval_task(validate_study(GOOD), "ql", 1).episode_seeds.tolist()
    assert paths.batch("evaluate", 1).record.is_file()
    assert capsys.readouterr().err == ""


def test_fit_agent_raising_prints_traceback(tmp_path, capsys):
    task = batch_json("fit", agent="helpers_agents:FailingAgent")
    assert run_stage("fit", task, tmp_path / "ql", run=None) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ZeroDivisionError: agent bug inside fit" in err
    assert "helpers_agents.py" in err  # the traceback reaches the agent's code
    assert "rlpipe fit (experiment 'ql', instance 1) failed: see the traceback above" in err
    assert not (tmp_path / "ql" / "instances" / "1" / "fit.json").exists()
    assert "ZeroDivisionError: agent bug inside fit" in (tmp_path / "ql" / "instances" / "1" / "fit.log").read_text()


def test_fit_unknown_env_is_one_line(tmp_path, capsys):
    batch = json.loads(batch_json("fit"))
    batch["first"]["train_env"] = batch["first"]["eval_env"] = "CartPol-v1"  # as if the config had not been validated
    assert run_stage("fit", json.dumps(batch), tmp_path / "ql", run=None) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("rlpipe fit (experiment 'ql', instance 1): gymnasium does not know the env id 'CartPol-v1'")
    assert "did you mean 'CartPole-v1'" in lines[0]
    assert "Traceback" not in err


def test_evaluate_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert run_stage("evaluate", batch_json("evaluate", batch=0), tmp_path / "ql", run=None, batch=0) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("rlpipe evaluate (experiment 'ql', instance 0): checkpoint ")
    assert lines[0].endswith("agent.ckpt does not exist")


def test_evaluate_truncated_checkpoint_is_one_line(tmp_path, capsys):
    folder = tmp_path / "ql"
    assert run_stage("fit", batch_json("fit"), folder, run=None) == 0
    checkpoint = ExperimentPaths(folder).instance(1).checkpoint
    checkpoint.write_bytes(checkpoint.read_bytes()[:64])
    capsys.readouterr()
    assert run_stage("evaluate", batch_json("evaluate"), folder, run=None) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("rlpipe evaluate (experiment 'ql', instance 1): checkpoint ")
    assert "truncated" in lines[0]
    assert not ExperimentPaths(folder).instance(1).evaluation.exists()


def test_evaluate_untrusted_pickle_is_one_line(tmp_path, capsys):
    overrides = {"agent": "helpers_agents:PickledCounterAgent", "fit_budget": 20, "allow_pickle": True}
    folder = tmp_path / "ql"
    assert run_stage("fit", batch_json("fit", **overrides), folder, run=None) == 0
    config = json.loads(json.dumps(GOOD))
    config["experiments"]["ql"].update(overrides)
    study = validate_study(config)
    task = batch_json("evaluate", **overrides)
    untrusted = dataclasses.replace(run_settings(study, "ql"), allow_pickle=False)  # validation would refuse it
    capsys.readouterr()
    assert run_stage("evaluate", task, folder, run=str(untrusted)) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "allow_pickle" in lines[0]
    assert lines[0].startswith("rlpipe evaluate (experiment 'ql', instance 1): ")
    assert run_stage("evaluate", task, folder, run=str(run_settings(study, "ql"))) == 0


@pytest.mark.parametrize("stage", ["fit", "evaluate"])
def test_fit_and_evaluate_jobs_do_not_load_the_heavy_libraries(tmp_path, stage):
    """Every fit and evaluate job is a Python process of its own: pandas, Optuna and matplotlib stay out of it."""
    folder = tmp_path / "ql"
    assert run_stage("fit", batch_json("fit"), folder) == 0
    task = batch_json(stage)
    job = ("import atexit, sys\n"
           "atexit.register(lambda: print(sorted(m for m in ('pandas', 'optuna', 'matplotlib') if m in sys.modules)))\n"
           "from rlpipe.pipeline.cli import main\n"
           f"sys.exit(main([{stage!r}, '--task', {task!r}, '--run', {QUIET!r}, '--batch', '1', "
           f"'--experiment-dir', {str(folder)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", job], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---------------------------------------------------------------------------------------------- validate: sweeps
def test_validate_prints_what_the_sweeps_expand_into(tmp_path, capsys):
    """Each sweep with its numbers of experiments and instances, then one line per point: the first 20 and a count."""
    gammas = [0.5, 0.6, 0.7, 0.8, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.99]
    config = json.loads(json.dumps(GOOD))
    config["sweeps"] = {"lake": {"grid": {"train_env": ["FrozenLake-v1", "FrozenLake8x8-v1"], "init_kwargs.gamma": gammas},
                                 "agent": "rlpipe.agents.QLearningAgent", "fit_budget": 100, "n_fit": 2}}
    path = write_config(tmp_path, config)
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    points = [(env, gamma) for env in ("FrozenLake-v1", "FrozenLake8x8-v1") for gamma in gammas]
    assert captured.out.splitlines() == [
        f"{path}: valid (24 experiments, 50 instances)",  # ql 2 + rand 4 + 22 × 2
        "  experiments: ql, rand",
        "  sweep lake: 22 experiments (2 train_env × 11 init_kwargs.gamma), 44 instances",
        *(f"    lake-{env}-gamma{gamma}: train_env={env}, init_kwargs.gamma={gamma}" for env, gamma in points[:20]),
        "    ... and 2 more",
    ]
    assert captured.err == ""


def test_validate_the_shipped_sweep_config(capsys):
    """config/sweep.yaml: 3 agents × 4 envs × 2 budgets, 10 instances each."""
    path = REPO / "config" / "sweep.yaml"
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [f"{path}: valid (24 experiments, 240 instances)",
                         "  sweep tabular: 24 experiments (3 agent × 4 train_env × 2 fit_budget), 240 instances",
                         "    tabular-ql-FrozenLake-v1-short: agent=rlpipe.agents.QLearningAgent, "
                         'train_env={"id": "FrozenLake-v1", "kwargs": {"is_slippery": true}}, fit_budget=2000']
    assert lines[-1] == "    ... and 4 more" and len(lines) == 2 + 20 + 1
