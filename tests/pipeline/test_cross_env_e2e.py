"""End-to-end: the metrics across environments through Snakemake, on a tiny study of two environments (FrozenLake
and CartPole): every output of the cross_env rule, numbers equal to rlpipe.core.cross_env's on the summaries'
per-instance scores, and a missing reference score refused before any job. (Bit-identical reruns, and no cross_env
output without a metrics section: tests/core/test_cross_env_comparison.py.)"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlpipe.core import cross_env
from rlpipe.core.tasks import cross_env_task
from rlpipe.pipeline import workflow
from rlpipe.spec.experiment import validate_study

from result_tables import read_results_csv
from snakemake_runner import PNG_MAGIC, TINY, ok, run_snakemake

pytestmark = pytest.mark.e2e

REFERENCES = {"FrozenLake-v1": {"random": 0.014, "optimum": 0.7442}, "CartPole-v1": {"random": 22.0, "optimum": 500.0}}
CONFIG = copy.deepcopy(TINY)
CONFIG["experiments"]["pole"] = {"agent": "rlpipe.agents.RandomAgent", "train_env": "CartPole-v1", "fit_budget": 300,
                                 "n_fit": 3, "eval_kwargs": {"eval_horizon": 100, "n_simulations": 3}}
CONFIG["metrics"] = {"reference_scores": REFERENCES, "bootstrap_samples": 500}
for experiment in CONFIG["experiments"].values():
    experiment["instances_per_job"] = 3  # one fit and one evaluate job per experiment: a shorter run


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("cross_env")
    ok(run_snakemake(workdir, CONFIG))
    return workdir


def test_every_output_is_written(finished_run: Path) -> None:
    outputs = workflow.cross_env_outputs(validate_study(CONFIG))
    assert len(outputs) == 17
    for output in outputs:
        assert (finished_run / output).is_file(), output
    for name in workflow.CROSS_ENV_FIGURES:
        assert (finished_run / f"results/cross_env/{name}.pdf").read_bytes().startswith(b"%PDF")
        assert (finished_run / f"results/cross_env/{name}.png").read_bytes().startswith(PNG_MAGIC)
    assert "left out of the sample-efficiency curves" not in (finished_run / "results/cross_env/cross_env.log").read_text()


def test_the_tables_hold_what_cross_env_computes_on_the_summaries(finished_run: Path) -> None:
    """From the summaries alone: the per-instance scores, normalised by hand, and the generators of the study's seed."""
    results = finished_run / "results"
    scores: dict[str, dict[str, list[float]]] = {}
    for name, algorithm in [("ql", "QLearningAgent"), ("rand", "RandomAgent"), ("pole", "RandomAgent")]:
        summary = json.loads((results / name / "summary.json").read_text())
        reference = REFERENCES[summary["env"]]
        raw = np.array([summary["per_instance"][str(i)] for i in range(summary["n_fit"])])
        scores.setdefault(algorithm, {})[summary["env"]] = (raw - reference["random"]) / (reference["optimum"] - reference["random"])
    task = cross_env_task(validate_study(CONFIG))
    settings = {"n_resamples": 500, "confidence": 0.95}
    aggregates = read_results_csv(results / "cross_env/aggregates.csv")
    expected = pd.concat([cross_env.aggregate_metrics({a: scores[a]}, task.generator("aggregates", a), **settings)
                          for a in scores], ignore_index=True)  # each algorithm from its own generator
    pd.testing.assert_frame_equal(aggregates[cross_env.AGGREGATE_COLUMNS], expected, check_exact=False, rtol=1e-12)
    assert aggregates.set_index(["algorithm", "metric"]).loc[("RandomAgent", "iqm"), "n_tasks"] == 2
    improvement = read_results_csv(results / "cross_env/improvement.csv")
    pd.testing.assert_frame_equal(improvement, cross_env.probability_of_improvement(
        scores, task.generator("improvement", "QLearningAgent", "RandomAgent"), **settings), check_exact=False, rtol=1e-12)
    curves = read_results_csv(results / "cross_env/sample_efficiency.csv")
    assert set(curves["algorithm"]) == {"QLearningAgent", "RandomAgent"} and len(curves) == 2 * 100


def test_a_missing_reference_score_stops_the_run_before_any_job(tmp_path: Path) -> None:
    config = copy.deepcopy(CONFIG)
    del config["metrics"]["reference_scores"]["CartPole-v1"]
    result = run_snakemake(tmp_path, config, "--dry-run")
    assert result.returncode != 0
    assert ("metrics.reference_scores: no reference scores for env 'CartPole-v1' (evaluated by 'pole'): add "
            "'CartPole-v1: {random: ..., optimum: ...}'") in result.stderr
    assert "No job was run" in result.stderr and not (tmp_path / "results").exists()
