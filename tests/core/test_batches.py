"""rlpipe.core.batches, in process: jobs of several instances give each one the files a job of one gives it, keep
going past a failing instance, resume after the instances an unfinished run completed, and redo everything when
they run again for any other reason; aggregate's check of the instance files against the jobs' records."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlpipe.core import batches
from rlpipe.core.batches import check_batch_outputs, evaluate_batch, fit_batch
from rlpipe.core.tasks import job_batches
from rlpipe.errors import RlpipeError
from rlpipe.io.paths import ExperimentPaths
from rlpipe.spec.experiment import validate_study

from study_tasks import run_settings, task_batch


def study(instances_per_job: int | str, n_fit: int = 3):
    return validate_study({"seed": 5, "experiments": {"ql": {
        "agent": "rlpipe.agents.QLearningAgent", "train_env": "FrozenLake-v1", "fit_budget": 300, "n_fit": n_fit,
        "instances_per_job": instances_per_job, "init_kwargs_per_instance": [{"learning_rate": 0.05 * (i + 1)}
                                                                             for i in range(n_fit)],
        "eval_kwargs": {"eval_horizon": 20, "n_simulations": 4}, "writer": {"print_log": False}}}})


def run_all(folder: Path, instances_per_job: int | str, n_fit: int = 3) -> ExperimentPaths:
    """Every fit job of the experiment, then every evaluate job, as Snakemake runs them."""
    s, paths = study(instances_per_job, n_fit), ExperimentPaths(folder)
    count = len(job_batches(s.experiment("ql")))
    for stage, run_batch in (("fit", fit_batch), ("evaluate", evaluate_batch)):
        for b in range(count):
            run_batch(task_batch(s, "ql", stage, b), paths, b, run_settings(s, "ql"))
    return paths


def instance_numbers(paths: ExperimentPaths, instance: int) -> tuple:
    files = paths.instance(instance)
    with np.load(files.checkpoint) as archive:
        arrays = {name: archive[name].tolist() for name in archive.files if name != "__meta__"}
    writer = pd.read_parquet(files.writer).drop(columns="dw_time_elapsed")
    return arrays, writer.to_dict("list"), pd.read_parquet(files.evaluation).to_dict("list")


def test_batch_sizes_change_no_number(tmp_path):
    one, three = run_all(tmp_path / "one", 1), run_all(tmp_path / "three", 3)
    assert [r.name for r in sorted((tmp_path / "three" / "batches").glob("*.json"))] == ["evaluate-0.json", "fit-0.json"]
    assert len(list((tmp_path / "one" / "batches").glob("fit-*.json"))) == 3
    for i in range(3):
        assert instance_numbers(one, i) == instance_numbers(three, i)
    differ = instance_numbers(one, 0)[0] != instance_numbers(one, 1)[0]
    assert differ  # each instance has its own seed and learning rate
    record = json.loads(three.batch("fit", 0).record.read_text())
    assert record["instances"] == [0, 1, 2]
    assert record["task_hashes"] == {str(i): json.loads(three.instance(i).fit_record.read_text())["task_hash"]
                                     for i in range(3)}
    check_batch_outputs(three, [three.batch("fit", 0).record, three.batch("evaluate", 0).record])  # all there


def test_a_failing_instance_lets_the_others_finish_and_a_rerun_resumes_after_them(tmp_path, monkeypatch):
    s, paths = study(3), ExperimentPaths(tmp_path)
    batch, run = task_batch(s, "ql", "fit", 0), run_settings(s, "ql")
    real_fit = batches.fit_instance
    calls: list[int] = []

    def fit_failing_once(task, *args, **kwargs):
        calls.append(task.instance)
        if task.instance == 1 and calls.count(1) == 1:
            raise ValueError("a node went away")
        return real_fit(task, *args, **kwargs)

    monkeypatch.setattr(batches, "fit_instance", fit_failing_once)
    with pytest.raises(RlpipeError) as failed:
        fit_batch(batch, paths, 0, run)
    assert str(failed.value) == ("1 of 3 instances failed (instance 1: ValueError: a node went away); the other 2 "
                                 "are kept, and a rerun of this job resumes after them")
    assert "ValueError: a node went away" in paths.instance(1).fit_log.read_text()
    assert not paths.batch("fit", 0).record.exists()
    assert json.loads(paths.batch("fit", 0).progress.read_text())["done"] == [0, 2]
    kept = {i: paths.instance(i).fit_record.read_bytes() for i in (0, 2)}

    fit_batch(batch, paths, 0, run)
    assert calls == [0, 1, 2, 1]  # the rerun fitted only the instance that failed
    assert {i: paths.instance(i).fit_record.read_bytes() for i in (0, 2)} == kept
    assert paths.batch("fit", 0).record.is_file() and not paths.batch("fit", 0).progress.exists()


def test_a_job_that_completed_redoes_its_instances_when_run_again(tmp_path, monkeypatch):
    """What makes a finished job run again (its batch changed, --forcerun) is a reason to redo it all."""
    s, paths = study(3), ExperimentPaths(tmp_path)
    batch, run = task_batch(s, "ql", "fit", 0), run_settings(s, "ql")
    fit_batch(batch, paths, 0, run)
    fitted: list[int] = []
    real_fit = batches.fit_instance
    monkeypatch.setattr(batches, "fit_instance", lambda task, *a, **k: fitted.append(task.instance) or real_fit(task, *a, **k))
    fit_batch(batch, paths, 0, run)
    assert fitted == [0, 1, 2]


def test_evaluations_of_earlier_fits_are_not_kept_when_the_fits_were_redone(tmp_path, monkeypatch):
    s, paths = study(3), ExperimentPaths(tmp_path)
    fit, evaluate, run = task_batch(s, "ql", "fit", 0), task_batch(s, "ql", "evaluate", 0), run_settings(s, "ql")
    fit_batch(fit, paths, 0, run)
    real_evaluate = batches.evaluate_instance
    evaluated: list[int] = []

    def evaluate_failing_instance_2(task, *args, **kwargs):
        evaluated.append(task.instance)
        if task.instance == 2:
            raise ValueError("interrupted")
        return real_evaluate(task, *args, **kwargs)

    monkeypatch.setattr(batches, "evaluate_instance", evaluate_failing_instance_2)
    with pytest.raises(RlpipeError):
        evaluate_batch(evaluate, paths, 0, run)
    assert json.loads(paths.batch("evaluate", 0).progress.read_text())["done"] == [0, 1]
    fit_batch(fit, paths, 0, run)  # the fits are redone (e.g. --forcerun fit): a new fit record
    monkeypatch.setattr(batches, "evaluate_instance", real_evaluate)
    evaluate_batch(evaluate, paths, 0, run)
    assert evaluated == [0, 1, 2]
    record = json.loads(paths.batch("evaluate", 0).record.read_text())
    assert record["instances"] == [0, 1, 2] and record["stage"] == "evaluate"


def test_the_check_names_each_changed_instance_file_and_its_job(tmp_path):
    paths = run_all(tmp_path, 2)  # jobs: instances 0-1, then 2
    records = [paths.batch(stage, b).record for stage in ("fit", "evaluate") for b in (0, 1)]
    paths.instance(0).checkpoint.unlink()
    fit_record = json.loads(paths.instance(2).fit_record.read_text())
    paths.instance(2).fit_record.write_text(json.dumps({**fit_record, "task_hash": "0" * 16}))
    paths.instance(1).evaluation.write_bytes(b"not parquet")
    with pytest.raises(RlpipeError) as changed:
        check_batch_outputs(paths, records)
    lines = str(changed.value).splitlines()
    assert lines[0] == "instance files changed after the job that made them ran:"
    assert lines[1] == (f"  - instance 0: agent.ckpt missing (made by {paths.batch('fit', 0).record}: delete it, or "
                        f"run `snakemake --forcerun {paths.batch('fit', 0).record}`, to redo its job)")
    assert lines[2].startswith("  - instance 2: fit.json is the record of another fit (made by ")
    assert lines[3].startswith(f"  - instance 1: {paths.instance(1).evaluation} cannot be read")
    assert len(lines) == 4


def test_auto_makes_at_most_16_jobs_per_experiment():
    assert [list(r) for r in job_batches(study("auto", 3).experiment("ql"))] == [[0], [1], [2]]
    assert [len(r) for r in job_batches(study("auto", 40).experiment("ql"))] == [3] * 13 + [1]
    assert [len(r) for r in job_batches(study(7, 16).experiment("ql"))] == [7, 7, 2]


def test_instances_made_for_the_same_task_by_another_batching_are_kept(tmp_path, monkeypatch):
    """Raising n_fit with instances_per_job "auto" changes the batches: the old instances are kept, not refitted nor
    re-evaluated, and a forced rerun of the new jobs then redoes them."""
    paths = run_all(tmp_path, "auto", n_fit=16)  # 16 jobs of 1
    before = {i: instance_numbers(paths, i) for i in range(16)}
    done: list[tuple[str, int]] = []
    real_fit, real_evaluate = batches.fit_instance, batches.evaluate_instance
    monkeypatch.setattr(batches, "fit_instance", lambda t, *a, **k: done.append(("fit", t.instance)) or real_fit(t, *a, **k))
    monkeypatch.setattr(batches, "evaluate_instance",
                        lambda t, *a, **k: done.append(("evaluate", t.instance)) or real_evaluate(t, *a, **k))
    run_all(tmp_path, "auto", n_fit=18)  # 9 jobs of 2
    assert done == [("fit", 16), ("fit", 17), ("evaluate", 16), ("evaluate", 17)]
    assert {i: instance_numbers(paths, i) for i in range(16)} == before
    assert json.loads(paths.batch("fit", 0).record.read_text())["kept"] == [0, 1]
    assert json.loads(paths.batch("evaluate", 8).record.read_text())["kept"] == []
    s = study("auto", 18)
    done.clear()
    fit_batch(task_batch(s, "ql", "fit", 0), paths, 0, run_settings(s, "ql"))  # --forcerun of the new job
    evaluate_batch(task_batch(s, "ql", "evaluate", 0), paths, 0, run_settings(s, "ql"))
    assert done == [("fit", 0), ("fit", 1), ("evaluate", 0), ("evaluate", 1)]
    assert instance_numbers(paths, 0) == before[0]
