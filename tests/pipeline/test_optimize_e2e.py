"""End-to-end: `snakemake optimize` tunes init_kwargs with Optuna, confirms the best trials on fresh seeds, and writes
the confirmed winner back into the config file only if it beats the config's own init_kwargs.

The configs are hand-written YAML with comments (the write-back must keep them), so most runs use the
file as it is (``run_snakemake(workdir, None, ...)``). Q-learning on the deterministic lake reaches the same policy
whatever the tuned values (its trials differ by luck only), so its confirmation refuses them; PeakAgent's x = -0.9,
level "low" is genuinely worse than what a study finds, so its confirmation writes; NoiseAgent is pure noise.
"""
from __future__ import annotations

import copy
import difflib
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
import yaml

from snakemake_runner import PNG_MAGIC, SNAKEFILE, env_with_tests_on_pythonpath, job_counts, ok, run_snakemake, snapshot

pytestmark = pytest.mark.e2e


# Two experiments, only `ql` tuned. The comments, the untuned `gamma` and the `rand` entry must survive the write-back.
CONFIG = """\
# Tiny study for the optimize end-to-end tests.
# Only `ql` has an optimize section.
seed: 11                                  # root seed of the study
report: {bootstrap_samples: 200}

experiments:
  # Q-learning on the deterministic lake
  ql:
    agent: rlpipe.agents.QLearningAgent
    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: false}}
    init_kwargs: {learning_rate: 0.1, epsilon_decay_steps: 500, gamma: 0.9}   # tuned below
    fit_budget: 1500
    n_fit: 2
    eval_kwargs: {eval_horizon: 50, n_simulations: 5, gamma: 0.9}
    writer: {print_log: false}
    optimize:
      n_trials: 6                         # total, across workers and runs
      n_optuna_workers: 2
      search_space:
        learning_rate: {type: float, low: 0.05, high: 0.9}
        epsilon_decay_steps: {type: int, low: 100, high: 1500}

  # a baseline that the optimisation leaves alone
  rand:
    agent: rlpipe.agents.RandomAgent
    train_env: FrozenLake-v1
    init_kwargs: {}
    fit_budget: 200
    n_fit: 1
    eval_kwargs: {eval_horizon: 50, n_simulations: 4}
"""
TUNED = {"learning_rate", "epsilon_decay_steps"}
N_TRIALS = 6

# PeakAgent (tests/helpers_agents.py): a cheap toy agent whose fit can be made to raise.
PEAK_CONFIG = """\
seed: 3
experiments:
  {name}:
    agent: helpers_agents:PeakAgent
    train_env: FrozenLake-v1
    init_kwargs: {{x: 0.0, level: low{extra}}}   # tuned
    fit_budget: 100
    n_fit: 1
    eval_kwargs: {{eval_horizon: 10, n_simulations: 2}}
    optimize:
      n_trials: {n_trials}
      n_optuna_workers: {workers}
      n_fit: 1
      sampler_method: random
      confirm: {{top_k: 1, n_fit: 5}}      # the best trial and the current init_kwargs, on 5 fresh seeds{search_space}
"""
PEAK_SEARCH_SPACE = """
      search_space:
        x: {type: float, low: -1.0, high: 1.0}
        level: {type: categorical, choices: [low, high]}"""


