"""rlpipe.core.fitting, in process: budgets split in chunks, fit outputs, resume after a kill, pickled agents.

The evaluation tests are in test_evaluation.py; the study both build is in stage_helpers.py."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from rlpipe.agents import QLearningAgent
from rlpipe.core.evaluation import evaluate_instance, load_instance_agent
from rlpipe.core.fitting import agent_kwargs, fit_instance, remaining_chunks, split_budget, writer_kwargs
from rlpipe.core.tasks import RunSettings, agent_class
from rlpipe.errors import CheckpointError, ConfigError
from rlpipe.io.paths import InstancePaths
from rlpipe.io.provenance import code_version
from rlpipe.runtime.seeding import seed_record, torch_seed
from rlpipe.runtime.writer import COLUMNS

from rlberry_style_agents import fake_torch_module
from stage_helpers import leftovers, make_study
from study_tasks import eval_task, fit_task, run_settings

FLAKY = "helpers_agents:FlakyQLearningAgent"
RUN = RunSettings(n_checkpoints=5, writer={"print_log": False})  # as make_study's fits run: 5 chunks of 200


@pytest.fixture(autouse=True)
def helpers(monkeypatch):
    """Reset the interruption switch of ``helpers_agents``."""
    import helpers_agents

    monkeypatch.setattr(helpers_agents.FlakyQLearningAgent, "fail_after_calls", None)
    monkeypatch.setattr(helpers_agents.FlakyQLearningAgent, "calls", 0)
    return helpers_agents


def writer_rows(path: Path) -> list[tuple]:
    table = pq.read_table(path)
    return list(zip(table.column("tag").to_pylist(), table.column("value").to_pylist(),
                    table.column("global_step").to_pylist()))


def q_table(task, paths: InstancePaths) -> np.ndarray:
    return load_instance_agent(task, paths.checkpoint).q


# ---------------------------------------------------------------------------------------------- split_budget
@pytest.mark.parametrize("budget, n", [(10, 3), (1000, 7), (5, 5), (3, 10), (1, 1), (1, 4), (97, 96), (100, 1)])
def test_split_budget(budget, n):
    chunks = split_budget(budget, n)
    assert sum(chunks) == budget
    assert len(chunks) == min(n, budget)
    assert min(chunks) >= 1
    assert max(chunks) - min(chunks) <= 1
    assert chunks == sorted(chunks, reverse=True)  # the larger chunks first


def test_remaining_chunks_follow_the_plan_or_split_the_rest():
    assert remaining_chunks(1000, 5, 0) == [200] * 5
    assert remaining_chunks(1000, 5, 600) == [200, 200]  # after a planned chunk: the plan's next ones
    assert remaining_chunks(1000, 5, 1000) == []
    assert remaining_chunks(1000, 4, 600) == [200, 200]  # progress of 5 chunks resumed with 4: the rest, evenly
    assert remaining_chunks(1000, 2, 600) == [400]
    assert remaining_chunks(-1, 10, 0) == [-1]  # an agent that needs no budget: one call


def test_split_budget_examples():
    assert split_budget(10, 3) == [4, 3, 3]
    assert split_budget(2, 5) == [1, 1]
    assert split_budget(7, 1) == [7]


# ---------------------------------------------------------------------------------------------- outputs
def test_fit_instance_outputs(tmp_path):
    task = fit_task(make_study(), "ql", 1)
    paths = InstancePaths(tmp_path / "i1")
    record = fit_instance(task, paths, RUN)

    assert paths.checkpoint.is_file() and paths.writer.is_file() and paths.fit_record.is_file()
    assert leftovers(paths.folder) == []
    assert not paths.progress.exists()
    assert not (paths.folder / "agent_output").exists()

    table = pq.read_table(paths.writer)
    assert table.schema.names == list(COLUMNS) == ["name", "tag", "value", "dw_time_elapsed", "global_step"]
    assert set(table.column("name").to_pylist()) == {"ql"}  # the writer is named after the experiment
    assert set(table.column("tag").to_pylist()) == {"episode_rewards", "episode_length"}
    provenance = json.loads(table.schema.metadata[b"rlpipe"])  # the writer data says which task made it
    assert provenance["task_hash"] == task.task_hash() and provenance["instance"] == 1
    assert provenance["root_seed"] == task.root_seed and "rlpipe" in provenance["versions"]

    on_disk = json.loads(paths.fit_record.read_text())
    assert on_disk == json.loads(json.dumps(record))
    assert on_disk["total_env_steps"] == task.fit_budget == 1000
    assert on_disk["task_hash"] == task.task_hash()
    assert on_disk["instance_seed"] == seed_record(task.instance_seed)
    assert on_disk["root_seed"] == task.root_seed
    assert on_disk["experiment"] == "ql" and on_disk["instance"] == 1
    assert on_disk["agent_class"] == "rlpipe.agents.q_learning:QLearningAgent"
    assert on_disk["chunks"] == [200] * 5
    assert on_disk["resumed_at"] == 0
    assert {"python", "rlpipe", "numpy", "gymnasium"} <= set(on_disk["versions"])
    assert on_disk["git"] == code_version()  # the commit of the code that fitted it
    assert on_disk["wall_time_s"] > 0
    assert on_disk["task"]["init_kwargs"] == {"epsilon_decay_steps": 300}

    agent = load_instance_agent(task, paths.checkpoint)
    assert agent.total_env_steps == 1000


def test_fit_instance_equals_a_plain_fit(tmp_path):
    task = fit_task(make_study(), "ql", 0)
    paths = InstancePaths(tmp_path / "i0")
    fit_instance(task, paths, RUN)
    plain = QLearningAgent(**agent_kwargs(task, tmp_path / "unused", writer_kwargs(task, RUN)))
    plain.fit(task.fit_budget)
    np.testing.assert_array_equal(q_table(task, paths), plain.q)
    data = plain.writer.data
    assert writer_rows(paths.writer) == list(zip(data["tag"], data["value"], data["global_step"]))


def test_instances_differ(tmp_path):
    s = make_study()
    t0, t1 = fit_task(s, "ql", 0), fit_task(s, "ql", 1)
    p0, p1 = InstancePaths(tmp_path / "0"), InstancePaths(tmp_path / "1")
    fit_instance(t0, p0, RUN)
    fit_instance(t1, p1, RUN)
    assert writer_rows(p0.writer) != writer_rows(p1.writer)


def test_n_checkpoints_does_not_change_results(tmp_path):
    one = fit_task(make_study(n_checkpoints=1), "ql", 0)
    seven = fit_task(make_study(n_checkpoints=7), "ql", 0)
    assert one == seven  # how many checkpoints an additive fit writes is not part of its task
    p1, p7 = InstancePaths(tmp_path / "one"), InstancePaths(tmp_path / "seven")
    assert fit_instance(one, p1, RunSettings(n_checkpoints=1))["chunks"] == [1000]
    assert fit_instance(seven, p7, RunSettings(n_checkpoints=7))["chunks"] == [143] * 6 + [142]
    np.testing.assert_array_equal(q_table(one, p1), q_table(seven, p7))
    assert writer_rows(p1.writer) == writer_rows(p7.writer)


def test_refit_of_a_finished_instance_gives_the_same_results(tmp_path):
    task = fit_task(make_study(), "ql", 0)
    paths = InstancePaths(tmp_path / "i")
    fit_instance(task, paths, RUN)
    first_q, first_rows = q_table(task, paths), writer_rows(paths.writer)
    record = fit_instance(task, paths, RUN)
    assert record["resumed_at"] == 0
    np.testing.assert_array_equal(q_table(task, paths), first_q)
    assert writer_rows(paths.writer) == first_rows


# ---------------------------------------------------------------------------------------------- resume
def interrupt(task, paths: InstancePaths, helpers, after_chunks: int) -> None:
    """Run the fit until its agent raises after ``after_chunks`` chunks, leaving the progress folder."""
    helpers.FlakyQLearningAgent.fail_after_calls = after_chunks
    helpers.FlakyQLearningAgent.calls = 0
    with pytest.raises(RuntimeError, match="simulated interruption"):
        fit_instance(task, paths, RUN)
    helpers.FlakyQLearningAgent.fail_after_calls = None
    assert not paths.checkpoint.exists() and not paths.fit_record.exists()
    progress = json.loads((paths.progress / "progress.json").read_text())
    done = 200 * after_chunks
    times = {key: progress.pop(key) for key in ("wall_time_s", "cpu_time_s")}  # spent so far, kept for the total
    assert progress == {"task_hash": task.task_hash(), "budget_done": done,
                        "checkpoint": f"agent.{done}.ckpt", "writer": f"writer.{done}.parquet"}
    assert 0 < times["cpu_time_s"] and 0 < times["wall_time_s"]
    assert sorted(p.name for p in paths.progress.iterdir()) == sorted(["progress.json", *progress_files(progress)])


def progress_files(progress: dict) -> list[str]:
    return [progress["checkpoint"], progress["writer"]]


def test_a_kill_between_the_files_of_a_chunk_resumes_from_the_previous_chunk(tmp_path, helpers):
    """Chunk 3's checkpoint and writer data are written, the record is not: resume must start after chunk 2."""
    task = fit_task(make_study(agent=FLAKY), "ql", 0)
    paths = InstancePaths(tmp_path / "i")
    interrupt(task, paths, helpers, after_chunks=2)
    agent = agent_class(task).load(paths.progress / "agent.400.ckpt",
                                   **agent_kwargs(task, tmp_path, writer_kwargs(task, RUN)))
    agent.fit(task.fit_budget)  # a later state, saved under the next chunk's names as a killed save would leave it
    agent.save(paths.progress / "agent.600.ckpt")
    (paths.progress / "writer.600.parquet").write_bytes((paths.progress / "writer.400.parquet").read_bytes())
    record = fit_instance(task, paths, RUN)
    assert record["resumed_at"] == 400
    expected = reference(task, tmp_path)
    np.testing.assert_array_equal(q_table(task, paths), q_table(task, expected))
    assert writer_rows(paths.writer) == writer_rows(expected.writer)


