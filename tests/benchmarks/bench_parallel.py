"""Benchmark: 8 compute-bound instances fitted bare in one process vs through `snakemake --cores 2`.

Prints the parallel efficiency (bare time / (2 × pipeline time)), the pipeline's overhead per
instance in core-seconds ((2 × pipeline − bare) / 8), and the cost of one `add_scalar` call.
Targets: efficiency >= 0.85, overhead <= 1 s per instance, add_scalar <= 1 µs. For scale, the same
bare fits in two worker processes give the efficiency the hardware allows; the overhead is split
into Snakemake's planning (a dry run) and the start-up of a fit job (8 one-step fits).

    python tests/benchmarks/bench_parallel.py [--budget STEPS] [--agent IMPORT_PATH] [--env ID]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from rlpipe.core import tasks  # noqa: E402
from rlpipe.core.fitting import build_agent  # noqa: E402
from rlpipe.io.paths import StudyPaths  # noqa: E402
from rlpipe.runtime.writer import DefaultWriter  # noqa: E402
from rlpipe.spec.experiment import validate_study  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
N_INSTANCES = 8


def study_config(agent: str, env: str, budget: int) -> dict:
    return {"seed": 0, "experiments": {"bench": {
        "agent": agent, "train_env": env, "fit_budget": budget, "n_fit": N_INSTANCES, "instances_per_job": 1,
        "writer": {"print_log": False}, "eval_kwargs": {"eval_horizon": 500, "n_simulations": 2},
    }}}


def fit_bare(config: dict, instance: int) -> None:
    """Fit one instance in this process: no checkpoints, no files."""
    study = validate_study(config)
    task = tasks.fit_task(study.experiment("bench"), study.root, instance)
    agent = build_agent(task, Path(tempfile.gettempdir()), {"print_log": False})
    agent.fit(task.fit_budget, **task.fit_kwargs)


def time_bare(config: dict) -> float:
    """Fit every instance in this process, one after the other."""
    start = time.perf_counter()
    for instance in range(N_INSTANCES):
        fit_bare(config, instance)
    return time.perf_counter() - start


def time_bare_side_by_side(config: dict) -> float:
    """Fit the instances bare in two worker processes: what the hardware allows two parallel fits."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(fit_bare, [config] * 2, [0, 1]))  # start-up of the workers, not timed
        start = time.perf_counter()
        list(pool.map(fit_bare, [config] * N_INSTANCES, range(N_INSTANCES)))
        return time.perf_counter() - start


def time_pipeline(config: dict, workdir: Path, targets: list[str], dry_run: bool = False) -> float:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", "2", *targets, "--quiet", "all",
               *(["--dry-run"] if dry_run else [])]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def time_add_scalar(n: int = 1_000_000) -> float:
    writer = DefaultWriter("bench", print_log=False)
    start = time.perf_counter()
    for step in range(n):
        writer.add_scalar("loss", 0.5, step)
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="rlpipe.agents.PolicyGradientAgent")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--budget", type=int, default=80_000, help="fit budget per instance (about 5 s of fitting)")
    args = parser.parse_args()
    config = study_config(args.agent, args.env, args.budget)

    bare = time_bare(config)
    side_by_side = time_bare_side_by_side(config)
    with tempfile.TemporaryDirectory() as tmp:
        experiment = StudyPaths().experiment("bench")
        fit_targets = [str(experiment.batch("fit", i).record) for i in range(N_INSTANCES)]  # jobs of one instance
        pipeline = time_pipeline(config, Path(tmp), fit_targets)
    with tempfile.TemporaryDirectory() as tmp:
        full = time_pipeline(config, Path(tmp), [])
    with tempfile.TemporaryDirectory() as tmp:
        planning = time_pipeline(config, Path(tmp), fit_targets, dry_run=True)
    with tempfile.TemporaryDirectory() as tmp:
        one_step = time_pipeline(study_config(args.agent, args.env, 1), Path(tmp), fit_targets)

    efficiency = bare / (2 * pipeline)
    overhead = (2 * pipeline - bare) / N_INSTANCES
    print(f"agent {args.agent} on {args.env}, budget {args.budget}, {N_INSTANCES} instances")
    print(f"bare sequential fits:          {bare:7.2f} s ({bare / N_INSTANCES:.2f} s per instance)")
    print(f"snakemake --cores 2 (fit):     {pipeline:7.2f} s")
    print(f"bare fits in 2 processes:      {side_by_side:7.2f} s (efficiency {bare / (2 * side_by_side):.3f}: the hardware's)")
    print(f"parallel efficiency:           {efficiency:7.3f}   (target >= 0.85)")
    print(f"overhead per instance:         {overhead:7.3f} s (target <= 1 s)")
    print(f"whole pipeline (fit, evaluate, aggregate, compare): {full:.2f} s")
    print(f"snakemake planning (dry run):  {planning:7.2f} s")
    print(f"fit job start-up:              {2 * (one_step - planning) / N_INSTANCES:7.3f} s per job (8 one-step fits)")
    print(f"add_scalar:                    {time_add_scalar() * 1e6:7.3f} µs per call (target <= 1 µs)")


if __name__ == "__main__":
    main()