def peak_experiment(name: str, n_trials: int = 4, workers: int = 1, extra: str = "", search_space: bool = True) -> str:
    """One PeakAgent experiment with an optimize section, as the text of a config file (seed line included).

    Without ``search_space`` the study asks PeakAgent.sample_parameters (the same x and level).
    """
    return PEAK_CONFIG.format(name=name, n_trials=n_trials, workers=workers, extra=extra,
                              search_space=PEAK_SEARCH_SPACE if search_space else "")


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def comments(text: str) -> list[str]:
    """Every comment of a YAML text (whole-line and trailing), in order, without the space before it."""
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    """(old line, new line) pairs of a same-length edit."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    return [(a, b) for a, b in zip(old_lines, new_lines) if a != b]


def backups(folder: Path, stem: str = "config") -> list[Path]:
    return sorted(folder.glob(f"{stem}.*.bak.yaml"))


def optimize_dir(workdir: Path, experiment: str) -> Path:
    return workdir / "results" / experiment / "optimize"



def set_n_trials(path: Path, old: int, new: int) -> None:
    text = path.read_text()
    assert text.count(f"n_trials: {old} ") == 1
    path.write_text(text.replace(f"n_trials: {old} ", f"n_trials: {new} "))


def confirmation_table(workdir: Path, experiment: str) -> pd.DataFrame:
    return pd.read_csv(optimize_dir(workdir, experiment) / "confirmation.csv", dtype={"candidate": str})


def selected(workdir: Path, experiment: str) -> dict:
    """The selection of the experiment's last optimize run (selection.json)."""
    return json.loads((optimize_dir(workdir, experiment) / "selection.json").read_text())


# ---------------------------------------------------------------------------------------------- one optimize run
@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    workdir = tmp_path_factory.mktemp("optimize")
    (workdir / "config.yaml").write_text(CONFIG)
    result = ok(run_snakemake(workdir, None, "optimize"))
    trials = pd.read_parquet(optimize_dir(workdir, "ql") / "trials.parquet")
    return SimpleNamespace(workdir=workdir, result=result, trials=trials,
                           best=yaml.safe_load((optimize_dir(workdir, "ql") / "best_init_kwargs.yaml").read_text()))


# PeakAgent, commented, starting far from its optimum: the confirmation shows a trial better, and writes it.
PEAK_COMMENTED = """\
# PeakAgent study whose confirmed winner is written back.
seed: 3                                   # root seed
experiments:
  # known optimum x = 0.3, level high
  peak:
    agent: helpers_agents:PeakAgent
    train_env: FrozenLake-v1
    init_kwargs: {x: -0.9, level: low, fit_seconds: 0.0}   # x and level are tuned
    fit_budget: 100
    n_fit: 1
    eval_kwargs: {eval_horizon: 10, n_simulations: 2}
    optimize:
      n_trials: 6                         # total
      n_optuna_workers: 2
      n_fit: 1
      sampler_method: random
      confirm: {top_k: 2, n_fit: 6}       # 2**-6 <= 0.05 / 2
"""


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    workdir = tmp_path_factory.mktemp("written")
    (workdir / "config.yaml").write_text(PEAK_COMMENTED)
    result = ok(run_snakemake(workdir, None, "optimize"))
    return SimpleNamespace(workdir=workdir, result=result, selection=selected(workdir, "peak"),
                           best=yaml.safe_load((optimize_dir(workdir, "peak") / "best_init_kwargs.yaml").read_text()))


def test_workers_share_one_study_with_exactly_n_trials(tuned: SimpleNamespace) -> None:
    records = [json.loads((optimize_dir(tuned.workdir, "ql") / "workers" / f"{k}.json").read_text()) for k in (0, 1)]
    assert [r["worker"] for r in records] == [0, 1]
    assert all(r["target"] == N_TRIALS and r["study"] == tuned.best["study"] for r in records)
    ran = [set(map(int, r["trials"])) for r in records]
    assert ran[0].isdisjoint(ran[1]) and ran[0] | ran[1] == set(range(N_TRIALS))  # no trial run twice, none missing
    assert len(tuned.trials) == N_TRIALS
    assert list(tuned.trials.number) == list(range(N_TRIALS))
    assert set(tuned.trials.state) == {"COMPLETE"}
    assert tuned.trials.value.notna().all()
    assert tuned.best["trials"] == {"complete": N_TRIALS} and tuned.best["first_error"] is None