def reference(task, tmp_path: Path) -> InstancePaths:
    paths = InstancePaths(tmp_path / "reference")
    fit_instance(task, paths, RUN)
    return paths


def test_resume_after_interruption_equals_uninterrupted(tmp_path, helpers, caplog):
    task = fit_task(make_study(agent=FLAKY), "ql", 0)
    expected = reference(task, tmp_path)
    paths = InstancePaths(tmp_path / "interrupted")
    interrupt(task, paths, helpers, after_chunks=3)
    killed_run = json.loads((paths.progress / "progress.json").read_text())

    with caplog.at_level("INFO", logger="rlpipe"):
        record = fit_instance(task, paths, RUN)
    assert "resuming ql[0] after 600 of its budget 1000" in caplog.text
    # the times count the killed run too (this run's own wall time apart)
    assert record["wall_time_s"] == pytest.approx(killed_run["wall_time_s"] + record["run_wall_time_s"], abs=0.05)
    assert record["cpu_time_s"] > killed_run["cpu_time_s"] > 0
    assert record["resumed_at"] == 600 and record["chunks"] == [200, 200]
    assert json.loads(paths.fit_record.read_text())["resumed_at"] == 600
    assert record["total_env_steps"] == 1000
    np.testing.assert_array_equal(q_table(task, paths), q_table(task, expected))
    assert writer_rows(paths.writer) == writer_rows(expected.writer)
    elapsed = pq.read_table(paths.writer).column("dw_time_elapsed").to_numpy()
    assert (np.diff(elapsed) >= 0).all()  # the clock continued after the resume
    assert leftovers(paths.folder) == []
    # and the Flaky agent learns exactly as the built-in one
    plain = fit_task(make_study(), "ql", 0)
    plain_paths = InstancePaths(tmp_path / "plain")
    fit_instance(plain, plain_paths, RUN)
    np.testing.assert_array_equal(q_table(plain, plain_paths), q_table(task, paths))


