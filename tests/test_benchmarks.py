"""The benchmarks behind the README's figures still run against the current API (on a tiny budget)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

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
