"""rlpipe.pipeline.workflow, in process: the Snakefile's helpers, and every message a bad config gets.

Each bad config is checked three ways: the Snakefile's validation (``load_study_or_exit``, which prints and
exits before any job), ``rlpipe validate``, and, for the problems of one experiment, ``ExperimentManager``
built from the same entry; all give the same lines. tests/pipeline/test_workflow_e2e.py proves the path
once through Snakemake.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from rlpipe.errors import ConfigError
from rlpipe.manager import ExperimentManager
from rlpipe.pipeline import workflow
from rlpipe.pipeline.cli import main
from rlpipe.spec.experiment import validate_study

from snakemake_runner import TINY

DELETE = object()  # as a value in BAD_CONFIGS: remove the key


def _broken(path: tuple[str, ...], value: object) -> dict:
    config = copy.deepcopy(TINY)
    target = config
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return config



QL = ("experiments", "ql")
BAD_CONFIGS = [  # (where, value, what the message must say)
    (("sed",), 1, "(top level): unknown key 'sed' (did you mean 'seed'?)"),
    (("seed",), -1, "seed: -1 is less than the minimum of 0"),
    (("report", "confidence"), 1.5, "report.confidence: 1.5 is greater than or equal to the maximum of 1"),
    (("experiments", "q l"), TINY["experiments"]["ql"], "experiments: 'q l' is not a valid name"),
    ((*QL, "n_fit"), 0, "experiments.ql.n_fit: 0 is less than the minimum of 1"),
    ((*QL, "n_fit"), 2.0, "experiments.ql.n_fit: 2.0 is not of type 'integer'"),
    ((*QL, "n_fits"), 3, "experiments.ql: unknown key 'n_fits' (did you mean 'n_fit'?)"),
    ((*QL, "agent"), DELETE, "experiments.ql: missing required key 'agent'"),
    ((*QL, "agent"), "rlpipe.agents.QLearnAgent", "experiments.ql.agent: cannot import 'rlpipe.agents.QLearnAgent'"),
    ((*QL, "agent"), "no_such_package.Agent", "experiments.ql.agent: cannot import 'no_such_package.Agent': no module named"),
    ((*QL, "agent"), "collections.OrderedDict", "experiments.ql.agent: 'collections.OrderedDict' is not a subclass of"),
    (("experiments", "rand", "train_env"), "FrozenLake-v9", "experiments.rand.train_env: gymnasium does not know the env id 'FrozenLake-v9'; did you mean 'FrozenLake-v1'"),
    ((*QL, "train_env"), {"id": "FrozenLake-v1", "constructor": "x:y"}, "experiments.ql.train_env: an env spec needs exactly one of 'id'"),
    ((*QL, "train_env"), {"constructor": "no_such_package.envs:make"}, "experiments.ql.train_env: cannot import 'no_such_package.envs:make'"),
    ((*QL, "train_env"), {"id": "FrozenLake-v1", "kwargs": {"is_slipery": False}},
     "experiments.ql.train_env: FrozenLake-v1 does not accept 'is_slipery' (did you mean 'is_slippery'?)"),
    ((*QL, "train_env"), {"id": "FrozenLake-v1", "wrappers": [{"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"steps": 5}}]},
     "experiments.ql.train_env: wrapper TimeLimit does not accept 'steps'"),
    ((*QL, "fit_budget"), "1000", "experiments.ql.fit_budget: '1000' is not of type 'integer'"),
    ((*QL, "fit_budget"), -5, "experiments.ql.fit_budget: -5 is less than the minimum of -1"),
    ((*QL, "init_kwargs"), {"learning_rte": 0.1}, "experiments.ql.init_kwargs: QLearningAgent does not accept 'learning_rte' (did you mean 'learning_rate'?)"),
    ((*QL, "init_kwargs"), {"seeder": 3}, "experiments.ql.init_kwargs.seeder: is set by rlpipe for each instance"),
    ((*QL, "init_kwargs"), {"learning_rate": "1e-3"}, "experiments.ql.init_kwargs.learning_rate: '1e-3' was read as a string"),
    ((*QL, "init_kwargs_per_instance"), [{}], "experiments.ql.init_kwargs_per_instance: has 1 entries but n_fit is 2"),
    ((*QL, "eval_kwargs"), {"n_simulation": 3}, "experiments.ql.eval_kwargs: the policy rollout of QLearningAgent does not accept 'n_simulation' (did you mean 'n_simulations'?)"),
    ((*QL, "agent"), "helpers_agents:PickledCounterAgent", "experiments.ql.allow_pickle: PickledCounterAgent has no get_state/set_state"),
    ((*QL, "eval_kwargs"), {"gamma": 1.5}, "experiments.ql.eval_kwargs.gamma: 1.5 is greater than the maximum of 1"),
    ((*QL, "writer"), {"style_log": "fancy"}, "experiments.ql.writer.style_log: 'fancy' is not one of"),
    ((*QL, "learning_curve"), {"xtag": "time"}, "experiments.ql.learning_curve.xtag: 'time' is not one of"),
    # YAML 1.1 reads 1e-3 as a string: wherever it is, one line with the spelling to use
    ((*QL, "fit_budget"), "1e4", "experiments.ql.fit_budget: '1e4' was read as a string (write 10000 for an integer;"),
    ((*QL, "train_env"), {"id": "FrozenLake-v1", "kwargs": {"max_episode_steps": "1e3"}},
     "experiments.ql.train_env.kwargs.max_episode_steps: '1e3' was read as a string"),
    ((*QL, "eval_kwargs"), {"gamma": "1e-3"}, "experiments.ql.eval_kwargs.gamma: '1e-3' was read as a string"),
    ((*QL, "fit_kwargs"), {"budget_scale": "5e-1"}, "experiments.ql.fit_kwargs.budget_scale: '5e-1' was read as a string"),
    # a suggestion names a key the experiment may set, never one rlpipe sets itself
    ((*QL, "init_kwargs"), {"seed": 3}, "experiments.ql.init_kwargs: QLearningAgent does not accept 'seed' (allowed: "),
]




def snakefile_message(config: dict) -> str:
    """What the Snakefile prints when it refuses ``config`` (it exits before building any job)."""
    with pytest.raises(SystemExit) as exited:
        workflow.load_study_or_exit(config, ["config.yaml"])
    return str(exited.value.code)


NOT_MANAGER_ARGUMENTS = ("allow_pickle", "learning_curve")  # a manager trusts its own pickles; aggregate() takes the other


def manager_arguments(entry: dict) -> dict:
    """ExperimentManager's arguments for a config entry (the config's names where the manager has others)."""
    renamed = {"agent": "agent_class", "writer": "default_writer_kwargs"}
    return {renamed.get(key, key): value for key, value in entry.items() if key not in NOT_MANAGER_ARGUMENTS}


@pytest.mark.parametrize(("path", "value", "message"), BAD_CONFIGS, ids=[m[:60] for *_, m in BAD_CONFIGS])
def test_bad_config_gets_the_same_message_from_every_driver(tmp_path: Path, capsys, path, value, message) -> None:
    config = _broken(path, value)
    printed = snakefile_message(config)
    header, *lines, footer = printed.splitlines()
    assert header == "rlpipe: invalid config (config.yaml):" and footer == "No job was run; nothing under results/ was changed."
    assert all(line.startswith("  - ") for line in lines) and message in printed
    problems = [line.removeprefix("  - ") for line in lines]
    assert not any(name in printed for name in ("'seeder'", " seeder,", "_execution_metadata"))  # never suggested
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(config, sort_keys=False))
    assert main(["validate", str(file)]) == 1
    validated = capsys.readouterr().err.splitlines()
    assert validated[0] == f"rlpipe validate: invalid config ({file}):"
    assert [line.removeprefix("  - ") for line in validated[1:]] == problems
    experiment = path[1] if len(path) > 2 and path[0] == "experiments" else None
    prefix = f"experiments.{experiment}."
    expected = [line.removeprefix(prefix) for line in problems if line.startswith(prefix)
                and not line.removeprefix(prefix).startswith(NOT_MANAGER_ARGUMENTS)]
    if expected:  # the manager names the keys as the config does, without the experiment's prefix
        with pytest.raises(ConfigError) as raised:
            ExperimentManager(**manager_arguments(config["experiments"][experiment]), agent_name=experiment,
                              output_dir=tmp_path)
        header, *lines = str(raised.value).splitlines()
        assert header == f"invalid ExperimentManager arguments (experiment '{experiment}'):"
        assert [line.removeprefix("  - ") for line in lines] == expected


def test_every_problem_is_reported_at_once() -> None:
    config = _broken((*QL, "n_fits"), 3)
    config["experiments"]["ql"]["init_kwargs"] = {"learning_rte": 0.1}
    config["experiments"]["rand"]["eval_kwargs"] = {"horizon": 3}
    printed = snakefile_message(config)
    assert "experiments.ql: unknown key 'n_fits'" in printed and "experiments.rand.eval_kwargs:" in printed
    with pytest.raises(ConfigError) as raised:
        ExperimentManager("rlpipe.agents.QLearningAgent", "FrozenLake-v9", fit_budget=10, init_kwargs={"learning_rte": 0.1},
                          eval_kwargs={"gama": 1.0})
    assert [line.split(":")[0] for line in str(raised.value).splitlines()[1:]] == [
        "  - init_kwargs", "  - eval_kwargs", "  - train_env"]
    with pytest.raises(ConfigError) as raised:  # what the schema refuses is reported first, all of it
        ExperimentManager("rlpipe.agents.QLearningAgent", "FrozenLake-v1", fit_budget=1.5, n_fit=0)
    assert [line.split(":")[0] for line in str(raised.value).splitlines()[1:]] == ["  - fit_budget", "  - n_fit"]


def test_targets_and_inputs_of_a_study() -> None:
    study = validate_study(TINY)
    assert workflow.batch_records(study, "ql", "fit") == ["results/ql/batches/fit-0.json", "results/ql/batches/fit-1.json"]
    assert workflow.batch_records(study, "ql", "evaluate") == [
        "results/ql/batches/evaluate-0.json", "results/ql/batches/evaluate-1.json"]
    assert workflow.summary_files(study) == ["results/ql/summary.json", "results/rand/summary.json"]
    assert {"results/summary.csv", "results/summary.md", "results/comparison.png",
            "results/provenance.html"} <= set(workflow.all_outputs(study))
    assert workflow.optimize_outputs(study) == []


def test_each_job_asks_for_its_experiments_resources() -> None:
    from types import SimpleNamespace

    config = copy.deepcopy(TINY)
    config["experiments"]["ql"]["resources"] = {"runtime": 5, "cpus_per_task": 2, "slurm_partition": "short"}
    study = validate_study(config)
    resources = workflow.job_resources(study)
    assert list(resources) == ["runtime", "mem_mb", "cpus_per_task", "gpu", "slurm_partition"]
    of = lambda name: {key: value(SimpleNamespace(experiment=name)) for key, value in resources.items()}  # noqa: E731
    assert of("ql") == {"runtime": 5, "mem_mb": 2000, "cpus_per_task": 2, "gpu": 0, "slurm_partition": "short"}
    assert of("rand") == {"runtime": 120, "mem_mb": 2000, "cpus_per_task": 1, "gpu": 0, "slurm_partition": None}
    assert list(workflow.job_resources(study, without=("runtime",))) == ["mem_mb", "cpus_per_task", "gpu",
                                                                          "slurm_partition"]
    assert (workflow.threads(study, "ql"), workflow.threads(study, "rand")) == (2, 1)


def test_experiments_listed_first_have_the_highest_job_priority() -> None:
    study = validate_study(TINY)
    assert [workflow.job_priority(study, name) for name in ("ql", "rand")] == [2, 1]


def test_a_jobs_task_is_its_batch_of_instances() -> None:
    config = copy.deepcopy(TINY)
    config["experiments"]["ql"].update(n_fit=5, instances_per_job=2)
    study = validate_study(config)
    assert workflow.batch_records(study, "ql", "fit") == [f"results/ql/batches/fit-{b}.json" for b in range(3)]
    batch = json.loads(workflow.batch_task_json(study, "ql", "evaluate", "2"))
    assert (batch["stage"], batch["instances"], batch["first"]["instance"]) == ("evaluate", [4], 4)


def test_a_study_of_many_jobs_is_warned_about(capsys) -> None:
    config = copy.deepcopy(TINY)
    config["experiments"]["ql"].update(n_fit=4998, instances_per_job=1)
    assert workflow.many_jobs_warning(validate_study(config)) is None  # 2 × (4998 + 2) jobs: 10,000
    config["experiments"]["ql"]["n_fit"] = 4999
    study = workflow.load_study_or_exit(config, ["big.yaml"])
    assert capsys.readouterr().err == (
        "rlpipe: the study has 10,002 fit and evaluate jobs, which Snakemake takes about a millisecond each to plan; "
        "for cheap instances, raise instances_per_job (in a sweep's shared keys, say) for fewer, larger jobs\n")
    config["experiments"]["ql"]["instances_per_job"] = "auto"
    assert workflow.many_jobs_warning(validate_study(config)) is None and study.experiment("ql").n_fit == 4999


def test_the_shell_prefix_runs_the_installed_command() -> None:
    class Settings:
        deployment_method: tuple = ()

    class Workflow:
        deployment_settings = Settings()
        basedir = "/the workflow"

    prefix = workflow.shell_prefix(Workflow())
    assert prefix.startswith("set -euo pipefail; export PYTHONPATH='/the workflow'")
    assert "export PATH=" in prefix and 'rlpipe() {{ python -m rlpipe "$@"; }}' in prefix


def tuned_tiny(**optimize: object) -> dict:
    config = copy.deepcopy(TINY)
    config["experiments"]["ql"]["optimize"] = {"search_space": {"learning_rate": {"type": "float", "low": 0.1, "high": 0.5}},
                                               **optimize}
    return config


def test_optimize_jobs_are_planned_only_after_the_checks_that_import_optuna() -> None:
    study = validate_study(tuned_tiny(sampler_kwargs={"n_startup_trial": 5}))  # a plain run leaves them alone
    with pytest.raises(SystemExit) as exited:
        workflow.optimize_outputs(study, ["config.yaml"])
    assert str(exited.value.code) == (
        "rlpipe: invalid config (config.yaml):\n"
        "  - experiments.ql.optimize.sampler_kwargs: TPESampler does not accept 'n_startup_trial' "
        "(did you mean 'n_startup_trials'?)\n"
        "No job was run; nothing under results/ was changed.")


def test_the_confirmation_jobs_of_a_study_and_their_tasks() -> None:
    study = validate_study(tuned_tiny(confirm={"top_k": 2, "n_fit": 6}))
    assert workflow.optimize_confirm_files(study, "ql") == [
        "results/ql/optimize/confirm/0.json", "results/ql/optimize/confirm/1.json", "results/ql/optimize/confirm/current.json"]
    assert json.loads(workflow.optimize_confirm_json(study, "ql", "1")) == {
        "candidate": "1", "n_fit": 6, "top_k": None, "init_kwargs": None}  # a rank does not depend on the config's values
    assert json.loads(workflow.optimize_confirm_json(study, "ql", "current")) == {
        "candidate": "current", "n_fit": 6, "top_k": 2, "init_kwargs": {"epsilon_decay_steps": 500}}
    with pytest.raises(ConfigError, match="confirms the candidates 0, 1, current, not '2'"):
        workflow.optimize_confirm_json(study, "ql", "2")
    assert json.loads(workflow.optimize_confirm_settings_json(study, "ql")) == {
        "enabled": True, "top_k": 2, "n_fit": 6, "alpha": 0.05}
    assert workflow.optimize_confirm_files(validate_study(tuned_tiny(confirm={"enabled": False})), "ql") == []


def test_the_write_back_of_layered_config_files_is_checked_when_optimize_jobs_are_planned(tmp_path: Path) -> None:
    base, over = tmp_path / "base.yaml", tmp_path / "over.yaml"
    base.write_text(yaml.safe_dump(tuned_tiny()))
    over.write_text("experiments:\n  ql:\n    fit_budget: 30\n")  # not a valid config alone: it has no agent
    files = [str(base), str(over)]
    study = validate_study(tuned_tiny())
    assert workflow.writeback_config_file(files, "ql") == str(over)  # the last file defining the experiment
    assert workflow.optimize_worker_files(study, "ql", files) == [
        "results/ql/optimize/workers/0.json", "results/ql/optimize/workers/1.json"]
    assert workflow.writeback_config_files([str(base), "my study.yaml"]) == f"{base} 'my study.yaml'"
    # files that are valid only with --config values on the command line: the write-back could not validate them
    base.write_text(yaml.safe_dump({**tuned_tiny(), "seed": -1}))
    with pytest.raises(SystemExit) as exited:
        workflow.optimize_worker_files(study, "ql", files)
    assert str(exited.value.code) == (
        f"rlpipe: the tuned init_kwargs of 'ql' would be written into {over}, but the config files without --config "
        f"values are invalid ({base}, {over}):\n  - seed: -1 is less than the minimum of 0\n"
        "No job was run; nothing under results/ was changed.")
    with pytest.raises(SystemExit, match="no config file in use .* defines experiment 'ql'"):
        workflow.optimize_worker_files(study, "ql", [])


def test_report_captions_state_each_experiments_seeds_and_interval() -> None:
    study = validate_study(TINY)
    assert workflow.caption_facts(study, "ql") == {
        "name": "ql", "agent": "QLearningAgent", "env": "FrozenLake-v1", "n_fit": 2, "fit_budget": 1500,
        "confidence": "95%", "n_resamples": 500}
    labels = workflow.experiment_labels(study, "evaluation")(SimpleNamespace(experiment="rand"))
    assert labels == {"experiment": "rand", "figure": "evaluation", "agent": "RandomAgent", "env": "FrozenLake-v1",
                      "seeds": "2"}