def test_best_init_kwargs_are_the_best_trial(tuned: SimpleNamespace) -> None:
    best_row = tuned.trials.loc[tuned.trials.value.idxmax()]  # first of equal scores, as the study picks
    assert tuned.best["experiment"] == "ql"
    assert tuned.best["best_trial"] == best_row.number
    assert tuned.best["best_value"] == pytest.approx(best_row.value)
    assert tuned.best["init_kwargs"] == {"learning_rate": best_row.params_learning_rate,
                                         "epsilon_decay_steps": int(best_row.params_epsilon_decay_steps)}
    assert json.loads(best_row.user_attrs_init_kwargs) == tuned.best["init_kwargs"]
    assert 0.05 <= tuned.best["init_kwargs"]["learning_rate"] <= 0.9
    assert 100 <= tuned.best["init_kwargs"]["epsilon_decay_steps"] <= 1500
    folder = optimize_dir(tuned.workdir, "ql")
    for name in ("history.png", "importance.png"):
        assert (folder / name).read_bytes().startswith(PNG_MAGIC)
    assert (folder / "journal.log").is_file()
    assert not (tuned.workdir / "results" / "rand").exists()  # not tuned, and the plain pipeline was not run
    assert not (folder / "trials").exists() and not list(folder.rglob("*.tmp"))


def test_a_trial_no_better_than_the_config_is_refused_and_the_config_stays_byte_identical(tuned: SimpleNamespace) -> None:
    """The best trial's search score is the maximum of 6 noisy scores; refitted on 8 fresh seeds shared with the
    config's own init_kwargs, no candidate scores better: nothing is written, and every record says why."""
    folder = optimize_dir(tuned.workdir, "ql")
    assert (tuned.workdir / "config.yaml").read_bytes() == CONFIG.encode()
    assert backups(tuned.workdir) == []
    selection = selected(tuned.workdir, "ql")
    assert set(tuned.best["init_kwargs"]) == TUNED  # the best trial, by search score
    assert selection["decision"] == "refused" and selection["written"] is False
    assert selection["chosen"] == {"candidate": "current", "trial": None,
                                   "init_kwargs": {"learning_rate": 0.1, "epsilon_decay_steps": 500}}
    table = confirmation_table(tuned.workdir, "ql")
    assert list(table.candidate) == ["0", "1", "2", "current"]
    assert table.written.tolist() == [False] * 4 and table.chosen.tolist() == [False, False, False, True]
    assert table.tested.sum() == 1 and table.loc[table.tested, "p_adjusted"].item() > 0.05
    assert table.search_score.head(3).tolist() == sorted(tuned.trials.value, reverse=True)[:3]
    assert table.trial.head(3).notna().all() and table.confirmed_score.notna().all()
    assert all(len(json.loads(scores)) == 8 for scores in table.instance_scores)
    # said in the select job's output and log, and in best_init_kwargs.yaml
    line = f"rlpipe: 'ql': refused: {selection['reason']}"
    assert line in output(tuned.result) and line in (folder / "select.log").read_text()
    assert f"rlpipe: nothing written into {tuned.workdir / 'config.yaml'}: 'ql' keeps its init_kwargs" in output(tuned.result)
    assert tuned.best["selection"]["decision"] == "refused" and tuned.best["selection"]["written"] is False
    assert "# Selection on fresh seeds: refused." in (folder / "best_init_kwargs.yaml").read_text()
    # one job per candidate, after the workers
    assert job_counts(output(tuned.result)) == {"optimize_worker": 2, "optimize_confirm": 4, "optimize_select": 1,
                                                "optimize": 1}
    assert not (folder / "confirm" / "work").exists()