def test_resume_after_the_last_chunk(tmp_path, helpers, monkeypatch):
    """Killed after the last chunk was saved but before the outputs were promoted: no fit call is left."""
    import rlpipe.core.fitting

    task = fit_task(make_study(agent=FLAKY, n_checkpoints=2), "ql", 1)
    expected = reference(task, tmp_path)
    paths = InstancePaths(tmp_path / "interrupted")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(rlpipe.core.fitting, "_promote_progress", killed)
        with pytest.raises(KeyboardInterrupt):
            fit_instance(task, paths, RunSettings(n_checkpoints=2))
    assert json.loads((paths.progress / "progress.json").read_text())["budget_done"] == 1000
    helpers.FlakyQLearningAgent.fail_after_calls = 0  # any further fit call would raise
    helpers.FlakyQLearningAgent.calls = 0
    record = fit_instance(task, paths, RunSettings(n_checkpoints=2))
    assert record["resumed_at"] == 1000 and record["chunks"] == []
    assert helpers.FlakyQLearningAgent.calls == 0
    np.testing.assert_array_equal(q_table(task, paths), q_table(task, expected))
    assert writer_rows(paths.writer) == writer_rows(expected.writer)
    assert leftovers(paths.folder) == []


def test_progress_of_another_task_is_discarded(tmp_path, helpers, caplog):
    old = fit_task(make_study(agent=FLAKY), "ql", 0)
    new = fit_task(make_study(agent=FLAKY, fit_budget=1200), "ql", 0)
    assert old.task_hash() != new.task_hash()
    paths = InstancePaths(tmp_path / "i")
    interrupt(old, paths, helpers, after_chunks=2)
    with caplog.at_level("INFO", logger="rlpipe"):
        record = fit_instance(new, paths, RUN)
    assert "resuming" not in caplog.text
    assert record["resumed_at"] == 0
    assert record["total_env_steps"] == 1200
    expected = reference(new, tmp_path)
    np.testing.assert_array_equal(q_table(new, paths), q_table(new, expected))
    assert writer_rows(paths.writer) == writer_rows(expected.writer)


