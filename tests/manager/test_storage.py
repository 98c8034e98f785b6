"""rlpipe.manager.storage: how an ExperimentManager's parameters become JSON (tagged tuples, non-string keys,
partials, import paths, pickles in manager_objects.pkl) and come back, how a manager file or folder is found,
and the manager record of a pipeline experiment folder, built from its instances' fit.json."""
from __future__ import annotations

import functools
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rlpipe
from rlpipe.agents import QLearningAgent
from rlpipe.core import tasks
from rlpipe.core.evaluation import evaluate_instance
from rlpipe.core.fitting import fit_instance
from rlpipe.errors import CheckpointError
from rlpipe.io.paths import ExperimentPaths
from rlpipe.manager import storage
from rlpipe.manager.experiment_manager import ExperimentManager
from rlpipe.manager.storage import MANAGER_FILE, OBJECTS_FILE, decode, encode, pipeline_record, read_manager_file

from helpers_agents import PeakAgent
from rlberry_style_agents import NoBudgetAgent
from stage_helpers import make_study
from study_tasks import eval_task, fit_task, run_settings


def through_json(value: Any, folder: Path, allow_pickle: bool = False) -> Any:
    """``value`` encoded, written as JSON text, read back and decoded, as save and load do."""
    return decode(json.loads(json.dumps(encode(value, folder))), folder, allow_pickle)


class Doubler:
    """A callable object: an instance has no import path, so it is pickled."""

    def __call__(self, x: float) -> float:
        return 2 * x


# ---------------------------------------------------------------------------------------------- JSON values
def test_json_values_are_stored_as_they_are(tmp_path):
    value = {"a": 1, "b": [1.5, "x", None, True, False], "c": {"d": {}, "e": []}, "f": -3}
    assert encode(value, tmp_path) == value
    assert through_json(value, tmp_path) == value
    assert list(tmp_path.iterdir()) == []  # nothing to pickle: no objects file


def test_non_finite_floats_survive(tmp_path):
    back = through_json({"inf": math.inf, "nan": math.nan}, tmp_path)
    assert back["inf"] == math.inf and math.isnan(back["nan"])


def test_tuples_are_tagged(tmp_path):
    value = (1, (2, 3), [4, ()], "x")
    data = encode(value, tmp_path)
    assert data == {"__tuple__": [1, {"__tuple__": [2, 3]}, [4, {"__tuple__": []}], "x"]}
    back = through_json(value, tmp_path)
    assert back == value
    assert type(back) is tuple and type(back[1]) is tuple and type(back[2]) is list and type(back[2][1]) is tuple


def test_mappings_with_keys_that_are_not_strings_are_item_lists(tmp_path):
    value = {"reward_at": {(4, 4): 1.0, (0, 3): -1.0}, "by_int": {0: "a", 10: "b"}, "mixed": {"s": 1, 2: "t"}}
    data = encode(value, tmp_path)
    assert data == {
        "reward_at": {"__items__": [[{"__tuple__": [4, 4]}, 1.0], [{"__tuple__": [0, 3]}, -1.0]]},
        "by_int": {"__items__": [[0, "a"], [10, "b"]]},
        "mixed": {"__items__": [["s", 1], [2, "t"]]},
    }
    back = through_json(value, tmp_path)
    assert back == value
    assert list(back["by_int"]) == [0, 10]  # int keys, not the strings plain JSON would make of them


def test_classes_and_functions_are_stored_by_import_path(tmp_path):
    value = [QLearningAgent, QLearningAgent.fit, math.sqrt, PeakAgent, json.dumps]
    assert encode(value, tmp_path) == [
        {"__import__": "rlpipe.agents.q_learning:QLearningAgent"},
        {"__import__": "rlpipe.agents.q_learning:QLearningAgent.fit"},
        {"__import__": "math:sqrt"},
        {"__import__": "helpers_agents:PeakAgent"},
        {"__import__": "json:dumps"},
    ]
    back = through_json(value, tmp_path)
    assert all(a is b for a, b in zip(back, value)) and len(back) == 5
    assert not (tmp_path / OBJECTS_FILE).exists()