def test_a_confirmed_better_setting_is_written_into_the_config_and_nothing_else(written: SimpleNamespace) -> None:
    new_text = (written.workdir / "config.yaml").read_text()
    selection = written.selection
    assert selection["decision"] == "written" and selection["written"] is True
    chosen = selection["chosen"]["init_kwargs"]
    assert set(chosen) == {"x", "level"} and chosen["level"] == "high"
    assert written.best["selection"]["init_kwargs"] == chosen and written.best["selection"]["written"] is True
    table = confirmation_table(written.workdir, "peak")
    assert table.written.tolist() == [row["candidate"] == selection["chosen"]["candidate"] for _, row in table.iterrows()]
    assert table.loc[table.written, "p_adjusted"].item() == 2 / 64  # all 6 paired differences positive, 2 candidates

    expected = yaml.safe_load(PEAK_COMMENTED)
    expected["experiments"]["peak"]["init_kwargs"].update(chosen)
    assert yaml.safe_load(new_text) == expected  # the untuned fit_seconds and the optimize section as they were
    assert comments(new_text) == comments(PEAK_COMMENTED)
    [(old_line, new_line)] = changed_lines(PEAK_COMMENTED, new_text)  # one line changed: peak's init_kwargs
    assert old_line.startswith("    init_kwargs: {x: -0.9, level: low, fit_seconds: 0.0}")
    assert new_line.startswith("    init_kwargs: {x: ") and new_line.endswith("# x and level are tuned")

    [backup] = backups(written.workdir)
    assert re.fullmatch(r"config\.\d{8}-\d{6}\.bak\.yaml", backup.name)
    assert backup.read_bytes() == PEAK_COMMENTED.encode()

    diff = "".join(difflib.unified_diff(PEAK_COMMENTED.splitlines(keepends=True), new_text.splitlines(keepends=True),
                                        fromfile="a/config.yaml", tofile="b/config.yaml"))
    assert f"-{old_line}\n+{new_line}\n" in diff
    assert diff in output(written.result)
    assert f"into {written.workdir / 'config.yaml'} (backup: {backup})" in output(written.result)
    assert diff in (optimize_dir(written.workdir, "peak") / "select.log").read_text()


def test_after_a_write_back_only_the_current_candidate_is_confirmed_again_and_nothing_more_is_written(
        written: SimpleNamespace) -> None:
    """The written values are now the config's own: their confirmation job reruns (its task holds them) and finds
    them equal to the chosen trial's, so it fits nothing; the selection keeps them. A third run has nothing to do."""
    config_before = (written.workdir / "config.yaml").read_bytes()
    ranks = snapshot(optimize_dir(written.workdir, "peak") / "confirm")
    result = ok(run_snakemake(written.workdir, None, "optimize"))
    assert job_counts(output(result)) == {"optimize_confirm": 1, "optimize_select": 1, "optimize": 1}
    assert "wildcards: experiment=peak, candidate=current" in output(result)
    current = json.loads((optimize_dir(written.workdir, "peak") / "confirm" / "current.json").read_text())
    assert current["same_as"] == written.selection["chosen"]["candidate"] and current["scores"] is None
    assert snapshot(optimize_dir(written.workdir, "peak") / "confirm")["0.json"] == ranks["0.json"]
    assert selected(written.workdir, "peak")["decision"] == "kept"
    assert (written.workdir / "config.yaml").read_bytes() == config_before
    assert len(backups(written.workdir)) == 1
    assert "Nothing to be done" in output(ok(run_snakemake(written.workdir, None, "optimize")))


def test_pure_noise_is_never_written_back(tmp_path: Path) -> None:
    """NoiseAgent scores noise whatever its setting: its best trial is the luckiest of 8, and the config stays as it
    was, byte for byte, with the reason in the selection."""
    text = peak_experiment("noise", n_trials=8).replace("helpers_agents:PeakAgent", "helpers_agents:NoiseAgent")
    text = text.replace("confirm: {top_k: 1, n_fit: 5}", "confirm: {top_k: 3, n_fit: 6}")
    (tmp_path / "config.yaml").write_text(text)
    result = ok(run_snakemake(tmp_path, None, "optimize"))
    assert (tmp_path / "config.yaml").read_bytes() == text.encode() and backups(tmp_path) == []
    selection = selected(tmp_path, "noise")
    assert selection["decision"] == "refused" and not selection["written"]
    assert selection["chosen"]["candidate"] == "current"
    assert "so nothing was written" in selection["reason"] and selection["reason"] in output(result)
    table = confirmation_table(tmp_path, "noise")
    assert table.search_score.max() > table.loc[table.tested, "confirmed_score"].item()  # the winner's curse
    assert not table.written.any()


