"""Tests of rlpipe.core.plots: figure structure (axes, artists, labels), PNG output and empty input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.figure import Figure

from rlpipe.core.plots import CurvePanel, comparison_figure, evaluation_figure, learning_curves_figure
from rlpipe.core.statistics import curve_band, learning_curves
from rlpipe.io.atomic import save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _texts(figure: Figure) -> list[str]:
    return [text.get_text() for axes in figure.axes for text in axes.texts]


def _legend_labels(figure: Figure) -> list[str]:
    legends = [axes.get_legend() for axes in figure.axes if axes.get_legend()] + list(figure.legends)
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def _assert_png(figure: Figure, path: Path) -> None:
    save_figure(figure, path)
    assert path.read_bytes()[:8] == PNG_MAGIC


# ------------------------------------------------------------------------------ learning curves
@pytest.fixture
def curves() -> pd.DataFrame:
    steps = np.linspace(0.0, 10_000.0, 30)
    rows = [pd.DataFrame({"instance": i, "tag": "episode_rewards", "value": np.sqrt(steps) + 5 * i,
                          "global_step": steps}) for i in range(4)]
    return learning_curves(pd.concat(rows, ignore_index=True), "episode_rewards", n_points=40)


def test_learning_curves_figure_with_instances(curves: pd.DataFrame, tmp_path: Path) -> None:
    band = curve_band(curves, np.random.default_rng(0), n_resamples=200)
    figure = learning_curves_figure([CurvePanel("CartPole: PPO", "episode reward", band, curves)], "environment steps")
    assert isinstance(figure, Figure) and len(figure.axes) == 1
    axes = figure.axes[0]
    assert len(axes.lines) == 1  # the mean line
    [instances] = [c for c in axes.collections if isinstance(c, LineCollection)]  # one faint line per instance
    assert len(instances.get_segments()) == 4
    np.testing.assert_allclose(instances.get_segments()[1][:, 1], curves[curves.instance == 1].sort_values("x")["value"])
    assert sum(isinstance(c, PolyCollection) for c in axes.collections) == 1  # the CI band
    np.testing.assert_allclose(axes.lines[-1].get_ydata(), band["mean"])
    assert axes.get_title() == "CartPole: PPO"
    assert axes.get_xlabel() == "environment steps" and axes.get_ylabel() == "episode reward"
    assert _legend_labels(figure) == ["individual instances", "mean over 4 instances, 95% bootstrap CI"]
    _assert_png(figure, tmp_path / "curve.png")


def test_learning_curves_figure_band_only(curves: pd.DataFrame) -> None:
    band = curve_band(curves, np.random.default_rng(0), n_resamples=200, confidence=0.9)
    figure = learning_curves_figure([CurvePanel("t", "y", band)], "wall time (s)", confidence=0.9)
    axes = figure.axes[0]
    assert len(axes.lines) == 1
    assert axes.get_xlabel() == "wall time (s)"
    assert _legend_labels(figure) == ["mean over 4 instances, 90% bootstrap CI"]


def test_learning_curves_figure_no_data(tmp_path: Path) -> None:
    empty = pd.DataFrame(columns=["x", "mean", "ci_low", "ci_high", "n_instances"])
    figure = learning_curves_figure([CurvePanel("empty run", "y", empty)], "global step")
    assert "no data" in _texts(figure)
    assert figure.axes[0].get_title() == "empty run"
    _assert_png(figure, tmp_path / "empty.png")


# ----------------------------------------------------------------------------------- evaluation
@pytest.fixture
def evaluation() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n_instances, n_episodes = 3, 8
    return pd.DataFrame({
        "instance": np.repeat(np.arange(n_instances), n_episodes),
        "episode": np.tile(np.arange(n_episodes), n_instances),
        "return": rng.normal(100.0, 10.0, n_instances * n_episodes),
        "discounted_return": rng.normal(50.0, 5.0, n_instances * n_episodes),
        "length": rng.integers(10, 200, n_instances * n_episodes),
    })


def _scatters(figure: Figure) -> list[PathCollection]:
    return [c for c in figure.axes[0].collections if isinstance(c, PathCollection)]


def test_the_evaluation_figure_of_many_instances_labels_every_kth(evaluation: pd.DataFrame) -> None:
    many = pd.DataFrame({"instance": np.repeat(np.arange(100), 2), "score": np.arange(200.0)})
    axes = evaluation_figure(many, title="100 instances").axes[0]
    labels = [label.get_text() for label in axes.get_xticklabels()]
    assert labels == [str(i) for i in range(0, 100, 3)] + ["per-instance\nmeans"]  # ceil(100 / 40) = 3
    assert len(_scatters(axes.figure)[0].get_offsets()) == 200  # every instance is still drawn


def test_evaluation_figure_structure(evaluation: pd.DataFrame, tmp_path: Path) -> None:
    figure = evaluation_figure(evaluation, title="evaluation of PPO", metric="discounted_return")
    axes = figure.axes[0]
    assert axes.get_title() == "evaluation of PPO"
    assert axes.get_ylabel() == "discounted return" and axes.get_xlabel() == "instance"
    assert [label.get_text() for label in axes.get_xticklabels()] == ["0", "1", "2", "per-instance\nmeans"]
    episodes, means = _scatters(figure)
    assert len(episodes.get_offsets()) == len(evaluation)
    expected_means = evaluation.groupby("instance")["discounted_return"].mean().to_numpy()
    np.testing.assert_allclose(np.asarray(means.get_offsets())[:, 1], expected_means)
    np.testing.assert_allclose(np.sort(np.asarray(episodes.get_offsets())[:, 1]),
                               np.sort(evaluation["discounted_return"].to_numpy()))
    assert _legend_labels(figure) == ["episodes", "per-instance mean", "median", "mean"]
    mean_markers = next(line for line in axes.lines if line.get_marker() == "^")
    np.testing.assert_allclose(mean_markers.get_ydata(), expected_means)
    median_bars = next(c for c in axes.collections if c.get_label() == "median")
    medians = [segment[0, 1] for segment in median_bars.get_segments()]
    np.testing.assert_allclose(medians, evaluation.groupby("instance")["discounted_return"].median())
    _assert_png(figure, tmp_path / "evaluation.png")


def test_evaluation_figure_jitter_is_deterministic_and_metric_selectable(evaluation: pd.DataFrame) -> None:
    first = evaluation_figure(evaluation, title="t", metric="return")
    second = evaluation_figure(evaluation, title="t", metric="return")
    assert first.axes[0].get_ylabel() == "return"
    for a, b in zip(_scatters(first), _scatters(second)):
        np.testing.assert_array_equal(a.get_offsets(), b.get_offsets())
    with pytest.raises(KeyError, match="available columns"):
        evaluation_figure(evaluation, title="t", metric="success")


def test_evaluation_figure_of_eval_calls_says_so(evaluation: pd.DataFrame) -> None:
    figure = evaluation_figure(evaluation.assign(score=evaluation["return"]), title="t", rows="eval calls")
    assert _legend_labels(figure)[0] == "eval calls"
    assert figure.axes[0].get_ylabel() == "score"


def test_evaluation_figure_no_data() -> None:
    empty = pd.DataFrame(columns=["instance", "episode", "return", "discounted_return", "length"])
    figure = evaluation_figure(empty, title="nothing evaluated")
    assert "no data" in _texts(figure)


# ----------------------------------------------------------------------------------- comparison
def _comparison_inputs(experiments_per_env: dict[str, list[str]], n_instances: int = 5
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(2)
    summary_rows, instance_rows = [], []
    for env, experiments in experiments_per_env.items():
        for k, experiment in enumerate(experiments):
            scores = rng.normal(10.0 * (k + 1), 2.0, n_instances)
            instance_rows.append(pd.DataFrame({"experiment": experiment, "instance": np.arange(n_instances),
                                               "score": scores}))
            summary_rows.append({"experiment": experiment, "env": env, "mean": scores.mean(),
                                 "ci_low": scores.mean() - 1.0, "ci_high": scores.mean() + 1.5,
                                 "iqm": scores.mean() + 0.3, "n": n_instances, "confidence": 0.95})
    return pd.DataFrame(summary_rows), pd.concat(instance_rows, ignore_index=True)


def test_comparison_figure_one_panel_per_env(tmp_path: Path) -> None:
    summary, per_instance = _comparison_inputs({"CartPole-v1": ["ppo", "a2c", "dqn"], "Acrobot-v1": ["ppo", "a2c"]})
    summary.loc[3:, "experiment"] = ["acro_ppo", "acro_a2c"]
    per_instance.loc[15:19, "experiment"] = "acro_ppo"
    per_instance.loc[20:, "experiment"] = "acro_a2c"
    figure = comparison_figure(summary, per_instance)
    assert len(figure.axes) == 2
    cartpole, acrobot = figure.axes
    assert cartpole.get_title() == "env: CartPole-v1" and acrobot.get_title() == "env: Acrobot-v1"
    assert [t.get_text() for t in cartpole.get_yticklabels()] == ["ppo", "a2c", "dqn"]
    assert [t.get_text() for t in acrobot.get_yticklabels()] == ["acro_ppo", "acro_a2c"]
    assert len(next(c for c in cartpole.collections if isinstance(c, PathCollection)).get_offsets()) == 15
    assert len(next(c for c in acrobot.collections if isinstance(c, PathCollection)).get_offsets()) == 10
    iqm_line = next(line for line in cartpole.lines if line.get_label() == "IQM")
    np.testing.assert_allclose(iqm_line.get_xdata(), summary["iqm"].iloc[:3])
    assert cartpole.get_xlabel() == "score"
    assert not cartpole.get_shared_x_axes().joined(cartpole, acrobot)
    assert _legend_labels(figure) == ["mean, 95% bootstrap CI", "IQM", "per-instance scores"]
    _assert_png(figure, tmp_path / "comparison.png")


def test_comparison_figure_single_and_many(tmp_path: Path) -> None:
    summary, per_instance = _comparison_inputs({"CartPole-v1": ["ppo"]}, n_instances=1)
    single = comparison_figure(summary, per_instance)
    assert len(single.axes) == 1
    assert [t.get_text() for t in single.axes[0].get_yticklabels()] == ["ppo"]

    envs = {f"env{e}": [f"env{e}_exp{k}" for k in range(12 if e == 0 else 2)] for e in range(6)}
    summary, per_instance = _comparison_inputs(envs)
    many = comparison_figure(summary, per_instance)
    assert len(many.axes) == 6
    assert len(many.axes[0].get_yticklabels()) == 12
    _assert_png(many, tmp_path / "many.png")


def test_comparison_figure_no_data(tmp_path: Path) -> None:
    summary = pd.DataFrame(columns=["experiment", "env", "mean", "ci_low", "ci_high", "iqm"])
    per_instance = pd.DataFrame(columns=["experiment", "instance", "score"])
    figure = comparison_figure(summary, per_instance)
    assert "no data" in _texts(figure)
    _assert_png(figure, tmp_path / "none.png")


# ------------------------------------------------------------------------------- global state
def test_plots_never_import_pyplot() -> None:
    # pyplot selects a backend and keeps a global figure registry; a fresh interpreter shows that
    # building every kind of figure leaves it unimported.
    code = (
        "import sys, pandas as pd\n"
        "from rlpipe.core.plots import CurvePanel, comparison_figure, evaluation_figure, learning_curves_figure\n"
        "evaluation_figure(pd.DataFrame({'instance': [0, 0, 1], 'score': [1.0, 2.0, 3.0]}), 't')\n"
        "learning_curves_figure([CurvePanel('t', 'y', pd.DataFrame())], 'global step')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