def test_partials_are_tagged(tmp_path):
    value = {"dump": functools.partial(json.dumps, {"b": 1, "a": (2,)}, sort_keys=True)}
    assert encode(value, tmp_path) == {"dump": {"__partial__": [
        {"__import__": "json:dumps"}, {"__tuple__": [{"b": 1, "a": {"__tuple__": [2]}}]}, {"sort_keys": True}]}}
    back = through_json(value, tmp_path)["dump"]
    assert isinstance(back, functools.partial)
    assert back.func is json.dumps and back.args == ({"b": 1, "a": (2,)},) and back.keywords == {"sort_keys": True}
    assert back() == '{"a": [2], "b": 1}'
    assert not (tmp_path / OBJECTS_FILE).exists()


# ---------------------------------------------------------------------------------------------- pickles
def test_objects_without_an_import_path_are_pickled(tmp_path):
    def local(x: float) -> float:
        return x - 1

    value = {"lambda": lambda x: x + 1, "plain": 3, "local": local, "object": Doubler(), "a_set": {1, 2},
             "partial": functools.partial(lambda x, y: x * y, 5)}
    data = encode(value, tmp_path)
    assert data == {"lambda": {"__pickled__": "0"}, "plain": 3, "local": {"__pickled__": "1"},
                    "object": {"__pickled__": "2"}, "a_set": {"__pickled__": "3"},
                    "partial": {"__partial__": [{"__pickled__": "4"}, {"__tuple__": [5]}, {}]}}
    assert (tmp_path / OBJECTS_FILE).is_file()
    back = through_json(value, tmp_path, allow_pickle=True)
    assert back["lambda"](1) == 2 and back["local"](1) == 0 and back["object"](4) == 8
    assert back["a_set"] == {1, 2} and back["plain"] == 3
    assert back["partial"](3) == 15


def test_pickled_objects_are_read_only_when_trusted(tmp_path):
    data = json.loads(json.dumps(encode({"env": lambda: None}, tmp_path)))
    with pytest.raises(CheckpointError, match=f"checkpoint .*{OBJECTS_FILE} is a pickle; unpickling can run arbitrary "
                                              "code.*pass allow_pickle=True"):
        decode(data, tmp_path, allow_pickle=False)


def test_the_objects_file_is_read_once_and_only_when_needed(tmp_path, monkeypatch):
    reads = []
    original = storage.read_pickle_checkpoint

    def counted(path, trusted):
        reads.append(Path(path))
        return original(path, trusted)

    monkeypatch.setattr(storage, "read_pickle_checkpoint", counted)
    data = json.loads(json.dumps(encode([lambda: 1, lambda: 2, (3,)], tmp_path)))
    first, second, third = decode(data, tmp_path, allow_pickle=True)
    assert (first(), second(), third) == (1, 2, (3,))
    assert reads == [tmp_path / OBJECTS_FILE]
    reads.clear()
    assert decode({"__tuple__": [1]}, tmp_path, allow_pickle=False) == (1,)  # no pickled value: the file is not read
    assert reads == []


def test_a_missing_objects_file(tmp_path):
    data = encode([lambda: 1], tmp_path)
    (tmp_path / OBJECTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=f"{OBJECTS_FILE} does not exist"):
        decode(data, tmp_path, allow_pickle=True)


def test_a_truncated_objects_file(tmp_path):
    data = encode([lambda: 1], tmp_path)
    objects = tmp_path / OBJECTS_FILE
    objects.write_bytes(objects.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match=f"{OBJECTS_FILE} is truncated or corrupt"):
        decode(data, tmp_path, allow_pickle=True)


def test_an_objects_file_that_is_not_an_rlpipe_pickle(tmp_path):
    data = encode([lambda: 1], tmp_path)
    (tmp_path / OBJECTS_FILE).write_bytes(b"not a pickle at all, and longer than the header")
    with pytest.raises(CheckpointError, match=OBJECTS_FILE):
        decode(data, tmp_path, allow_pickle=True)


