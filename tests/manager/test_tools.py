"""Tests of rlpipe.manager.tools: evaluate_agents, read_writer_data, the curve plots and MultipleManagers."""
from __future__ import annotations

import contextlib
import inspect
import json
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rlpipe.agents import QLearningAgent, RandomAgent
from rlpipe.core import curves
from rlpipe.errors import ConfigError
from rlpipe.manager import tools as manager_tools
from rlpipe.manager.experiment_manager import ExperimentManager
from rlpipe.manager.tools import (
    MultipleManagers,
    evaluate_agents,
    plot_smoothed_curves,
    plot_synchronized_curves,
    plot_writer_data,
    read_writer_data,
)

LAKE = ("FrozenLake-v1", {"is_slippery": False})
TAG = "episode_rewards"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WRITER_COLUMNS = ["name", "tag", "value", "dw_time_elapsed", "global_step", "instance", "n_simu"]
Z90 = NormalDist().inv_cdf(0.95)
REQUIRED = inspect.Parameter.empty


def make_manager(output_dir: Path, agent: type = QLearningAgent, n_fit: int = 2, fit_budget: int = 300,
                 **kwargs) -> ExperimentManager:
    return ExperimentManager(agent, kwargs.pop("train_env", LAKE), fit_budget=fit_budget, n_fit=n_fit, seed=1,
                             output_dir=output_dir, default_writer_kwargs={"print_log": False},
                             eval_kwargs={"eval_horizon": 20}, **kwargs)


def writer_rows(manager: ExperimentManager) -> int:
    """Rows written by the manager's instances, counted file by file."""
    return sum(len(pd.read_parquet(manager.paths.instance(i).writer)) for i in range(manager.n_fit))


def band(ax: Axes, k: int = 0) -> pd.DataFrame:
    """Lower (``min``) and upper (``max``) edge of the k-th filled band, indexed by x."""
    vertices = ax.collections[k].get_paths()[0].vertices
    return pd.DataFrame(vertices, columns=["x", "y"]).groupby("x")["y"].agg(["min", "max"])


def new_axes() -> Axes:
    return Figure().add_subplot()


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
def long_run(tmp_path_factory: pytest.TempPathFactory) -> ExperimentManager:
    """One instance that logs more than 1000 episodes, to exercise sub-sampling."""
    manager = make_manager(tmp_path_factory.mktemp("long"), RandomAgent, n_fit=1, fit_budget=9000)
    manager.fit()
    return manager