def test_second_optimize_run_does_nothing(tuned: SimpleNamespace) -> None:
    before = snapshot(tuned.workdir / "results")
    config_before = (tuned.workdir / "config.yaml").read_bytes()
    result = ok(run_snakemake(tuned.workdir, None, "optimize"))
    assert "Nothing to be done" in output(result)
    assert snapshot(tuned.workdir / "results") == before
    assert (tuned.workdir / "config.yaml").read_bytes() == config_before == CONFIG.encode()
    assert backups(tuned.workdir) == []


# ---------------------------------------------------------------------------------------------- with the plain pipeline
def test_write_back_refits_only_the_tuned_experiment_and_more_trials_extend_the_study(tmp_path: Path) -> None:
    """plain run -> optimize -> only ql refits -> optimize is up to date -> raising n_trials adds trials to the study.
    With `confirm: {enabled: false}`, the best trial is written back unconfirmed (the behaviour before confirmation)."""
    config_path = tmp_path / "config.yaml"
    config_path.write_text(CONFIG.replace("      n_optuna_workers: 2\n", "      n_optuna_workers: 2\n      confirm: {enabled: false}\n"))
    ok(run_snakemake(tmp_path, None))
    rand_before = snapshot(tmp_path / "results" / "rand")
    ql_checkpoints = {i: tmp_path / "results" / "ql" / "instances" / str(i) / "agent.ckpt" for i in (0, 1)}
    fitted = {i: path.stat().st_mtime_ns for i, path in ql_checkpoints.items()}

    ok(run_snakemake(tmp_path, None, "optimize"))
    best = yaml.safe_load((optimize_dir(tmp_path, "ql") / "best_init_kwargs.yaml").read_text())["init_kwargs"]
    assert yaml.safe_load(config_path.read_text())["experiments"]["ql"]["init_kwargs"] == {**best, "gamma": 0.9}
    assert selected(tmp_path, "ql")["decision"] == "unconfirmed" and not (optimize_dir(tmp_path, "ql") / "confirm").exists()
    assert snapshot(tmp_path / "results" / "rand") == rand_before
    assert not (tmp_path / "results" / "rand" / "optimize").exists()

    # the changed init_kwargs rerun ql's fits and what follows from them, nothing of rand
    dry = ok(run_snakemake(tmp_path, None, "-n"))
    assert job_counts(output(dry)) == {"fit": 2, "evaluate": 2, "aggregate": 1, "compare": 1, "all": 1,
                                       "provenance": 1, "tuning_page": 1}  # the config and the study's results changed
    assert set(re.findall(r"wildcards: experiment=(\w+)", output(dry))) == {"ql"}
    assert "Params have changed since last execution" in output(dry)

    ok(run_snakemake(tmp_path, None))
    assert snapshot(tmp_path / "results" / "rand") == rand_before
    assert all(path.stat().st_mtime_ns > fitted[i] for i, path in ql_checkpoints.items())
    for i in (0, 1):
        record = json.loads((tmp_path / "results" / "ql" / "instances" / str(i) / "fit.json").read_text())
        assert record["task"]["init_kwargs"] == {**best, "gamma": 0.9}

    # the plain run left the study alone: optimize is still up to date
    trials_before = pd.read_parquet(optimize_dir(tmp_path, "ql") / "trials.parquet")
    assert "Nothing to be done" in output(ok(run_snakemake(tmp_path, None, "optimize")))

    # more trials: the workers rerun and add trials to the stored study until it holds the new total
    set_n_trials(config_path, N_TRIALS, 9)
    result = ok(run_snakemake(tmp_path, None, "optimize"))
    assert job_counts(output(result)) == {"optimize_worker": 2, "optimize_select": 1, "optimize": 1}
    trials = pd.read_parquet(optimize_dir(tmp_path, "ql") / "trials.parquet")
    assert list(trials.number) == list(range(9)) and set(trials.state) == {"COMPLETE"}
    kept = ["number", "value", "params_learning_rate", "params_epsilon_decay_steps", "user_attrs_init_kwargs"]
    pd.testing.assert_frame_equal(trials[kept].head(N_TRIALS), trials_before[kept])
    records = [json.loads((optimize_dir(tmp_path, "ql") / "workers" / f"{k}.json").read_text()) for k in (0, 1)]
    assert all(r["target"] == 9 for r in records)
    assert sorted(int(n) for r in records for n in r["trials"]) == [6, 7, 8]  # only the new trials ran
    best = yaml.safe_load((optimize_dir(tmp_path, "ql") / "best_init_kwargs.yaml").read_text())
    assert best["trials"] == {"complete": 9}
    assert best["best_value"] == pytest.approx(trials.value.max())
    assert yaml.safe_load(config_path.read_text())["experiments"]["ql"]["init_kwargs"] == {**best["init_kwargs"], "gamma": 0.9}


