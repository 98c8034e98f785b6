"""The benchmarks behind the README's figures still run against the current API (on a tiny budget)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).parent / "benchmarks"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_parallel_measures_bare_fits_planning_and_add_scalar(tmp_path):
    """Not a timing test (the machine is shared): the benchmark's pieces run and measure something."""
    bench = load("bench_parallel")
    config = bench.study_config("rlpipe.agents.QLearningAgent", "FrozenLake-v1", 50)
    assert config["experiments"]["bench"]["n_fit"] == bench.N_INSTANCES
    assert 0 < bench.time_bare(config) < 30
    assert 0 < bench.time_pipeline(config, tmp_path, [], dry_run=True) < 60
    assert not (tmp_path / "results").exists()  # a dry run: nothing was fitted
    assert 0 < bench.time_add_scalar(n=1000) < 1e-3


@pytest.mark.e2e  # it runs Snakemake
def test_bench_sweeps_plans_a_sweep_and_measures_the_overhead_at_a_tiny_size(tmp_path, capsys):
    """Not a timing test: the sweep benchmark's plan and overhead runs complete and report numbers."""
    bench = load("bench_sweeps")
    out = tmp_path / "results.json"
    results = bench.main(["--plan-shapes", "4x5", "--sizes", "8", "--greedy-sizes", "", "--instances-per-job", "8",
                          "--check-jobs", "--json", str(out)])
    assert json.loads(out.read_text()) == results
    [plan] = results["plan"]
    assert (plan["experiments"], plan["instances"]) == (4, 20)
    assert plan["jobs"] == plan["snakemake_jobs"] == 4 * (2 * 5 + 1) + 3  # per experiment 5 fit, 5 evaluate, aggregate
    assert 0 < plan["wall_s"] < 60 and plan["peak_rss_mb"] > 0
    [overhead] = results["overhead"]
    assert (overhead["instances"], overhead["jobs"]) == (8, 6)  # fit, evaluate, aggregate, compare, provenance, all
    assert 0 < overhead["bare_s"] < overhead["pipeline_s"] < 60
    assert overhead["overhead_per_instance"] > 0 and overhead["phases"]["jobs_own_work_s"] > 0
    printed = capsys.readouterr().out
    assert "4 exp × 5 seeds" in printed and "8 instances" in printed


@pytest.mark.e2e  # it runs Snakemake
def test_bench_sb3_runs_the_pipeline_and_sb3_directly_at_a_tiny_size(tmp_path, capsys):
    """Not a timing test: config/deep.yaml's PPO and SAC through Snakemake and through SB3 alone, on tiny budgets."""
    pytest.importorskip("stable_baselines3", reason="the sb3 extra is not installed: pip install -e '.[sb3]'")
    bench = load("bench_sb3")
    out = tmp_path / "results.json"
    results = bench.main(["--ppo-budget", "256", "--sac-budget", "120", "--seeds", "1", "--eval-episodes", "2",
                          "--direct-first", "--json", str(out)])
    assert json.loads(out.read_text()) == results and results["direct_first"]
    assert set(results["experiments"]) == {"ppo_cartpole", "sac_pendulum"}
    for row in results["experiments"].values():
        assert len(row["instance_scores"]) == 1 and row["pipeline_s_per_10k"] > 0 and row["direct_s_per_10k"] > 0
        assert row["env_steps"][0] >= row["budget"]
    assert results["pipeline_fit_wall_s"] > 0 and results["direct_wall_s"] > 0
    assert "pipeline overhead" in capsys.readouterr().out