@pytest.fixture(scope="module")
def pipeline_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline-like ``results/`` folder: ``results/lake/instances/<i>/`` without any manager.json."""
    root = tmp_path_factory.mktemp("pipeline")
    manager = make_manager(root / "fit", agent_name="lake", outdir_id_style=None,
                           train_env={"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}})
    manager.fit()
    shutil.copytree(manager.output_dir / "instances", root / "results" / "lake" / "instances")
    return root / "results"


def shifted_runs(name: str = "a", scale: float = 1.0, n_x: int = 5) -> pd.DataFrame:
    """Three runs y = x + scale·c, c in (-1, 0, 1): mean x and sd exactly ``scale`` at every x."""
    x = np.arange(float(n_x))
    return pd.concat([pd.DataFrame({"name": name, "n_simu": simu, "x": x, "y": x + scale * shift})
                      for simu, shift in enumerate((-1.0, 0.0, 1.0))], ignore_index=True)


def noisy_runs(n_runs: int = 30, n_x: int = 40) -> pd.DataFrame:
    """Many runs with independent noise at every x, where a simultaneous band must beat a pointwise one."""
    values = np.random.default_rng(11).normal(size=(n_runs, n_x))
    return pd.DataFrame({"name": "a", "n_simu": np.repeat(np.arange(n_runs), n_x),
                         "x": np.tile(np.arange(float(n_x)), n_runs), "y": values.ravel()})


# ------------------------------------------------------------------------------------- signatures
RLBERRY_SIGNATURES = {
    evaluate_agents: [("experiment_manager_list", REQUIRED), ("n_simulations", 5), ("choose_random_agents", True),
                      ("fignum", None), ("show", True), ("plot", True)],
    read_writer_data: [("data_source", REQUIRED), ("tag", None), ("preprocess_func", None), ("id_agent", None)],
    plot_writer_data: [("data_source", REQUIRED), ("tag", REQUIRED), ("xtag", None), ("smooth", False),
                       ("smoothing_bandwidth", None), ("id_agent", None), ("ax", None), ("error_representation", "ci"),
                       ("n_boot", 500), ("level", 0.9), ("sub_sample", True), ("show", True),
                       ("preprocess_func", None), ("title", None), ("savefig_fname", None), ("linestyles", False)],
    plot_smoothed_curves: [("data", REQUIRED), ("x", REQUIRED), ("y", REQUIRED), ("smoothing_bandwidth", None),
                           ("ax", None), ("error_representation", "ci"), ("n_boot", 2500), ("level", 0.9),
                           ("show", True), ("savefig_fname", None), ("linestyles", False)],
    plot_synchronized_curves: [("data", REQUIRED), ("x", REQUIRED), ("y", REQUIRED), ("ax", None),
                               ("error_representation", "pi"), ("level", 0.9), ("show", True),
                               ("savefig_fname", None), ("linestyles", False)],
}


@pytest.mark.parametrize("function", list(RLBERRY_SIGNATURES), ids=lambda f: f.__name__)
def test_signature_is_rlberry_0_7_3s_with_extras_only_keyword_only(function) -> None:
    parameters = list(inspect.signature(function).parameters.values())
    expected = RLBERRY_SIGNATURES[function]
    assert [(p.name, p.default) for p in parameters[:len(expected)]] == expected
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters[:len(expected)])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[len(expected):])


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
    axes = new_axes()
    evaluate_agents([study["q"], study["random"]], n_simulations=3, choose_random_agents=False, show=False, ax=axes)
    assert [label.get_text() for label in axes.get_xticklabels()] == ["QLearning", "Random"]
    assert axes.get_xlabel() == "agent" and axes.get_ylabel() == "evaluation output"


def test_evaluate_agents_draws_into_the_pyplot_figure_fignum(study) -> None:
    import matplotlib.pyplot as plt

    try:
        evaluate_agents([study["q"], study["random"]], 2, True, "scores", False)
        assert plt.fignum_exists("scores")
        labels = [label.get_text() for label in plt.figure("scores").gca().get_xticklabels()]
        assert labels == ["QLearning", "Random"]
    finally:
        plt.close("scores")
    with pytest.raises(ValueError, match="not both"):
        evaluate_agents([study["q"]], 2, fignum=1, show=False, ax=new_axes())


# ------------------------------------------------------------------------------ read_writer_data
def test_read_writer_data_of_a_manager_has_no_duplicated_rows(study) -> None:
    manager = study["q"]
    data = read_writer_data(manager)
    assert list(data.columns) == WRITER_COLUMNS
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


def test_read_writer_data_from_a_path_needs_no_pickle_and_no_agent_package(tmp_path, pipeline_results) -> None:
    """A path is read from its files: a manager whose parameters are pickled (a lambda env) needs no allow_pickle,
    and a pipeline folder needs no import of its agent class."""
    import gymnasium

    manager = make_manager(tmp_path / "lambda", n_fit=2, fit_budget=100, agent_name="lambda_env",
                           train_env=(lambda: gymnasium.make("FrozenLake-v1", is_slippery=False), {}))
    manager.fit()
    assert (manager.output_dir / "manager_objects.pkl").is_file()
    pd.testing.assert_frame_equal(read_writer_data(manager.output_dir), read_writer_data(manager))
    assert plot_writer_data(manager.output_dir, TAG, smooth=True, show=False) is not None

    folder = Path(shutil.copytree(pipeline_results / "lake", tmp_path / "results" / "lake"))
    for record_path in folder.glob("instances/*/fit.json"):
        record = json.loads(record_path.read_text())
        record["task"]["agent"] = "not_installed_package.agents:GoneAgent"
        record_path.write_text(json.dumps(record))
    pd.testing.assert_frame_equal(read_writer_data(folder), read_writer_data(pipeline_results / "lake"))
    assert read_writer_data(folder, id_agent=1)["instance"].unique().tolist() == [1]


def test_read_writer_data_skips_cleared_instances(tmp_path) -> None:
    manager = make_manager(tmp_path, n_fit=2, fit_budget=100)
    manager.fit()
    manager.clear_handlers()
    assert read_writer_data(manager).empty and read_writer_data(manager.output_dir).empty


def test_read_writer_data_filters_tags(study) -> None:
    manager = study["q"]
    everything = read_writer_data(manager)
    assert set(read_writer_data(manager, tag=TAG)["tag"]) == {TAG}
    assert len(read_writer_data(manager, tag=TAG)) == (everything["tag"] == TAG).sum()
    assert len(read_writer_data(manager, tag=[TAG, "episode_length"])) == len(everything)
    assert read_writer_data(manager, tag="no such tag").empty


def test_read_writer_data_id_agent_keeps_one_instance(study) -> None:
    everything = read_writer_data(study["q"])
    one = read_writer_data(study["q"], id_agent=1)
    assert set(one["instance"]) == {1} and set(one["n_simu"]) == {1}
    pd.testing.assert_frame_equal(one, everything[everything["instance"] == 1].reset_index(drop=True))
    with pytest.raises(ValueError, match="n_fit=2"):
        read_writer_data(study["q"], id_agent=2)


def expected_cumsum(manager: ExperimentManager, instance: int, tag: str) -> np.ndarray:
    rows = manager.get_writer_data()[instance]
    return np.cumsum(rows[rows["tag"] == tag].sort_values("global_step", kind="stable")["value"].to_numpy())


def sorted_values(data: pd.DataFrame, instance: int, tag: str) -> np.ndarray:
    rows = data[(data["instance"] == instance) & (data["tag"] == tag)]
    return rows.sort_values("global_step", kind="stable")["value"].to_numpy()


def test_read_writer_data_preprocesses_each_instance_and_tag_in_step_order(study) -> None:
    manager = study["q"]
    data = read_writer_data(manager, preprocess_func=np.cumsum)
    assert len(data) == writer_rows(manager)
    for instance in (0, 1):
        for tag in (TAG, "episode_length"):
            np.testing.assert_allclose(sorted_values(data, instance, tag), expected_cumsum(manager, instance, tag))


def test_read_writer_data_pairs_a_list_of_tags_with_a_list_of_functions(study) -> None:
    manager = study["q"]
    raw = read_writer_data(manager)
    data = read_writer_data(manager, tag=[TAG, "episode_length"], preprocess_func=[np.cumsum, None])
    for instance in (0, 1):
        np.testing.assert_allclose(sorted_values(data, instance, TAG), expected_cumsum(manager, instance, TAG))
        np.testing.assert_array_equal(sorted_values(data, instance, "episode_length"),
                                      sorted_values(raw, instance, "episode_length"))
    negated = read_writer_data(manager, tag=[TAG, "episode_length"], preprocess_func=np.negative)
    np.testing.assert_array_equal(negated["value"].to_numpy(), -raw["value"].to_numpy())
    with pytest.raises(ValueError, match="one per tag"):
        read_writer_data(manager, tag=[TAG, "episode_length"], preprocess_func=[np.cumsum])


def test_read_writer_data_rejects_bad_sources(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        read_writer_data(tmp_path)  # no manager in it
    with pytest.raises(FileNotFoundError):
        read_writer_data(tmp_path / "missing")
    with pytest.raises(TypeError):
        read_writer_data(3)


# ------------------------------------------------------------- plot_synchronized_curves / smoothed
@pytest.mark.parametrize(("representation", "z_factor"), [("ci", Z90 / math.sqrt(3.0)), ("pi", Z90)])
def test_synchronized_bands_are_z_sd_over_root_n_and_z_sd(representation, z_factor) -> None:
    ax = new_axes()
    data = pd.concat([shifted_runs("a"), shifted_runs("b", scale=2.0)], ignore_index=True)
    plotted = plot_synchronized_curves(data, "x", "y", ax, representation, show=False)
    pd.testing.assert_frame_equal(plotted, data)
    for k, sd in enumerate((1.0, 2.0)):  # n = 3 runs: rlberry would divide by sqrt(2)
        edges = band(ax, k)
        np.testing.assert_allclose(edges.index, np.arange(5.0))
        np.testing.assert_allclose(edges["min"], np.arange(5.0) - z_factor * sd)
        np.testing.assert_allclose(edges["max"], np.arange(5.0) + z_factor * sd)
        np.testing.assert_allclose(ax.lines[k].get_ydata(), np.arange(5.0))
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b"]
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"


@pytest.mark.parametrize(("representation", "z_factor"), [("ci", Z90 / math.sqrt(3.0)), ("pi", Z90)])
def test_smoothed_bands_are_z_sd_over_root_n_and_z_sd(representation, z_factor) -> None:
    ax = new_axes()
    plot_smoothed_curves(shifted_runs(), "x", "y", 1.0, ax, representation, show=False)
    grid = np.linspace(0.0, 4.0, curves.GRID_POINTS)
    mean = curves.kernel_smooth(np.arange(5.0), np.arange(5.0), grid, 1.0)  # shifts smooth to shifts: sd stays 1
    np.testing.assert_allclose(ax.lines[0].get_xdata(), grid)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
    edges = band(ax)
    np.testing.assert_allclose(edges["min"], mean - z_factor, rtol=1e-9)
    np.testing.assert_allclose(edges["max"], mean + z_factor, rtol=1e-9)


@pytest.mark.parametrize("plot", [plot_synchronized_curves, plot_smoothed_curves])
def test_raw_curves_draw_the_mean_and_one_line_per_run(plot) -> None:
    ax = new_axes()
    data = shifted_runs()
    plot(data, "x", "y", ax=ax, error_representation="raw_curves", show=False)
    assert len(ax.lines) == 1 + 3 and not ax.collections
    for line, (_, run) in zip(ax.lines[1:], data.groupby("n_simu"), strict=True):  # the last run too (rlberry skips it)
        np.testing.assert_array_equal(line.get_xdata(), run["x"])
        np.testing.assert_array_equal(line.get_ydata(), run["y"])


@pytest.mark.parametrize("smooth", [False, True])
def test_cb_is_reproducible_and_at_least_as_wide_as_ci_with_many_runs(smooth) -> None:
    def draw(representation: str) -> pd.DataFrame:
        ax = new_axes()
        if smooth:
            plot_smoothed_curves(noisy_runs(), "x", "y", 0.5, ax, representation, 500, show=False)
        else:
            plot_synchronized_curves(noisy_runs(), "x", "y", ax, representation, show=False, n_boot=500)
        return band(ax)

    cb, ci = draw("cb"), draw("ci")
    pd.testing.assert_frame_equal(cb, draw("cb"))
    assert (cb["max"] - cb["min"] >= ci["max"] - ci["min"]).all()
    assert ((cb["max"] - cb["min"]) > 1.5 * (ci["max"] - ci["min"])).mean() > 0.9


@pytest.mark.parametrize("plot", [plot_synchronized_curves, plot_smoothed_curves])
def test_one_run_of_three_rows_collapses_the_band_and_saves_a_png(plot, tmp_path) -> None:
    # rlberry's test_without_rlberry: a plain DataFrame with a single run.
    data = pd.DataFrame({"name": ["a", "a", "a"], "x": [1, 2, 3], "y": [3, 4, 5], "n_simu": [0, 0, 0]})
    ax = new_axes()
    plot(data, "x", "y", ax=ax, show=False, savefig_fname=tmp_path / "one.png")
    assert (tmp_path / "one.png").read_bytes()[:8] == PNG_MAGIC
    edges = band(ax)
    assert np.isfinite(edges.to_numpy()).all()
    np.testing.assert_array_equal(edges["min"], edges["max"])
    mean_x = ax.lines[0].get_xdata()
    # Heuristic bandwidths run from the gap between x values (1) up to a tenth of the range, at least that gap.
    expected = (curves.kernel_smooth(np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0, 5.0]), mean_x, 1.0)
                if plot is plot_smoothed_curves else [3.0, 4.0, 5.0])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), expected)


def test_linestyles_give_each_name_its_own_dash_pattern() -> None:
    data = pd.concat([shifted_runs(name) for name in "dcba"], ignore_index=True)
    ax = new_axes()
    plot_synchronized_curves(data, "x", "y", ax, linestyles=True, show=False)
    patterns = [line._unscaled_dash_pattern for line in ax.lines]  # no public getter for the dash pattern
    assert patterns == [(0, None), (0, (1, 1)), (0, (5, 5)), (0, (1, 5, 3, 5))]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["d", "c", "b", "a"]  # order kept
    ax = new_axes()
    plot_synchronized_curves(data, "x", "y", ax, show=False)
    assert {line._unscaled_dash_pattern for line in ax.lines} == {(0, None)}


def test_synchronized_curves_keep_only_shared_x_values() -> None:
    data = shifted_runs()
    data = data[~((data["n_simu"] == 2) & (data["x"] == 4.0))]  # the last run misses x = 4
    with pytest.warns(UserWarning, match="truncating"):
        plotted = plot_synchronized_curves(data, "x", "y", show=False)
    assert sorted(plotted["x"].unique()) == [0.0, 1.0, 2.0, 3.0] and len(plotted) == 12


@pytest.mark.parametrize("plot", [plot_synchronized_curves, plot_smoothed_curves])
def test_unknown_error_representation_is_rejected_with_rlberrys_message(plot) -> None:
    with pytest.raises(ValueError, match="error_representation not implemented"):
        plot(shifted_runs(), "x", "y", error_representation="does_not_exist", show=False)


# ------------------------------------------------------------------------------ plot_writer_data
@pytest.mark.filterwarnings("ignore:2 runs are too few")
@pytest.mark.parametrize("representation", ["ci", "pi", "cb", "raw_curves"])
def test_plot_writer_data_smoothed_returns_the_plotted_rows_and_saves_a_png(study, tmp_path, representation) -> None:
    path = tmp_path / f"{representation}.png"
    ax = new_axes()
    managers = [study["q"], study["q_again"]]
    rows = plot_writer_data(managers, TAG, smooth=True, ax=ax, error_representation=representation,
                            savefig_fname=path, show=False)
    pd.testing.assert_frame_equal(rows, read_writer_data(managers, TAG))
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["QLearning", "QLearning (2)"]
    assert ax.get_title() == TAG and ax.get_ylabel() == TAG and ax.get_xlabel() == "global_step"
    assert len(ax.lines) == (2 + 4 if representation == "raw_curves" else 2)
    assert len(ax.collections) == (0 if representation == "raw_curves" else 2)


def test_plot_writer_data_averages_runs_where_they_share_steps(study) -> None:
    ax = new_axes()
    with pytest.warns(UserWarning, match="truncating"):
        rows = plot_writer_data(study["q"], TAG, ax=ax, error_representation="pi", show=False)
    steps = rows.groupby("global_step")["instance"].nunique()
    assert (steps == 2).all()  # every plotted step was logged by both instances
    np.testing.assert_allclose(ax.lines[0].get_xdata(), steps.index)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), rows.groupby("global_step")["value"].mean())


def test_plot_writer_data_id_agent_plots_one_instance(study) -> None:
    ax = new_axes()
    rows = plot_writer_data(study["q"], TAG, smooth=True, id_agent=1, ax=ax, error_representation="raw_curves",
                            show=False)
    assert set(rows["n_simu"]) == {1}
    assert len(ax.lines) == 2  # the mean and the one run
    one = read_writer_data(study["q"], TAG, id_agent=1)
    np.testing.assert_array_equal(np.sort(ax.lines[1].get_xdata()), np.sort(one["global_step"]))


def test_plot_writer_data_preprocesses_and_labels_the_axes(study) -> None:
    ax = new_axes()
    rows = plot_writer_data(study["q"], TAG, xtag="dw_time_elapsed", smooth=True, preprocess_func=np.cumsum,
                            title="Cumulative reward", ax=ax, show=False)
    np.testing.assert_allclose(sorted_values(rows, 0, TAG), expected_cumsum(study["q"], 0, TAG))
    assert ax.get_title() == "Cumulative reward"
    assert ax.get_ylabel() == "value" and ax.get_xlabel() == "dw_time_elapsed"


def test_plot_writer_data_without_steps_uses_each_runs_logging_order(study, monkeypatch) -> None:
    rows = read_writer_data(study["q"], TAG).groupby("instance").head(30).reset_index(drop=True)
    monkeypatch.setattr(manager_tools, "read_writer_data", lambda *args: rows.assign(global_step=np.nan))
    plotted = plot_writer_data(study["q"], TAG, ax=new_axes(), show=False)
    assert len(plotted) == 2 * 30
    for _, run in plotted.groupby("instance"):
        np.testing.assert_array_equal(run["global_step"], np.arange(30.0))

    some_missing = rows.assign(global_step=rows["global_step"].where(rows.index % 2 == 0))
    monkeypatch.setattr(manager_tools, "read_writer_data", lambda *args: some_missing)
    with pytest.warns(UserWarning, match=f"{len(rows) // 2} rows have no 'global_step'"):
        plotted = plot_writer_data(study["q"], TAG, smooth=True, ax=new_axes(), show=False)
    pd.testing.assert_frame_equal(plotted, some_missing.dropna(subset=["global_step"]).reset_index(drop=True))


def test_plot_writer_data_linestyles_differ_between_managers(study) -> None:
    ax = new_axes()
    plot_writer_data([study["q"], study["q_again"]], TAG, smooth=True, ax=ax, linestyles=True, show=False)
    assert [line._unscaled_dash_pattern for line in ax.lines] == [(0, None), (0, (1, 1))]


def test_plot_writer_data_sub_sample_keeps_at_most_1000_points_per_run(long_run) -> None:
    n_rows = len(read_writer_data(long_run, TAG))
    assert n_rows > 1000
    kept = plot_writer_data(long_run, TAG, smooth=True, smoothing_bandwidth=50.0, ax=new_axes(), show=False)
    assert len(kept) == math.ceil(n_rows / math.ceil(n_rows / 1000)) <= 1000
    everything = plot_writer_data(long_run, TAG, smooth=True, smoothing_bandwidth=50.0, sub_sample=False,
                                  ax=new_axes(), show=False)
    assert len(everything) == n_rows


@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("representation", ["ci", "pi", "cb", "raw_curves"])
def test_plot_writer_data_of_a_single_instance_has_no_nan(study, smooth, representation) -> None:
    ax = new_axes()
    with pytest.warns(UserWarning, match="too few") if representation == "cb" else contextlib.nullcontext():
        rows = plot_writer_data(study["random"], TAG, smooth=smooth, error_representation=representation, ax=ax,
                                show=False)
    assert len(rows) == writer_rows(study["random"]) // 2
    for line in ax.lines:
        assert np.isfinite(line.get_ydata()).all()
    for k in range(len(ax.collections)):
        edges = band(ax, k)
        np.testing.assert_array_equal(edges["min"], edges["max"])  # one run: the band collapses


@pytest.mark.parametrize("smooth", [False, True])
def test_plot_writer_data_rejects_an_unknown_error_representation(study, smooth) -> None:
    with pytest.raises(ValueError, match="error_representation not implemented"):
        plot_writer_data(study["q"], TAG, smooth=smooth, error_representation="does_not_exist", show=False)


def test_plot_writer_data_without_data_warns_and_returns_none(study) -> None:
    with pytest.warns(UserWarning, match="No data to be plotted"):
        assert plot_writer_data(study["q"], "no such tag", show=False) is None


def test_figures_are_built_without_pyplot_unless_shown(study, tmp_path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from rlpipe.manager.tools import evaluate_agents, plot_writer_data, read_writer_data
        from rlpipe.manager.experiment_manager import ExperimentManager
        manager = ExperimentManager.load({str(study["q"].output_dir)!r})
        evaluate_agents([manager], n_simulations=2, show=False)
        plot_writer_data(manager, {TAG!r}, smooth=True, show=False, savefig_fname={str(tmp_path / "f.png")!r})
        assert "matplotlib.pyplot" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG_MAGIC


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
    for manager, budget in zip(multiple.managers, budgets, strict=True):
        assert all(manager.paths.instance(i).checkpoint.is_file() for i in range(manager.n_fit))
        assert [agent.total_env_steps for agent in manager.get_agent_instances()] == [budget] * manager.n_fit
        assert (manager.output_dir / "manager.json").is_file()
    assert multiple.save() == [m.output_dir / "manager.json" for m in managers]


def test_multiple_managers_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="parallelization must be one of"):  # a ValueError, as the manager's
        MultipleManagers(parallelization="cluster")
    with pytest.raises(ConfigError, match="mp_context must be one of"):
        MultipleManagers(mp_context="threads")
    with pytest.raises(TypeError):
        MultipleManagers().append("not a manager")