# ---------------------------------------------------------------------------------------------- failures and targets
def test_every_trial_failing_fails_the_run_and_leaves_the_config_alone(tmp_path: Path) -> None:
    text = peak_experiment("peak", n_trials=6, workers=2, extra=", fail_above: -2.0")  # every x in [-1, 1] fails
    (tmp_path / "config.yaml").write_text(text)
    result = run_snakemake(tmp_path, None, "optimize")
    assert result.returncode != 0
    assert "is above fail_above=-2.0" in output(result)  # the agent's own error
    assert "trials failed and none completed, so the study was stopped" in output(result)
    logs = "".join(p.read_text() for p in (optimize_dir(tmp_path, "peak") / "workers").glob("*.log"))
    assert "ValueError: x=" in logs and "failed and none completed" in logs
    assert (tmp_path / "config.yaml").read_bytes() == text.encode()
    assert backups(tmp_path) == []
    assert not (optimize_dir(tmp_path, "peak") / "best_init_kwargs.yaml").exists()
    assert not (optimize_dir(tmp_path, "peak") / "trials.parquet").exists()
    assert not list((optimize_dir(tmp_path, "peak") / "workers").glob("*.json"))
    # the failed trials are recorded in the study, each with its error
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
        str(optimize_dir(tmp_path, "peak") / "journal.log")))
    trials = optuna.load_study(study_name=None, storage=storage).get_trials()
    assert 3 <= len(trials) < 6
    assert all(t.state is optuna.trial.TrialState.FAIL and "is above fail_above" in t.user_attrs["error"] for t in trials)


def test_write_back_goes_to_the_config_file_in_use(tmp_path: Path) -> None:
    """Run from the project folder as a user would: `--configfile studies/other.yaml` updates that file (backup
    beside it), not the default config; then a run on the default config writes the same study's best into it."""
    studies = tmp_path / "studies"
    studies.mkdir()
    text = peak_experiment("peak", search_space=False)
    (studies / "other.yaml").write_text(text)
    (tmp_path / "config").mkdir()  # a default config defining the same experiment: not in use, so not touched
    (tmp_path / "config" / "config.yaml").write_text(text)

    def snakemake(*args: str) -> subprocess.CompletedProcess:  # targets first: --configfile takes several values
        command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--cores", "2", *args]
        return ok(subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                                 env=env_with_tests_on_pythonpath()))

    result = snakemake("optimize", "--configfile", "studies/other.yaml")
    best = selected(tmp_path, "peak")["chosen"]["init_kwargs"]
    assert selected(tmp_path, "peak")["written"] and set(best) == {"x", "level"}  # PeakAgent.sample_parameters
    assert yaml.safe_load((studies / "other.yaml").read_text())["experiments"]["peak"]["init_kwargs"] == best
    [backup] = backups(studies, "other")
    assert backup.read_text() == text
    assert (tmp_path / "config" / "config.yaml").read_text() == text
    assert backups(tmp_path / "config") == [] and not list(tmp_path.glob("*.bak.yaml"))
    assert f"into {studies / 'other.yaml'}" in output(result)
    assert "--- a/other.yaml\n+++ b/other.yaml\n" in output(result)
    # the tuned keys came from sample_parameters, and are left out of the study's identity all the same: only the
    # confirmation of the config's own init_kwargs (now the written ones) reruns
    again = snakemake("optimize", "--configfile", "studies/other.yaml")
    assert job_counts(output(again)) == {"optimize_confirm": 1, "optimize_select": 1, "optimize": 1}

    # the default config: same study, so no trial reruns, but its own init_kwargs are confirmed, and the select job
    # writes into the file now in use
    trials = snapshot(optimize_dir(tmp_path, "peak") / "workers")
    result = snakemake("optimize")
    assert job_counts(output(result)) == {"optimize_confirm": 1, "optimize_select": 1, "optimize": 1}
    assert snapshot(optimize_dir(tmp_path, "peak") / "workers") == trials
    assert yaml.safe_load((tmp_path / "config" / "config.yaml").read_text())["experiments"]["peak"]["init_kwargs"] == best
    assert [p.read_text() for p in backups(tmp_path / "config")] == [text]
    assert len(backups(studies, "other")) == 1


