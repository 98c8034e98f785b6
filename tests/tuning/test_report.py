"""rlpipe.tuning.report: the files a study leaves behind (best_init_kwargs.yaml, trials.parquet, plots), the
trials table Parquet can hold, and the parameter importances."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from rlpipe.errors import OptimizationError
from rlpipe.io.paths import OptimizePaths
from rlpipe.tuning import report
from rlpipe.tuning.report import best_init_kwargs_text, parameter_importances, trials_table, write_study_outputs
from rlpipe.tuning.study import open_study, run_worker

from helpers_configs import peak_task, run

# ---------------------------------------------------------------------------------------------- in-memory studies
X = FloatDistribution(0.0, 1.0)
COMPLETE, FAIL = TrialState.COMPLETE, TrialState.FAIL


def study_of(*trials: tuple[dict[str, Any], float | None, dict[str, Any]]) -> optuna.Study:
    """A study holding ``(params, value, user_attrs)`` trials (failed when the value is None); floats in [0, 1],
    strings from a categorical choice of 'low', 'high'."""
    study = optuna.create_study(direction="maximize")
    for params, value, user_attrs in trials:
        distributions = {name: CategoricalDistribution(["low", "high"]) if isinstance(v, str) else X
                         for name, v in params.items()}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value,
                                                  state=FAIL if value is None else COMPLETE, user_attrs=user_attrs))
    return study


def sloped_study(n: int = 20) -> optuna.Study:
    """``x`` decides the score, ``y`` is noise."""
    noise = np.random.default_rng(0).uniform(size=n)
    return study_of(*[({"x": float(x), "y": float(y)}, -(float(x) - 0.3) ** 2, {})
                      for x, y in zip(np.linspace(0.0, 1.0, n), noise)])


# ---------------------------------------------------------------------------------------------- trials table
def test_categorical_choices_of_mixed_types_are_stored_as_json_text(tmp_path) -> None:
    study = optuna.create_study(direction="maximize")
    distribution = optuna.distributions.CategoricalDistribution(["auto", 0.5])
    for choice, value in (("auto", 1.0), (0.5, 2.0)):
        study.add_trial(optuna.trial.create_trial(params={"clip": choice}, distributions={"clip": distribution},
                                                  value=value, user_attrs={"init_kwargs": {"clip": choice}}))
    path = tmp_path / "trials.parquet"
    trials_table(study).to_parquet(path)
    table = pd.read_parquet(path)
    assert [json.loads(v) for v in table["params_clip"]] == ["auto", 0.5]
    assert [json.loads(v) for v in table["user_attrs_init_kwargs"]] == [{"clip": "auto"}, {"clip": 0.5}]


def test_trials_table_columns_and_values() -> None:
    study = study_of(({"x": 0.25, "level": "high"}, 1.5, {"init_kwargs": {"x": 0.25, "level": "high"}}),
                     ({"x": 0.75}, None, {"error": "ValueError: boom"}))
    table = trials_table(study)
    assert {"number", "value", "state", "params_x", "params_level", "user_attrs_init_kwargs", "user_attrs_error",
            "datetime_start", "datetime_complete", "duration"} == set(table.columns)
    assert table["number"].tolist() == [0, 1] and table["state"].tolist() == ["COMPLETE", "FAIL"]
    assert table["value"].iloc[0] == 1.5 and np.isnan(table["value"].iloc[1])
    assert table["params_x"].tolist() == [0.25, 0.75] and table["params_x"].dtype == float  # numbers stay numbers
    assert table["params_level"].iloc[0] == "high" and pd.isna(table["params_level"].iloc[1])  # strings stay strings
    assert table["user_attrs_init_kwargs"].iloc[0] == '{"level": "high", "x": 0.25}'  # JSON text, keys sorted
    assert pd.isna(table["user_attrs_init_kwargs"].iloc[1])  # a missing value is not written as JSON
    assert table["user_attrs_error"].tolist()[1] == "ValueError: boom"


@pytest.mark.parametrize(("values", "as_json"), [
    ([1, 2.5], False),  # ints and floats share a Parquet column
    (["a", "b"], False),
    ([{"a": 1}, {"a": 2}], True),
    ([[1, 2], [3]], True),
    (["auto", 0.5], True),
    ([True, 3], True),  # a bool is not a number here
])
def test_user_attributes_that_parquet_cannot_hold_become_json(tmp_path, values: list[Any], as_json: bool) -> None:
    study = study_of(*[({"x": 0.5}, 1.0, {"attr": value}) for value in values])
    table = trials_table(study)
    stored = table["user_attrs_attr"].tolist()
    assert stored == ([json.dumps(v, sort_keys=True) for v in values] if as_json else values)
    table.to_parquet(tmp_path / "trials.parquet")  # and Parquet holds the table


# ---------------------------------------------------------------------------------------------- importances
def test_parameter_importances(tmp_path) -> None:
    task = peak_task(n_trials=1)
    _, study = run(task, tmp_path / "one")
    assert parameter_importances(study, study.get_trials()) == {}  # one completed trial
    task = peak_task(n_trials=3, init_kwargs={"fail_above": -2.0})
    with pytest.raises(OptimizationError):
        run_worker(task, OptimizePaths(tmp_path / "failed"))
    study = open_study(task, OptimizePaths(tmp_path / "failed"))
    assert parameter_importances(study, study.get_trials()) == {}  # no completed trial
    _, study = run(peak_task(n_trials=16), tmp_path / "many")
    importances = parameter_importances(study, study.get_trials())
    assert set(importances) == {"x", "level"}
    assert all(value >= 0 for value in importances.values()) and sum(importances.values()) == pytest.approx(1.0)


def test_importances_need_two_completed_trials_with_parameters() -> None:
    one = study_of(({"x": 0.1}, 1.0, {}), ({"x": 0.9}, None, {}), ({"x": 0.5}, None, {}))
    assert parameter_importances(one, one.get_trials()) == {}  # failed trials do not count
    no_parameters = study_of(({}, 1.0, {}), ({}, 2.0, {}))
    assert parameter_importances(no_parameters, no_parameters.get_trials()) == {}


def test_importances_rank_the_parameter_that_decides_the_score_first() -> None:
    study = sloped_study()
    importances = parameter_importances(study, study.get_trials())
    assert list(importances) == ["x", "y"] and importances["x"] > 0.8
    assert all(type(value) is float for value in importances.values()) and sum(importances.values()) == pytest.approx(1.0)
    assert parameter_importances(study, study.get_trials()) == importances  # deterministic


def test_importances_are_empty_when_no_parameter_varies() -> None:
    study = study_of(*[({"x": 0.5}, value, {}) for value in (1.0, 2.0, 3.0)])
    assert parameter_importances(study, study.get_trials()) == {}


# ---------------------------------------------------------------------------------------------- best init kwargs and outputs
RECORD = {"experiment": "peak", "init_kwargs": {"x": 0.3, "level": "high"}, "best_trial": 7,
          "best_value": 1.4999871234, "trials": {"complete": 7, "fail": 1}, "first_error": None,
          "root_seed": {"entropy": 3, "spawn_key": []}, "study": "peak-abc", "storage": "journal.log",
          "versions": {"rlpipe": "0"}, "git": {"commit": "0" * 40, "dirty": False}}


def test_best_init_kwargs_text() -> None:
    text = best_init_kwargs_text({**RECORD, "path": Path("results/peak")})
    assert text.splitlines()[:2] == [
        "# Best init_kwargs of 'peak' (trial 7, score 1.49999),",
        "# written by rlpipe's optimize stage; the `optimize` target copies init_kwargs into the config.",
    ]
    read = yaml.safe_load(text)
    assert read == {**RECORD, "path": "results/peak"}  # what JSON cannot hold is written as text
    assert list(read) == [*RECORD, "path"]  # in the record's order


def test_write_study_outputs(tmp_path, monkeypatch) -> None:
    written: list[str] = []

    def recording(original: Any, path_index: int) -> Any:
        def write(*args: Any, **kwargs: Any) -> None:
            written.append(Path(args[path_index]).name)
            original(*args, **kwargs)
        return write

    for name, path_index in (("write_parquet", 0), ("save_figure", 1), ("write_text", 0)):
        monkeypatch.setattr(report, name, recording(getattr(report, name), path_index))
    study = sloped_study(8)
    paths = OptimizePaths(tmp_path / "optimize")
    paths.folder.mkdir(parents=True)
    write_study_outputs(study, study.get_trials(), {**RECORD, "extra": 1}, paths)
    assert written[-1] == "best_init_kwargs.yaml"  # last: it marks the study as summarized
    assert sorted(written) == ["best_init_kwargs.yaml", "history.png", "importance.png", "trials.parquet"]
    table = pq.read_table(paths.trials)
    assert json.loads(table.schema.metadata[b"rlpipe"]) == {  # only what identifies the study
        "experiment": "peak", "study": "peak-abc", "root_seed": {"entropy": 3, "spawn_key": []}, "versions": {"rlpipe": "0"},
        "git": {"commit": "0" * 40, "dirty": False}}
    assert table.column("number").to_pylist() == list(range(8))
    assert table.column("params_x").to_pylist() == [t.params["x"] for t in study.get_trials()]
    for plot in (paths.history_plot, paths.importance_plot):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = yaml.safe_load(paths.best_init_kwargs.read_text())
    assert best == {**RECORD, "extra": 1, "importances": parameter_importances(study, study.get_trials())}
