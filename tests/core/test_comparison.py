"""rlpipe.core.comparison: the compare stage reads each experiment's summary.json and writes summary.csv,
summary.md and comparison.png under the results root. The summaries are written by hand here, with the keys
the aggregate stage writes (and the ones the comparison ignores)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rlpipe.core.comparison import SUMMARY_COLUMNS, compare_experiments, read_summaries
from rlpipe.io.paths import StudyPaths

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def summary_record(experiment: str, env: str, per_instance: dict[str, float], wall_times: list[float],
                   **overrides: Any) -> dict[str, Any]:
    """A summary.json as aggregate_experiment writes it (the statistics are made up, not computed)."""
    record = {
        "experiment": experiment,
        "agent": f"pkg.agents:{experiment.title()}Agent",
        "env": env,
        "fit_budget": 500,
        "n_fit": len(per_instance),
        "metric": "score",
        "n": len(per_instance),
        "mean": 0.5,
        "std": 0.25,
        "median": 0.5,
        "iqm": 0.45,
        "ci_low": 0.25,
        "ci_high": 0.75,
        "confidence": 0.95,
        "n_resamples": 1000,
        "per_instance": per_instance,
        "fit_wall_time_s": wall_times,
        "root_seed": {"entropy": 1, "spawn_key": []},
        "task_hash": "0123456789abcdef",
        "versions": {"rlpipe": "0"},
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
        "learning_curve_tags": ["episode_rewards"],
    }
    record.update(overrides)
    return record


def write_summaries(folder: Path, *records: dict[str, Any]) -> list[Path]:
    files = []
    for record in records:
        path = folder / record["experiment"] / "summary.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record, indent=2, sort_keys=True))  # as write_json writes it (NaN included)
        files.append(path)
    return files


def two_experiments(folder: Path) -> list[Path]:
    """``qlearning`` (3 instances) then ``random`` (1 instance, so no std), on different envs."""
    return write_summaries(
        folder,
        summary_record("qlearning", "FrozenLake-v1", {"0": 0.25, "1": 0.75, "2": 0.5}, [1.0, 2.0, 6.0],
                       fit_cpu_time_s=[0.5, 1.0, 1.5],
                       mean=0.123456, std=0.0456789, median=0.11111, iqm=0.10001, ci_low=0.0123456, ci_high=0.987654),
        summary_record("random", "CartPole-v1", {"0": 21.0}, [0.5], mean=21.0, std=float("nan"), median=21.0, iqm=21.0,
                       ci_low=21.0, ci_high=21.0, fit_budget=0,
                       git={"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True}),
    )


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of the markdown table (header first, the alignment row left out)."""
    lines = [line.strip().strip("|") for line in text.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in line.split("|")] for line in lines]
    return [rows[0], *rows[2:]]


# ---------------------------------------------------------------------------------------------- read_summaries
def test_read_summaries_one_row_per_experiment_in_the_given_order(tmp_path):
    files = two_experiments(tmp_path)
    summary, _ = read_summaries(files[::-1])
    assert list(summary.columns) == SUMMARY_COLUMNS  # the extra keys of summary.json are left out
    assert summary["experiment"].tolist() == ["random", "qlearning"]
    assert summary["agent"].tolist() == ["pkg.agents:RandomAgent", "pkg.agents:QlearningAgent"]
    assert summary["env"].tolist() == ["CartPole-v1", "FrozenLake-v1"]
    assert summary["n_fit"].tolist() == [1, 3]
    assert summary["fit_budget"].tolist() == [0, 500]
    assert summary["mean"].tolist() == [21.0, 0.123456]
    assert summary["ci_low"].tolist() == [21.0, 0.0123456] and summary["ci_high"].tolist() == [21.0, 0.987654]
    assert summary["confidence"].tolist() == [0.95, 0.95]
    assert summary["fit_wall_time_s"].tolist() == [0.5, 3.0]  # the mean over the instances' fits
    assert math.isnan(summary["std"].iloc[0]) and summary["std"].iloc[1] == 0.0456789  # NaN: one instance


def test_read_summaries_per_instance_scores(tmp_path):
    _, per_instance = read_summaries(two_experiments(tmp_path))
    assert list(per_instance.columns) == ["experiment", "instance", "score"]
    assert per_instance.to_dict("records") == [
        {"experiment": "qlearning", "instance": 0, "score": 0.25},
        {"experiment": "qlearning", "instance": 1, "score": 0.75},
        {"experiment": "qlearning", "instance": 2, "score": 0.5},
        {"experiment": "random", "instance": 0, "score": 21.0},
    ]
    assert per_instance["instance"].dtype == np.int64  # the JSON keys are strings