def test_corrupt_progress_checkpoint_is_discarded(tmp_path, helpers, caplog):
    task = fit_task(make_study(agent=FLAKY), "ql", 0)
    paths = InstancePaths(tmp_path / "i")
    interrupt(task, paths, helpers, after_chunks=2)
    checkpoint = paths.progress / "agent.400.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with caplog.at_level("INFO", logger="rlpipe"):
        record = fit_instance(task, paths, RUN)
    err = caplog.text
    assert "cannot resume" in err and "truncated" in err and "starting over" in err
    assert record["resumed_at"] == 0
    expected = reference(task, tmp_path)
    np.testing.assert_array_equal(q_table(task, paths), q_table(task, expected))
    assert writer_rows(paths.writer) == writer_rows(expected.writer)


def test_unreadable_progress_record_starts_over(tmp_path, helpers):
    task = fit_task(make_study(agent=FLAKY), "ql", 0)
    paths = InstancePaths(tmp_path / "i")
    interrupt(task, paths, helpers, after_chunks=2)
    (paths.progress / "progress.json").write_text('{"task_hash": ')
    record = fit_instance(task, paths, RUN)
    assert record["resumed_at"] == 0
    expected = reference(task, tmp_path)
    np.testing.assert_array_equal(q_table(task, paths), q_table(task, expected))


def test_corrupt_progress_writer_data_is_discarded(tmp_path, helpers, caplog):
    task = fit_task(make_study(agent=FLAKY), "ql", 0)
    paths = InstancePaths(tmp_path / "i")
    interrupt(task, paths, helpers, after_chunks=2)
    (paths.progress / "writer.400.parquet").write_bytes(b"not parquet" * 10)
    with caplog.at_level("INFO", logger="rlpipe"):
        record = fit_instance(task, paths, RUN)
    assert "ql[0]: cannot resume (" in caplog.text and "writer.400.parquet" in caplog.text, caplog.text
    assert "); starting over" in caplog.text and "resuming" not in caplog.text
    assert record["resumed_at"] == 0
    expected = reference(task, tmp_path)
    np.testing.assert_array_equal(q_table(task, paths), q_table(task, expected))
    assert writer_rows(paths.writer) == writer_rows(expected.writer)


