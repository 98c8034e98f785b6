"""Tests of rlpipe.manager_tools: evaluate_agents, read_writer_data, plot_writer_data and MultipleManagers."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from rlpipe.agents import QLearningAgent, RandomAgent
from rlpipe.manager import ExperimentManager
from rlpipe.manager_tools import MultipleManagers, evaluate_agents, plot_writer_data, read_writer_data
from rlpipe.statistics import learning_curves

LAKE = ("FrozenLake-v1", {"is_slippery": False})
TAG = "episode_rewards"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_manager(output_dir: Path, agent: type = QLearningAgent, n_fit: int = 2, fit_budget: int = 300,
                 **kwargs) -> ExperimentManager:
    return ExperimentManager(agent, kwargs.pop("train_env", LAKE), fit_budget=fit_budget, n_fit=n_fit, seed=1,
                             output_dir=output_dir, default_writer_kwargs={"print_log": False},
                             eval_kwargs={"eval_horizon": 20}, **kwargs)


def writer_rows(manager: ExperimentManager) -> int:
    """Rows written by the manager's instances, counted file by file."""
    return sum(len(pd.read_parquet(manager.paths.instance(i).writer)) for i in range(manager.n_fit))


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExperimentManager]:
    """Three fitted managers in one output folder: two agents, the first one twice (same agent_name)."""
    root = tmp_path_factory.mktemp("study")
    managers = {"q": make_manager(root), "random": make_manager(root, RandomAgent, n_fit=1),
                "q_again": make_manager(root, init_kwargs={"learning_rate": 0.5})}
    for manager in managers.values():
        manager.fit()
    return managers