def test_read_summaries_of_a_summary_without_per_instance_scores(tmp_path):
    record = summary_record("ql", "FrozenLake-v1", {"0": 1.0}, [1.0])
    del record["per_instance"]
    with pytest.raises(KeyError, match="per_instance"):
        read_summaries(write_summaries(tmp_path, record))


# ---------------------------------------------------------------------------------------------- compare_experiments
def test_compare_experiments_writes_the_summary_csv(tmp_path):
    files = two_experiments(tmp_path / "results")
    paths = StudyPaths(tmp_path / "results")
    returned = compare_experiments(files, paths)
    pd.testing.assert_frame_equal(returned, read_summaries(files)[0])
    lines = paths.summary_csv.read_text().splitlines()
    assert lines[0] == ",".join(SUMMARY_COLUMNS)
    assert lines[1] == ("qlearning,pkg.agents:QlearningAgent,FrozenLake-v1,3,500,0.123456,0.0456789,0.11111,0.10001,"
                        "0.0123456,0.987654,0.95,3.0,1.0,0123456789ab")  # mean wall and CPU times, the commit that made it
    assert lines[2] == "random,pkg.agents:RandomAgent,CartPole-v1,1,0,21.0,,21.0,21.0,21.0,21.0,0.95,0.5,,0123456789ab+dirty"  # no CPU time: an older summary
    assert len(lines) == 3
    pd.testing.assert_frame_equal(pd.read_csv(paths.summary_csv), returned, check_dtype=False)


def test_compare_experiments_writes_the_summary_markdown(tmp_path):
    files = two_experiments(tmp_path / "results")
    paths = StudyPaths(tmp_path / "results")
    compare_experiments(files, paths)
    text = paths.summary_md.read_text()
    assert text.startswith("# Study summary\n\nScore: mean evaluation score per fitted instance")
    assert text.endswith("\nMade by rlpipe at commit 0123456789ab, 0123456789ab+dirty (see provenance.html).\n")
    header, qlearning, random = markdown_rows(text)
    assert header == ["experiment", "agent", "env", "n_fit", "fit_budget", "mean", "std", "median", "iqm",
                      "fit_wall_time_s", "fit_cpu_time_s", "95% CI of mean"]
    assert qlearning == ["qlearning", "pkg.agents:QlearningAgent", "FrozenLake-v1", "3", "500", "0.1235", "0.04568",
                         "0.1111", "0.1", "3", "1", "[0.0123, 0.988]"]  # 4 significant digits, the CI 3
    assert random == ["random", "pkg.agents:RandomAgent", "CartPole-v1", "1", "0", "21", "nan", "21", "21", "0.5",
                      "nan", "[21, 21]"]


def test_the_markdown_names_the_confidence_of_the_intervals(tmp_path):
    files = write_summaries(tmp_path, summary_record("ql", "FrozenLake-v1", {"0": 0.5, "1": 0.5}, [1.0, 1.0],
                                                     confidence=0.9))
    paths = StudyPaths(tmp_path / "results")
    compare_experiments(files, paths)
    header, row = markdown_rows(paths.summary_md.read_text())
    assert header[-1] == "90% CI of mean" and row[-1] == "[0.25, 0.75]"
    assert pd.read_csv(paths.summary_csv)["confidence"].tolist() == [0.9]


def test_compare_experiments_draws_the_same_png_twice(tmp_path):
    files = two_experiments(tmp_path)
    first, second = StudyPaths(tmp_path / "first"), StudyPaths(tmp_path / "second")
    compare_experiments(files, first)
    compare_experiments(files, second)
    png = first.comparison_plot.read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000
    assert png == second.comparison_plot.read_bytes()  # seeded jitter, no timestamp in the metadata
    assert sorted(p.name for p in first.root.iterdir()) == ["comparison.png", "summary.csv", "summary.md"]


def test_a_missing_summary_writes_nothing(tmp_path):
    files = two_experiments(tmp_path)
    paths = StudyPaths(tmp_path / "results")
    with pytest.raises(FileNotFoundError, match="nope"):
        compare_experiments([*files, tmp_path / "nope" / "summary.json"], paths)
    assert not paths.root.exists()


def test_a_truncated_summary_writes_nothing(tmp_path):
    files = two_experiments(tmp_path)
    files[1].write_text(files[1].read_text()[:40])
    paths = StudyPaths(tmp_path / "results")
    with pytest.raises(json.JSONDecodeError):
        compare_experiments(files, paths)
    assert not paths.root.exists()
