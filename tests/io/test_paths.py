"""rlpipe.io.paths: the results layout under one root, the same for the Snakemake rules (as wildcard patterns) and
ExperimentManager, and ``ExperimentPaths.written`` covering everything an experiment's stages write."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rlpipe.io.paths import DEFAULT_ROOT, ExperimentPaths, InstancePaths, OptimizePaths, StudyPaths


def _path_properties(obj) -> dict[str, Path]:
    """Every property of ``obj`` that is a Path (or a paths object, by its folder)."""
    found = {}
    for name, member in vars(type(obj)).items():
        if isinstance(member, property):
            value = getattr(obj, name)
            found[name] = value.folder if dataclasses.is_dataclass(value) else value
    return found


def test_the_default_root_is_results_relative_to_the_working_folder():
    assert DEFAULT_ROOT == "results" and StudyPaths().root == Path("results")


def test_the_layout_of_a_study():
    study = StudyPaths(Path("out"))
    assert study.summary_csv == Path("out/summary.csv") and study.summary_md == Path("out/summary.md")
    assert study.comparison_plot == Path("out/comparison.png") and study.compare_log == Path("out/compare.log")
    assert study.experiment("dqn") == ExperimentPaths(Path("out/dqn"))


def test_the_layout_of_an_experiment():
    experiment = ExperimentPaths(Path("out/dqn"))
    assert _path_properties(experiment) == {
        "writer_data": Path("out/dqn/writer_data.parquet"), "evaluation": Path("out/dqn/evaluation.parquet"),
        "summary": Path("out/dqn/summary.json"), "learning_curve_plot": Path("out/dqn/learning_curve.png"),
        "evaluation_plot": Path("out/dqn/evaluation.png"), "aggregate_log": Path("out/dqn/aggregate.log"),
        "optimize": Path("out/dqn/optimize"), "tensorboard": Path("out/dqn/tensorboard"),
    }
    assert experiment.instance(3) == experiment.instance("3") == InstancePaths(Path("out/dqn/instances/3"))


def test_the_layout_of_an_instance():
    instance = InstancePaths(Path("i"))
    assert _path_properties(instance) == {
        "checkpoint": Path("i/agent.ckpt"), "writer": Path("i/writer.parquet"), "fit_record": Path("i/fit.json"),
        "fit_log": Path("i/fit.log"), "evaluation": Path("i/evaluation.parquet"),
        "evaluation_log": Path("i/evaluate.log"), "progress": Path("i/progress"),
    }


def test_the_layout_of_a_hyperparameter_study():
    optimize = OptimizePaths(Path("o"))
    assert _path_properties(optimize) == {
        "journal": Path("o/journal.log"), "study_lock": Path("o/study.lock"),
        "best_init_kwargs": Path("o/best_init_kwargs.yaml"), "trials": Path("o/trials.parquet"),
        "history_plot": Path("o/history.png"), "importance_plot": Path("o/importance.png"),
        "select_log": Path("o/select.log"), "confirmation": Path("o/confirmation.csv"),
        "selection": Path("o/selection.json"),
    }
    assert optimize.confirm_record("current") == Path("o/confirm/current.json")
    assert optimize.confirm_log(0) == Path("o/confirm/0.log") and optimize.confirm_folder(1) == Path("o/confirm/work/1")
    assert optimize.running_lock("s", 4) == Path("o/running/s/4.lock")
    assert optimize.trial_folder("s", 4) == Path("o/trials/s/4")
    assert optimize.worker_record(2) == Path("o/workers/2.json") and optimize.worker_log("2") == Path("o/workers/2.log")


def test_wildcards_pass_through_as_snakemake_patterns():
    experiment = StudyPaths().experiment("{experiment}")
    assert str(experiment.instance("{instance}").checkpoint) == "results/{experiment}/instances/{instance}/agent.ckpt"
    assert str(experiment.summary) == "results/{experiment}/summary.json"
    assert str(experiment.optimize.worker_record("{worker}")) == "results/{experiment}/optimize/workers/{worker}.json"


def test_written_holds_every_output_of_an_experiment_and_nothing_outside_it():
    experiment = ExperimentPaths(Path("out/dqn"))
    written = experiment.written()
    assert len(written) == len(set(written))
    assert set(written) == set(_path_properties(experiment).values()) | {Path("out/dqn/instances"), Path("out/dqn/batches")}
    assert all(path.parent == experiment.folder for path in written)
    assert experiment.instance(0).folder.is_relative_to(Path("out/dqn/instances"))


def test_the_files_of_an_instance_and_of_a_study_do_not_collide():
    study = StudyPaths(Path("r"))
    experiment = study.experiment("e")
    everything = [*_path_properties(study).values(), *_path_properties(experiment).values(),
                  *_path_properties(experiment.instance(0)).values(), *_path_properties(experiment.optimize).values()]
    assert len(everything) == len(set(everything))


@pytest.mark.parametrize("paths", [StudyPaths(), ExperimentPaths(Path("e")), InstancePaths(Path("i")),
                                   OptimizePaths(Path("o"))])
def test_paths_objects_are_frozen_and_hashable(paths):
    field = dataclasses.fields(paths)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(paths, field, Path("elsewhere"))
    assert {paths: 1}[type(paths)(getattr(paths, field))] == 1