def test_a_non_additive_agent_with_explicit_checkpoints_resumes_to_its_chunked_fit(tmp_path, monkeypatch, caplog):
    """An agent written rlberry's way (it resets its env in every fit call) with ``n_checkpoints: 5`` is trained by 5
    fit calls; killed after 2 of them, it resumes with the 3 planned ones and ends as the uninterrupted fit."""
    from rlberry_style_agents import SelfSteppingQAgent

    study = make_study(agent="rlberry_style_agents:SelfSteppingQAgent", train_env="Taxi-v4", init_kwargs={},
                       fit_budget=500, n_checkpoints=5, allow_pickle=True)
    task, run = fit_task(study, "ql", 0), run_settings(study, "ql")
    assert task.chunks == 5  # part of what its fit computes
    expected = InstancePaths(tmp_path / "reference")
    assert fit_instance(task, expected, run)["chunks"] == [100] * 5

    paths, calls, fit = InstancePaths(tmp_path / "interrupted"), [], SelfSteppingQAgent.fit

    def interrupted(self, budget, **kwargs):
        if len(calls) == 2:
            raise RuntimeError("simulated interruption")
        calls.append(budget)
        fit(self, budget, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(SelfSteppingQAgent, "fit", interrupted)
        with pytest.raises(RuntimeError, match="simulated interruption"):
            fit_instance(task, paths, run)
    assert calls == [100, 100] and not paths.fit_record.exists()
    with caplog.at_level("INFO", logger="rlpipe"):
        record = fit_instance(task, paths, run)
    assert "resuming ql[0] after 200 of its budget 500" in caplog.text
    assert record["resumed_at"] == 200 and record["chunks"] == [100, 100, 100]

    ours, theirs = (load_instance_agent(eval_task(study, "ql", 0), p.checkpoint, allow_pickle=True) for p in (paths, expected))
    assert np.abs(theirs.Q).sum() > 0  # it learned something to compare
    np.testing.assert_array_equal(ours.Q, theirs.Q)
    assert ours.rng.bit_generator.state == theirs.rng.bit_generator.state
    assert writer_rows(paths.writer) == writer_rows(expected.writer)
    tables = [evaluate_instance(eval_task(study, "ql", 0), p.checkpoint, p.evaluation, run) for p in (paths, expected)]
    assert tables[0].equals(tables[1])


def test_pickled_agent_fit_and_evaluation(tmp_path):
    base = {"agent": "helpers_agents:PickledCounterAgent", "init_kwargs": {}, "fit_budget": 60, "n_checkpoints": 3}
    trusted = make_study(allow_pickle=True, **base)
    run = run_settings(trusted, "ql")
    assert run.allow_pickle and run.n_checkpoints == 3
    paths = InstancePaths(tmp_path / "p")
    record = fit_instance(fit_task(trusted, "ql", 0), paths, run)
    assert record["total_env_steps"] == 60
    table = evaluate_instance(eval_task(trusted, "ql", 0), paths.checkpoint, paths.evaluation, run)
    assert table.num_rows == 6
    with pytest.raises(ConfigError, match="ql.allow_pickle: PickledCounterAgent has no get_state/set_state"):
        make_study(**base)  # refused by validation, before any job
    untrusted = dataclasses.replace(run, allow_pickle=False)
    with pytest.raises(CheckpointError, match="allow_pickle"):  # and run settings made by hand still cannot unpickle
        evaluate_instance(eval_task(trusted, "ql", 0), paths.checkpoint, tmp_path / "x.parquet", untrusted)


def test_an_agent_with_its_own_save_and_load_is_fitted_continued_and_evaluated(tmp_path):
    """rlberry's ``load(cls, filename, **kwargs)`` passes its keywords to the constructor: it is never given allow_pickle."""
    study = make_study(agent="rlberry_style_agents:OwnSaveAgent", init_kwargs={}, fit_budget=3, n_checkpoints=1,
                       allow_pickle=True)
    run, paths = run_settings(study, "ql"), InstancePaths(tmp_path / "own")
    fit_instance(fit_task(study, "ql", 0), paths, run)
    fitted = json.loads(paths.checkpoint.read_text())  # the agent's own file format
    loaded = load_instance_agent(eval_task(study, "ql", 0), paths.checkpoint, allow_pickle=True)
    assert loaded.preferences.tolist() == fitted and max(fitted) > 0
    table = evaluate_instance(eval_task(study, "ql", 0), paths.checkpoint, paths.evaluation, run)
    assert table.num_rows == 6 and set(table.column("unit").to_pylist()) == {"episode"}
    record = fit_instance(fit_task(study, "ql", 0), paths, run, continue_fit=True)  # loads the checkpoint, fits 3 more
    assert record["fit_budget"] == 6
    again = json.loads(paths.checkpoint.read_text())
    assert all(b > a for a, b in zip(fitted, again))


def test_draws_from_the_global_generator_in_the_agents_constructor_are_reported(tmp_path, caplog):
    study = make_study(agent="rlberry_style_agents:InitDrawAgent", init_kwargs={}, fit_budget=3, n_checkpoints=1,
                       allow_pickle=True)
    with caplog.at_level(logging.WARNING, logger="rlpipe"):
        record = fit_instance(fit_task(study, "ql", 0), InstancePaths(tmp_path / "init"), run_settings(study, "ql"))
    assert record["unseeded_draws"] is True
    assert "InitDrawAgent drew from numpy's or Python's global random generator" in caplog.text


def test_torch_is_seeded_from_each_instances_seed_when_its_agent_is_built(tmp_path, monkeypatch, caplog):
    torch = fake_torch_module()
    monkeypatch.setitem(sys.modules, "torch", torch)
    study = make_study(agent="rlberry_style_agents:TorchStyleAgent", init_kwargs={}, fit_budget=4, n_checkpoints=1,
                       allow_pickle=True)
    run, tasks = run_settings(study, "ql"), [fit_task(study, "ql", i) for i in (0, 1)]
    with caplog.at_level(logging.WARNING, logger="rlpipe"):
        records = [fit_instance(task, InstancePaths(tmp_path / str(task.instance)), run) for task in tasks]
    assert torch.seeds == [torch_seed(task.instance_seed) for task in tasks] and torch.seeds[0] != torch.seeds[1]
    assert [record["unseeded_draws"] for record in records] == [False, False]  # torch was loaded, so rlpipe seeded it
    assert "drew from" not in caplog.text
    weights = [load_instance_agent(eval_task(study, "ql", i), InstancePaths(tmp_path / str(i)).checkpoint, allow_pickle=True).weights
               for i in (0, 1)]
    assert len(weights[0]) == 5 and weights[0] != weights[1]
    fit_instance(tasks[0], InstancePaths(tmp_path / "again"), run)  # the same instance again: the same torch draws
    assert load_instance_agent(eval_task(study, "ql", 0), InstancePaths(tmp_path / "again").checkpoint, allow_pickle=True).weights == weights[0]


def test_tasks_survive_json(tmp_path):
    """The CLI rebuilds tasks from JSON: the result must not change."""
    task = fit_task(make_study(), "ql", 0)
    again = type(task).from_json(task.to_json())
    a, b = InstancePaths(tmp_path / "a"), InstancePaths(tmp_path / "b")
    fit_instance(task, a, RUN)
    fit_instance(again, b, RUN)
    assert writer_rows(a.writer) == writer_rows(b.writer)
    assert again.record() == task.record() and again.task_hash() == task.task_hash()  # the class by its import path


def test_outputs_get_the_usual_file_mode_not_mkstemps_owner_only(tmp_path):
    """Results are shared on clusters: a new file gets 0o666 minus the umask, a replaced file keeps its mode."""
    from rlpipe.io.atomic import write_text

    mask = os.umask(0)
    os.umask(mask)
    new = tmp_path / "new.txt"
    write_text(new, "x")
    assert new.stat().st_mode & 0o777 == 0o666 & ~mask
    os.chmod(new, 0o640)
    write_text(new, "y")
    assert new.stat().st_mode & 0o777 == 0o640 and new.read_text() == "y"
