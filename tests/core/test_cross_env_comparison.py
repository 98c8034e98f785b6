"""rlpipe.core.cross_env_comparison: the cross_env stage reads the experiments' summaries and writer data of a
results folder (written by hand here, as the aggregate stage writes them), and writes the metrics across environments:
tables as CSV, Markdown and LaTeX, figures as PNG and PDF, every number reproducible from the study's seed."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlpipe.core import cross_env
from rlpipe.core.cross_env_comparison import (
    SCORE_COLUMNS,
    booktabs,
    compare_across_envs,
    normalised_scores,
    score_mapping,
)
from rlpipe.core.tasks import CROSS_ENV_PARTS, CrossEnvTask, cross_env_task
from rlpipe.errors import ConfigError
from rlpipe.io.atomic import write_parquet
from rlpipe.io.paths import StudyPaths
from rlpipe.pipeline import workflow
from rlpipe.spec.experiment import validate_study

from result_tables import read_results_csv

REFERENCES = {"FrozenLake-v1": {"random": 0.0, "optimum": 0.5}, "CartPole-v1": {"random": 20.0, "optimum": 500.0}}
CONFIG = {
    "seed": 3,
    "report": {"confidence": 0.9},
    "experiments": {
        "ql": {"agent": "rlpipe.agents.QLearningAgent", "train_env": "FrozenLake-v1", "fit_budget": 100, "n_fit": 3,
               "learning_curve": {"smoothing_window": 2}},
        "vi": {"agent": "rlpipe.agents.ValueIterationAgent", "train_env": "FrozenLake-v1", "fit_budget": 10, "n_fit": 2},
        "lake": {"agent": "rlpipe.agents.RandomAgent", "train_env": "FrozenLake-v1", "fit_budget": 100, "n_fit": 2},
        "pole": {"agent": "rlpipe.agents.RandomAgent", "train_env": "CartPole-v1", "fit_budget": 100, "n_fit": 4},
    },
    "metrics": {"reference_scores": REFERENCES, "bootstrap_samples": 300, "sample_efficiency": {"n_points": 5}},
}
RAW = {"ql": [0.25, 0.5, 0.4], "vi": [0.45, 0.5], "lake": [0.0, 0.05], "pole": [20.0, 260.0, 32.0, 500.0]}


def summary(name: str, env: str, scores: list[float]) -> dict:
    """A summary.json with the keys compare reads (the statistics are not used here)."""
    return {"experiment": name, "agent": f"rlpipe.agents:{name}", "env": env, "n_fit": len(scores), "fit_budget": 100,
            "mean": float(np.mean(scores)), "std": 0.0, "median": 0.0, "iqm": 0.0, "ci_low": 0.0, "ci_high": 0.0,
            "confidence": 0.9, "fit_wall_time_s": [1.0] * len(scores),
            "per_instance": {str(i): score for i, score in enumerate(scores)}}


def writer_data(tag: str, n_instances: int, steps: int, slope: float) -> pd.DataFrame:
    """Writer data of ``tag`` (and of another tag that must not be read): instance i logs value slope * step * (i+1)."""
    rows = [(tag, slope * step * (i + 1), float(step), i) for i in range(n_instances) for step in range(0, steps + 1, 10)]
    rows += [("episode_length", 1.0, float(step), i) for i in range(n_instances) for step in range(0, steps + 1, 10)]
    frame = pd.DataFrame(rows, columns=["tag", "value", "global_step", "instance"])
    return frame.assign(name="x", dw_time_elapsed=0.0)[["name", "tag", "value", "dw_time_elapsed", "global_step", "instance"]]


def write_study(root: Path) -> tuple[CrossEnvTask, StudyPaths]:
    study = validate_study(CONFIG)
    paths = StudyPaths(root)
    envs = {"ql": "FrozenLake-v1", "vi": "FrozenLake-v1", "lake": "FrozenLake-v1", "pole": "CartPole-v1"}
    tags = {"ql": ("episode_rewards", 100, 0.002), "vi": ("bellman_residual", 10, 0.1),
            "lake": ("episode_rewards", 100, 0.0001), "pole": ("episode_rewards", 100, 0.2)}
    for name, scores in RAW.items():
        folder = paths.experiment(name)
        folder.summary.parent.mkdir(parents=True)
        folder.summary.write_text(json.dumps(summary(name, envs[name], scores)))
        write_parquet(folder.writer_data, writer_data(*tags[name][:1], len(scores), *tags[name][1:]))
    return cross_env_task(study), paths


@pytest.fixture()
def study_folder(tmp_path: Path) -> tuple[CrossEnvTask, StudyPaths]:
    return write_study(tmp_path / "results")


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[CrossEnvTask, StudyPaths, dict[str, pd.DataFrame]]:
    """The stage run once on the study (drawing its figures takes a second or two)."""
    task, paths = write_study(tmp_path_factory.mktemp("compared") / "results")
    return task, paths, compare_across_envs(task, paths)


# ---------------------------------------------------------------------------------------------- the task
def test_the_task_lists_each_experiments_algorithm_env_and_smoothing():
    task = cross_env_task(validate_study(CONFIG))
    assert task.experiments == [
        {"name": "ql", "algorithm": "QLearningAgent", "env": "FrozenLake-v1", "smoothing_window": 2},
        {"name": "vi", "algorithm": "ValueIterationAgent", "env": "FrozenLake-v1", "smoothing_window": 1},
        {"name": "lake", "algorithm": "RandomAgent", "env": "FrozenLake-v1", "smoothing_window": 1},
        {"name": "pole", "algorithm": "RandomAgent", "env": "CartPole-v1", "smoothing_window": 1}]
    assert task.reference_scores == REFERENCES and task.confidence == 0.9 and task.bootstrap_samples == 300
    assert task.sample_efficiency == {"tag": "episode_rewards", "xtag": "global_step", "n_points": 5}
    assert CrossEnvTask.from_json(task.to_json()) == task


def test_only_the_references_of_the_studys_envs_are_part_of_the_task():
    config = json.loads(json.dumps(CONFIG))
    config["metrics"]["reference_scores"]["Taxi-v4"] = {"random": -700.0, "optimum": 8.0}
    config["metrics"]["sample_efficiency"]["smoothing_window"] = 7
    task = cross_env_task(validate_study(config))
    assert list(task.reference_scores) == ["FrozenLake-v1", "CartPole-v1"]  # a Taxi score changes nothing here
    assert {e["smoothing_window"] for e in task.experiments} == {7}


def test_each_part_draws_from_its_own_seeded_generator():
    task = cross_env_task(validate_study(CONFIG))
    draws = {part: task.generator(part).integers(0, 2**62) for part in CROSS_ENV_PARTS}
    assert len(set(draws.values())) == len(CROSS_ENV_PARTS)
    assert draws == {part: task.generator(part).integers(0, 2**62) for part in CROSS_ENV_PARTS}
    other = cross_env_task(validate_study({**CONFIG, "seed": 4}))
    assert other.generator("aggregates").integers(0, 2**62) != draws["aggregates"]
    with pytest.raises(ValueError, match="unknown part 'profile'"):
        task.generator("profile")
    per_algorithm = [task.generator("aggregates", *names).integers(0, 2**62) for names in ([], ["A"], ["B"], ["A", "B"])]
    assert len(set(per_algorithm)) == 4 and per_algorithm[1] == task.generator("aggregates", "A").integers(0, 2**62)


def test_no_task_and_no_output_without_a_metrics_section():
    config = {key: value for key, value in CONFIG.items() if key != "metrics"}
    with pytest.raises(ConfigError, match="the config has no metrics section"):
        cross_env_task(validate_study(config))
    assert workflow.cross_env_outputs(validate_study(config)) == []
    without, with_metrics = (workflow.all_outputs(validate_study(c)) for c in (config, CONFIG))
    assert not [p for p in without if "cross_env" in p]
    assert with_metrics == without + workflow.cross_env_outputs(validate_study(CONFIG))


# ---------------------------------------------------------------------------------------------- scores
def test_scores_are_normalised_with_the_reference_of_their_env(study_folder):
    task, paths = study_folder
    runs = normalised_scores(task, paths)
    assert list(runs.columns) == SCORE_COLUMNS
    assert runs[["experiment", "instance"]].values.tolist() == [[name, i] for name in RAW for i in range(len(RAW[name]))]
    pole = runs[runs["experiment"] == "pole"]
    assert pole["score"].tolist() == pytest.approx([0.0, 0.5, 12 / 480, 1.0])  # (raw - 20) / (500 - 20)
    assert runs[runs["experiment"] == "ql"]["score"].tolist() == pytest.approx([0.5, 1.0, 0.8])  # raw / 0.5
    assert score_mapping(runs) == {"QLearningAgent": {"FrozenLake-v1": pytest.approx([0.5, 1.0, 0.8])},
                                   "ValueIterationAgent": {"FrozenLake-v1": pytest.approx([0.9, 1.0])},
                                   "RandomAgent": {"FrozenLake-v1": pytest.approx([0.0, 0.1]),
                                                   "CartPole-v1": pytest.approx([0.0, 0.5, 0.025, 1.0])}}


# ---------------------------------------------------------------------------------------------- the stage
def test_the_stage_writes_every_output_of_the_rule(compared):
    task, paths, _ = compared
    written = sorted(str(p.relative_to(paths.root)) for p in paths.cross_env.folder.iterdir())
    expected = sorted(str(Path(p).relative_to("results")) for p in workflow.cross_env_outputs(validate_study(CONFIG)))
    assert written == expected
    for name in workflow.CROSS_ENV_FIGURES:
        assert paths.cross_env.figure(name, "pdf").read_bytes().startswith(b"%PDF")
        assert paths.cross_env.figure(name, "png").read_bytes().startswith(b"\x89PNG")


def test_the_tables_hold_what_cross_env_computes_with_the_tasks_generators(compared):
    task, paths, tables = compared
    scores = score_mapping(tables["scores"])
    settings = {"n_resamples": 300, "confidence": 0.9}
    names = ["QLearningAgent", "ValueIterationAgent", "RandomAgent"]
    assert list(scores) == names  # each algorithm draws from its own generator
    aggregates = read_results_csv(paths.cross_env.table("aggregates"))
    expected = pd.concat([cross_env.aggregate_metrics({a: scores[a]}, task.generator("aggregates", a), **settings)
                          for a in names], ignore_index=True)
    pd.testing.assert_frame_equal(aggregates[cross_env.AGGREGATE_COLUMNS], expected, check_exact=False, rtol=1e-12)
    assert aggregates.loc[aggregates.algorithm == "RandomAgent", "envs"].unique().tolist() == ["CartPole-v1, FrozenLake-v1"]
    improvement = read_results_csv(paths.cross_env.table("improvement"))
    assert improvement[["algorithm_x", "algorithm_y"]].values.tolist() == [[x, y] for x in names for y in names if x != y]
    for x, y in [("QLearningAgent", "ValueIterationAgent"), ("QLearningAgent", "RandomAgent"),
                 ("ValueIterationAgent", "RandomAgent")]:
        pair = cross_env.probability_of_improvement({x: scores[x], y: scores[y]}, task.generator("improvement", x, y),
                                                    **settings)
        rows = improvement[improvement.algorithm_x.isin([x, y]) & improvement.algorithm_y.isin([x, y])]
        pd.testing.assert_frame_equal(rows.reset_index(drop=True), pair, check_exact=False, rtol=1e-12)
    profiles = read_results_csv(paths.cross_env.table("profiles"))
    thresholds = cross_env.profile_thresholds(scores)  # over every algorithm's scores: one grid for all
    expected = pd.concat([cross_env.performance_profiles({a: scores[a]}, task.generator("profiles", a), thresholds,
                                                         **settings) for a in names], ignore_index=True)
    pd.testing.assert_frame_equal(profiles, expected, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(read_results_csv(paths.cross_env.scores), tables["scores"], check_exact=False, rtol=1e-12)


def test_experiments_without_the_tag_are_left_out_of_the_curves(study_folder, caplog):
    task, paths = study_folder
    with caplog.at_level(logging.INFO, logger="rlpipe"):
        compare_across_envs(task, paths)
    assert "experiment 'vi' logged no 'episode_rewards': left out of the sample-efficiency curves" in caplog.text
    curves = read_results_csv(paths.cross_env.table("sample_efficiency"))
    assert list(curves.columns) == cross_env.CURVE_COLUMNS
    assert curves.groupby("algorithm", sort=False).size().to_dict() == {"QLearningAgent": 5, "RandomAgent": 5}
    assert curves.groupby("algorithm", sort=False)["n_tasks"].first().to_dict() == {"QLearningAgent": 1, "RandomAgent": 2}
    ql = curves[curves.algorithm == "QLearningAgent"]
    assert ql["x"].tolist() == [0.0, 25.0, 50.0, 75.0, 100.0]
    # ql's instance i logs 0.002 * step * (i + 1), smoothed over 2 points (a lag of 5 steps) and normalised by 0.5;
    # the IQM of its 3 instances (weights 1/3) at step s is its middle instance's value, 0.008 * (s - 5), past step 0
    assert ql["estimate"].tolist()[1:] == pytest.approx([0.008 * (s - 5) for s in (25, 50, 75, 100)])

    first = {p.name: p.read_bytes() for p in paths.cross_env.folder.iterdir()}  # a rerun writes the same bytes
    compare_across_envs(task, paths)
    assert {p.name: p.read_bytes() for p in paths.cross_env.folder.iterdir()} == first


def test_the_markdown_and_latex_tables(compared):
    task, paths, _ = compared
    markdown = paths.cross_env.table("aggregates", "md").read_text()
    assert markdown.startswith("# Aggregate metrics across environments\n\nNormalised score of a run")
    assert "90% stratified-bootstrap percentile CIs, 300 resamples" in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| algorithm"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "algorithm", "envs", "runs", "IQM", "Median", "Mean", "Optimality gap (lower is better)"]
    latex = paths.cross_env.table("aggregates", "tex").read_text()
    assert r"\toprule" in latex and r"\midrule" in latex and latex.endswith("\\bottomrule\n\\end{tabular}\n")
    assert "\\begin{tabular}{llrrrrr}" in latex  # text left, numbers and intervals right
    row = next(line for line in latex.splitlines() if line.startswith("QLearningAgent"))
    value = read_results_csv(paths.cross_env.table("aggregates")).query("algorithm == 'QLearningAgent' and metric == 'iqm'")
    assert f"{value.estimate.iloc[0]:.3f} [{value.ci_low.iloc[0]:.3f}, {value.ci_high.iloc[0]:.3f}]" in row
    improvement = paths.cross_env.table("improvement", "md").read_text()
    assert "| QLearningAgent | ValueIterationAgent | " in re.sub(" +", " ", improvement)


def test_booktabs_escapes_latex():
    table = pd.DataFrame({"a_b": ["50% & $x_1$"], "n": [3]})
    assert booktabs(table, ["note"]) == ("% note\n% needs \\usepackage{booktabs}\n\\begin{tabular}{lr}\n\\toprule\n"
                                         "a\\_b & n \\\\\n\\midrule\n50\\% \\& \\$x\\_1\\$ & 3 \\\\\n\\bottomrule\n"
                                         "\\end{tabular}\n")


@pytest.mark.parametrize("caption", ["aggregates", "improvement", "profiles", "sample_efficiency"])
def test_the_report_captions_state_only_facts_the_rule_gives(caption):
    """The captions of ``snakemake --report`` render with the rule's ``facts`` param (an unknown name fails here, not
    in a user's report)."""
    from types import SimpleNamespace

    import jinja2

    text = (Path(__file__).resolve().parents[2] / "workflow" / "report" / f"cross_env_{caption}.rst").read_text()
    facts = workflow.cross_env_facts(validate_study(CONFIG))
    assert facts == {"algorithms": 3, "envs": 2, "experiments": 4, "runs": 11, "confidence": "90%", "n_resamples": 300,
                     "tag": "episode_rewards"}
    rendered = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(
        snakemake=SimpleNamespace(params=SimpleNamespace(facts=facts)))
    assert "90%" in rendered or caption == "sample_efficiency" and "episode_rewards" in rendered