def test_write_back_with_layered_config_files_validates_them_merged(tmp_path: Path) -> None:
    """`--configfile base.yaml over.yaml`, over.yaml only changing peak's fit_budget: the best init_kwargs go into
    over.yaml (the last file defining peak), which is valid merged over base.yaml though not on its own."""
    base = peak_experiment("peak")
    (tmp_path / "base.yaml").write_text(base)
    over = "experiments:\n  peak:\n    fit_budget: 50   # a shorter fit than the base's\n"
    (tmp_path / "over.yaml").write_text(over)
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--cores", "2", "optimize",
               "--configfile", "base.yaml", "over.yaml"]
    result = ok(subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                               env=env_with_tests_on_pythonpath()))
    best = selected(tmp_path, "peak")["chosen"]["init_kwargs"]
    assert yaml.safe_load((tmp_path / "over.yaml").read_text()) == {"experiments": {"peak": {"fit_budget": 50,
                                                                                               "init_kwargs": best}}}
    assert (tmp_path / "base.yaml").read_text() == base and backups(tmp_path, "base") == []
    assert [p.read_text() for p in backups(tmp_path, "over")] == [over]
    assert f"into {tmp_path / 'over.yaml'}" in output(result)


def test_a_write_back_that_cannot_succeed_stops_the_run_before_any_trial(tmp_path: Path) -> None:
    """The config in use is valid only with a --config value; the files alone, which the write-back validates, are not."""
    (tmp_path / "config.yaml").write_text(peak_experiment("peak").replace("seed: 3\n", "seed: -3\n"))
    result = run_snakemake(tmp_path, None, "optimize", "--config", "seed=3")
    assert result.returncode != 0
    assert "the tuned init_kwargs of 'peak' would be written into" in result.stderr
    assert "  - seed: -3 is less than the minimum of 0" in result.stderr
    assert "No job was run" in result.stderr and not (tmp_path / "results").exists()


def test_per_experiment_target_tunes_only_that_experiment(tmp_path: Path) -> None:
    peak_b = peak_experiment("peak_b").split("experiments:\n", 1)[1]
    text = peak_experiment("peak_a") + peak_b
    (tmp_path / "config.yaml").write_text(text)
    assert set(yaml.safe_load(text)["experiments"]) == {"peak_a", "peak_b"}
    result = ok(run_snakemake(tmp_path, None, "results/peak_a/optimize/best_init_kwargs.yaml"))
    assert job_counts(output(result)) == {"optimize_worker": 1, "optimize_confirm": 2, "optimize_select": 1}
    assert "peak_b" not in output(result)
    assert not (tmp_path / "results" / "peak_b").exists()
    best = selected(tmp_path, "peak_a")["chosen"]["init_kwargs"]
    expected = yaml.safe_load(text)
    expected["experiments"]["peak_a"]["init_kwargs"] = best
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == expected  # peak_b's init_kwargs unchanged
    assert len(pd.read_parquet(optimize_dir(tmp_path, "peak_a") / "trials.parquet")) == 4