@pytest.fixture(scope="module")
def pipeline_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline-like ``results/`` folder: ``results/lake/instances/<i>/`` without any manager.json."""
    root = tmp_path_factory.mktemp("pipeline")
    manager = make_manager(root / "fit", agent_name="lake", outdir_id_style=None,
                           train_env={"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}})
    manager.fit()
    shutil.copytree(manager.output_dir / "instances", root / "results" / "lake" / "instances")
    return root / "results"


# ------------------------------------------------------------------------------- evaluate_agents
def test_evaluate_agents_random_gives_one_column_per_manager_in_order(study) -> None:
    managers = [study["random"], study["q"], study["q_again"]]
    scores = evaluate_agents(managers, n_simulations=5, plot=False, show=False)
    assert scores.shape == (5, 3)
    assert list(scores.columns) == ["Random", "QLearning", "QLearning (2)"]
    assert scores.notna().all().all()


def test_evaluate_agents_every_instance_gives_n_fit_times_n_simulations(study) -> None:
    scores = evaluate_agents([study["q"], study["q_again"]], n_simulations=3, choose_random_agents=False,
                             plot=False, show=False)
    assert scores.shape == (2 * 3, 2)
    assert scores.notna().all().all()


def test_evaluate_agents_pads_shorter_columns_with_nan(study) -> None:
    scores = evaluate_agents([study["q"], study["random"]], n_simulations=3, choose_random_agents=False,
                             plot=False, show=False)
    assert scores.shape == (6, 2)
    assert scores["QLearning"].notna().all()
    assert scores["Random"].notna().sum() == 3 and scores["Random"].iloc[3:].isna().all()


def test_evaluate_agents_draws_a_box_per_manager_into_given_axes(study) -> None:
    axes = Figure().add_subplot()
    evaluate_agents([study["q"], study["random"]], n_simulations=3, choose_random_agents=False, show=False, ax=axes)
    assert [label.get_text() for label in axes.get_xticklabels()] == ["QLearning", "Random"]
    assert axes.get_xlabel() == "agent" and axes.get_ylabel() == "evaluation output"


# ------------------------------------------------------------------------------ read_writer_data
def test_read_writer_data_of_a_manager_has_no_duplicated_rows(study) -> None:
    manager = study["q"]
    data = read_writer_data(manager)
    assert list(data.columns) == ["name", "tag", "value", "dw_time_elapsed", "global_step", "instance", "n_simu"]
    assert len(data) == writer_rows(manager)
    assert not data.duplicated().any()
    assert (data["n_simu"] == data["instance"]).all()
    assert set(data["name"]) == {"QLearning"} and sorted(data["instance"].unique()) == [0, 1]


def test_read_writer_data_of_a_list_keeps_managers_apart_and_in_order(study) -> None:
    managers = [study["random"], study["q"], study["q_again"]]
    data = read_writer_data(managers)
    assert list(pd.unique(data["name"])) == ["Random", "QLearning", "QLearning (2)"]
    assert data.groupby("name", sort=False).size().tolist() == [writer_rows(m) for m in managers]


def test_read_writer_data_from_a_manager_folder_and_its_file(study) -> None:
    manager = study["q"]
    for source in (manager.output_dir, str(manager.output_dir), manager.output_dir / "manager.json"):
        pd.testing.assert_frame_equal(read_writer_data(source), read_writer_data(manager))


def test_read_writer_data_from_a_parent_folder_reads_every_manager(study) -> None:
    parent = study["q"].output_dir.parent  # <output_dir>/manager_data
    data = read_writer_data(parent)
    assert len(data) == sum(writer_rows(m) for m in study.values())
    assert sorted(pd.unique(data["name"])) == ["QLearning", "QLearning (2)", "Random"]
    assert len(read_writer_data(parent.parent)) == len(data)  # the search goes down to the manager folders


def test_read_writer_data_from_a_pipeline_results_folder(pipeline_results) -> None:
    data = read_writer_data(pipeline_results)
    assert set(data["name"]) == {"lake"} and sorted(data["instance"].unique()) == [0, 1]
    pd.testing.assert_frame_equal(data, read_writer_data(pipeline_results / "lake"))
    loaded = ExperimentManager.load(pipeline_results / "lake")
    assert evaluate_agents([loaded], n_simulations=2, plot=False, show=False).shape == (2, 1)


def test_read_writer_data_filters_tags(study) -> None:
    manager = study["q"]
    everything = read_writer_data(manager)
    assert set(read_writer_data(manager, tag=TAG)["tag"]) == {TAG}
    assert len(read_writer_data(manager, tag=TAG)) == (everything["tag"] == TAG).sum()
    assert len(read_writer_data(manager, tag=[TAG, "episode_length"])) == len(everything)
    assert read_writer_data(manager, tag="no such tag").empty


def test_read_writer_data_preprocesses_each_instance_and_tag_in_step_order(study) -> None:
    raw = study["q"].get_writer_data()
    data = read_writer_data(study["q"], preprocess_func=np.cumsum)
    assert len(data) == len(raw)
    for (instance, tag), rows in raw.groupby(["instance", "tag"]):
        expected = np.cumsum(rows.sort_values("global_step", kind="stable")["value"].to_numpy())
        got = data[(data["instance"] == instance) & (data["tag"] == tag)].sort_values("global_step", kind="stable")
        np.testing.assert_allclose(got["value"].to_numpy(), expected)


def test_read_writer_data_rejects_bad_sources(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        read_writer_data(tmp_path)  # no manager in it
    with pytest.raises(FileNotFoundError):
        read_writer_data(tmp_path / "missing")
    with pytest.raises(TypeError):
        read_writer_data(3)


# ------------------------------------------------------------------------------ plot_writer_data
@pytest.mark.parametrize("representation", ["ci", "pi", "raw_curves"])
def test_plot_writer_data_returns_the_curves_and_saves_a_png(study, tmp_path, representation) -> None:
    path = tmp_path / f"{representation}.png"
    axes = Figure().add_subplot()
    curves = plot_writer_data([study["q"], study["q_again"]], TAG, error_representation=representation, n_points=50,
                              savefig_fname=path, show=False, ax=axes)
    assert list(curves.columns) == ["name", "tag", "instance", "n_simu", "global_step", "value"]
    assert len(curves) == 2 * 2 * 50  # managers x instances x grid points
    assert curves.groupby("name", sort=False).size().to_dict() == {"QLearning": 100, "QLearning (2)": 100}
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["QLearning", "QLearning (2)"]
    assert axes.get_title() == TAG and axes.get_ylabel() == TAG and axes.get_xlabel() == "global_step"


def test_plot_writer_data_smooths_with_a_trailing_window(study) -> None:
    curves = plot_writer_data(study["q"], TAG, smooth=True, smoothing_window=3, n_points=40, show=False)
    expected = learning_curves(study["q"].get_writer_data(), TAG, n_points=40, smoothing_window=3)
    np.testing.assert_allclose(curves["value"].to_numpy(), expected["value"].to_numpy())
    default = plot_writer_data(study["q"], TAG, smooth=True, n_points=40, show=False)
    assert len(default) == len(curves)


def test_plot_writer_data_labels_preprocessed_values_and_time_axis(study) -> None:
    # One instance: the wall-clock ranges of several millisecond-long fits need not overlap.
    axes = Figure().add_subplot()
    curves = plot_writer_data(study["random"], TAG, xtag="dw_time_elapsed", preprocess_func=np.cumsum, show=False, ax=axes)
    assert "dw_time_elapsed" in curves.columns
    assert axes.get_ylabel() == "value" and axes.get_xlabel() == "dw_time_elapsed"


@pytest.mark.parametrize("representation", ["ci", "pi", "raw_curves"])
def test_plot_writer_data_of_a_single_instance_has_no_nan(study, representation) -> None:
    axes = Figure().add_subplot()
    curves = plot_writer_data(study["random"], TAG, error_representation=representation, n_points=30, show=False,
                              ax=axes)
    assert len(curves) == 30 and curves["value"].notna().all()
    for line in axes.get_lines():
        assert np.isfinite(line.get_ydata()).all()
    for band in (artist for artist in axes.collections if isinstance(artist, PolyCollection)):
        assert np.isfinite(band.get_paths()[0].vertices).all()


def test_plot_writer_data_rejects_an_unknown_error_representation(study) -> None:
    with pytest.raises(ValueError, match="raw_curves"):
        plot_writer_data(study["q"], TAG, error_representation="cb", show=False)


def test_plot_writer_data_without_data_warns_and_returns_none(study) -> None:
    with pytest.warns(UserWarning, match="No data to be plotted"):
        assert plot_writer_data(study["q"], "no such tag", show=False) is None


def test_figures_are_built_without_pyplot_unless_shown(study, tmp_path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from rlpipe.manager_tools import evaluate_agents, plot_writer_data, read_writer_data
        from rlpipe.manager import ExperimentManager
        manager = ExperimentManager.load({str(study["q"].output_dir)!r})
        evaluate_agents([manager], n_simulations=2, show=False)
        plot_writer_data(manager, {TAG!r}, show=False, savefig_fname={str(tmp_path / "f.png")!r})
        assert "matplotlib.pyplot" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True)


# ------------------------------------------------------------------------------ MultipleManagers
@pytest.mark.parametrize(("parallelization", "mp_context"), [("thread", "spawn"), ("process", "fork")])
def test_multiple_managers_fits_all_and_keeps_the_appended_order(tmp_path, parallelization, mp_context) -> None:
    budgets = [10000, 300, 100]  # the first one finishes last
    managers = [make_manager(tmp_path, fit_budget=budget, agent_name=f"q{k}") for k, budget in enumerate(budgets)]
    multiple = MultipleManagers(max_workers=3, parallelization=parallelization, mp_context=mp_context)
    for manager in managers:
        multiple.append(manager)
    multiple.run()
    assert all(got is want for got, want in zip(multiple.managers, managers, strict=True))
    for manager, budget in zip(multiple.managers, budgets):
        assert all(manager.paths.instance(i).checkpoint.is_file() for i in range(manager.n_fit))
        assert [agent.total_env_steps for agent in manager.get_agent_instances()] == [budget] * manager.n_fit
        assert (manager.output_dir / "manager.json").is_file()
    assert multiple.save() == [m.output_dir / "manager.json" for m in managers]


def test_multiple_managers_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        MultipleManagers(parallelization="cluster")
    with pytest.raises(ValueError):
        MultipleManagers(mp_context="threads")
    with pytest.raises(TypeError):
        MultipleManagers().append("not a manager")