def test_a_mapping_that_uses_a_tag_as_a_key_survives(tmp_path):
    value = {"labels": {"__tuple__": [1, 2], "other": 3}}
    assert through_json(value, tmp_path) == value


# ---------------------------------------------------------------------------------------------- read_manager_file
def write_manager(folder: Path, record: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANAGER_FILE
    path.write_text(json.dumps(record))
    return path


def test_read_manager_file_from_the_file_or_its_folder(tmp_path):
    record = {"format": "rlpipe-manager/1", "parameters": {"n_fit": 2, "init_kwargs": encode({"k": (1, 2)}, tmp_path)}}
    path = write_manager(tmp_path / "m", record)
    assert read_manager_file(path) == (record, tmp_path / "m")
    assert read_manager_file(tmp_path / "m") == (record, tmp_path / "m")
    loaded, folder = read_manager_file(path)
    assert decode(loaded["parameters"], folder, allow_pickle=False) == {"n_fit": 2, "init_kwargs": {"k": (1, 2)}}


@pytest.mark.parametrize("make", ["missing", "empty_folder", "other_file"])
def test_read_manager_file_of_something_else(tmp_path, make):
    target = {"missing": tmp_path / "nope", "empty_folder": tmp_path, "other_file": tmp_path / "notes.txt"}[make]
    if make == "other_file":
        target.write_text("hello")
    with pytest.raises(FileNotFoundError) as error:
        read_manager_file(target)
    assert str(error.value) == (f"{target} is neither a {MANAGER_FILE}, a folder holding one, "
                                "nor a pipeline experiment folder")


def test_a_corrupt_manager_file(tmp_path):
    (tmp_path / MANAGER_FILE).write_text('{"parameters": {')
    with pytest.raises(json.JSONDecodeError):
        read_manager_file(tmp_path)


# ---------------------------------------------------------------------------------------------- pipeline folders
EVAL_KWARGS = {"n_simulations": 2, "eval_horizon": 20, "gamma": 0.9}


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory) -> tuple[Any, Path]:
    """An experiment folder as the pipeline leaves it: two fitted instances, instance 0 evaluated."""
    study = make_study(fit_budget=100, n_checkpoints=1, eval_kwargs=EVAL_KWARGS)
    paths = ExperimentPaths(tmp_path_factory.mktemp("results") / "ql")
    run = run_settings(study, "ql")
    for instance in (0, 1):
        fit_instance(fit_task(study, "ql", instance), paths.instance(instance), run)
    evaluate_instance(eval_task(study, "ql", 0), paths.instance(0).checkpoint, paths.instance(0).evaluation, run)
    return study, paths.folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "ql"))


def edit_fit_record(folder: Path, instance: int, edit) -> None:
    path = folder / "instances" / str(instance) / "fit.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def test_pipeline_record_of_a_fitted_and_evaluated_experiment(pipeline_folder):
    study, folder = pipeline_folder
    task = fit_task(study, "ql", 0)
    fit0 = json.loads((folder / "instances" / "0" / "fit.json").read_text())
    run = json.loads(run_settings(study, "ql").to_json())
    record = pipeline_record(folder)
    assert record == {
        "rlpipe_version": rlpipe.__version__,
        "unique_id": "pipeline:ql",
        "timestamp_id": fit0["finished"],
        "seed": task.root_seed,
        "parameters": {
            "agent_class": "rlpipe.agents.q_learning:QLearningAgent",  # the task records the class by its path
            "agent_name": "ql",
            "n_fit": 2,
            "train_env": "FrozenLake-v1",
            "eval_env": task.record()["eval_env"],
            "init_kwargs": {"epsilon_decay_steps": 300},
            "init_kwargs_per_instance": None,
            "fit_budget": 100,
            "fit_kwargs": {},
            "eval_kwargs": EVAL_KWARGS,
            "default_writer_kwargs": {**run["writer"], "maxlen": task.maxlen, "maxlen_by_tag": task.maxlen_by_tag},
            "n_checkpoints": None,  # Q-learning's fit is additive: its chunks are not part of the task
        },
    }
    assert run["writer"]["print_log"] is False
    assert read_manager_file(folder) == (record, folder)  # a folder without a manager file