def test_experiments_tuned_in_one_run_all_reach_the_config(tmp_path: Path) -> None:
    """Two select jobs run at once and both edit config.yaml: neither edit may overwrite the other."""
    text = peak_experiment("peak_a") + peak_experiment("peak_b").split("experiments:\n", 1)[1]
    (tmp_path / "config.yaml").write_text(text)
    result = ok(run_snakemake(tmp_path, None, "optimize"))
    assert job_counts(output(result)) == {"optimize_worker": 2, "optimize_confirm": 4, "optimize_select": 2, "optimize": 1}
    expected = yaml.safe_load(text)
    for name in ("peak_a", "peak_b"):
        assert selected(tmp_path, name)["written"]
        expected["experiments"][name]["init_kwargs"] = selected(tmp_path, name)["chosen"]["init_kwargs"]
    assert expected != yaml.safe_load(text)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == expected
    assert comments((tmp_path / "config.yaml").read_text()) == comments(text)
    # one backup per edit: one holds the original, the other the file after the first edit (not the original again)
    saved = [yaml.safe_load(p.read_text()) for p in backups(tmp_path)]
    first_edit = [copy.deepcopy(expected) for _ in range(2)]
    first_edit[0]["experiments"]["peak_a"] = yaml.safe_load(text)["experiments"]["peak_a"]
    first_edit[1]["experiments"]["peak_b"] = yaml.safe_load(text)["experiments"]["peak_b"]
    assert len(saved) == 2 and text in [p.read_text() for p in backups(tmp_path)]
    assert any(s in first_edit for s in saved)
    # the next run confirms only the written values (each the chosen trial's: nothing is fitted) and writes nothing
    again = ok(run_snakemake(tmp_path, None, "optimize"))
    assert job_counts(output(again)) == {"optimize_confirm": 2, "optimize_select": 2, "optimize": 1}
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == expected and len(backups(tmp_path)) == 2


BAD_SECTIONS = [  # (optimize section of ql, what the message must say)
    ({"sampler_method": "grid"}, "experiments.ql.optimize.search_space: the grid sampler needs a search_space"),
    ({"n_trial": 5}, "experiments.ql.optimize: unknown key 'n_trial' (did you mean 'n_trials'?)"),
    ({"search_space": {"learning_rte": {"type": "float", "low": 0.1, "high": 0.5}}},
     "experiments.ql.optimize.search_space: QLearningAgent does not accept 'learning_rte' (did you mean 'learning_rate'?)"),
    ({"confirm": {"top_k": 3, "n_fit": 4}},
     "experiments.ql.optimize.confirm.n_fit: 4 seeds are too few for the confirmation ever to pass"),
    # checked only when optimize jobs are planned (it imports Optuna), before any of them runs
    ({"sampler_kwargs": {"n_startup_trial": 5}},
     "experiments.ql.optimize.sampler_kwargs: TPESampler does not accept 'n_startup_trial' (did you mean 'n_startup_trials'?)"),
]


@pytest.mark.parametrize(("section", "message"), BAD_SECTIONS, ids=[m[:50] for _, m in BAD_SECTIONS])
def test_bad_optimize_section_fails_before_any_job(tmp_path: Path, section: dict, message: str) -> None:
    config = yaml.safe_load(CONFIG)
    config["experiments"]["ql"]["optimize"] = section
    sentinel = tmp_path / "results" / "ql" / "optimize" / "journal.log"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text("earlier study")
    result = run_snakemake(tmp_path, config, "optimize")
    assert result.returncode != 0
    assert message in result.stderr
    assert "No job was run" in result.stderr
    assert [p for p in (tmp_path / "results").rglob("*") if p.is_file()] == [sentinel]
    assert sentinel.read_text() == "earlier study"
    assert backups(tmp_path) == []


def test_lint_is_clean(tmp_path: Path) -> None:
    """`snakemake --lint` (exit status 1 on any lint) on the repository's Snakefile, optimize rules included.

    Run from the temporary folder: the linter writes its log under the current folder, not under -d."""
    (tmp_path / "config.yaml").write_text(CONFIG)
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--configfile", "config.yaml", "--lint"]
    result = ok(subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                               env=env_with_tests_on_pythonpath()))
    assert "Congratulations, your workflow is in a good condition!" in output(result)