def test_pipeline_record_of_instances_with_their_own_init_kwargs(pipeline_folder, tmp_path):
    folder = copy_of(pipeline_folder[1], tmp_path)
    edit_fit_record(folder, 1, lambda r: r["task"].update(init_kwargs={"epsilon_decay_steps": 50}))
    parameters = pipeline_record(folder)["parameters"]
    assert parameters["init_kwargs"] == {}
    assert parameters["init_kwargs_per_instance"] == [{"epsilon_decay_steps": 300}, {"epsilon_decay_steps": 50}]


def test_pipeline_record_of_a_folder_missing_an_instance(pipeline_folder, tmp_path):
    folder = copy_of(pipeline_folder[1], tmp_path)
    (folder / "instances" / "0" / "fit.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks the fit records of some instances: \[1\]"):
        pipeline_record(folder)
    with pytest.raises(FileNotFoundError, match=r"lacks the fit records of some instances: \[1\]"):
        read_manager_file(folder)


def test_pipeline_record_before_the_evaluation(pipeline_folder, tmp_path):
    folder = copy_of(pipeline_folder[1], tmp_path)
    evaluation = folder / "instances" / "0" / "evaluation.parquet"
    evaluation.unlink()
    assert pipeline_record(folder)["parameters"]["eval_kwargs"] is None
    pq.write_table(pa.table({"score": [1.0]}), evaluation)  # a table without rlpipe's metadata
    assert pipeline_record(folder)["parameters"]["eval_kwargs"] is None


def test_a_manager_file_is_preferred_to_the_fit_records(pipeline_folder, tmp_path):
    folder = copy_of(pipeline_folder[1], tmp_path)
    write_manager(folder, {"unique_id": "saved"})
    assert read_manager_file(folder) == ({"unique_id": "saved"}, folder)


def test_pipeline_record_keeps_the_configured_budget_of_an_agent_that_needs_none(pipeline_folder, tmp_path):
    """fit_budget=-1 (rlberry's "no budget") is what the task was built from; the fitted sum (0) would be another task."""
    folder = copy_of(pipeline_folder[1], tmp_path)
    def no_budget(record: dict[str, Any]) -> None:
        record["task"]["fit_budget"] = -1
        record.update(fit_budget=0, fit_calls=[-1])  # what a fit of budget -1 records: 0 fitted

    for instance in (0, 1):
        edit_fit_record(folder, instance, no_budget)
    assert pipeline_record(folder)["parameters"]["fit_budget"] == -1


def test_a_loaded_pipeline_folder_of_a_no_budget_agent_builds_the_same_fit_task(tmp_path):
    manager = ExperimentManager(NoBudgetAgent, "FrozenLake-v1", fit_budget=-1, n_fit=1, seed=1, output_dir=tmp_path,
                                default_writer_kwargs={"print_log": False})
    manager.fit()
    (manager.output_dir / MANAGER_FILE).unlink()  # read as a pipeline folder, from its fit records
    loaded = ExperimentManager.load(manager.output_dir, allow_pickle=True)
    assert loaded.fit_budget == -1
    assert (tasks.fit_task(loaded.spec, loaded.seeder.seed_seq, 0).task_hash()
            == tasks.fit_task(manager.spec, manager.seeder.seed_seq, 0).task_hash())


def test_is_manager_folder_and_fitted_instances(pipeline_folder, tmp_path):
    folder = copy_of(pipeline_folder[1], tmp_path)
    paths = ExperimentPaths(folder)
    assert storage.is_manager_folder(folder) and not storage.is_manager_folder(tmp_path)
    write_manager(tmp_path / "m", {})
    assert storage.is_manager_folder(tmp_path / "m")
    assert storage.fitted_instances(paths, 3) == [0, 1]
    paths.instance(0).fit_record.unlink()  # the writer data and the checkpoint stay: the fit record says "fitted"
    assert storage.fitted_instances(paths, 2) == [1] and not storage.is_fitted(paths.instance(0))
