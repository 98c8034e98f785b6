"""Benchmark: Stable-Baselines3 agents through the pipeline, against SB3 called directly.

The pipeline: config/deep.yaml's `ppo_cartpole` (PPO on CartPole-v1, 100,000 steps) and `sac_pendulum` (SAC on
Pendulum-v1, 20,000 steps), 4 seeds each, one instance per job, fitted then evaluated (20 episodes of the
deterministic policy per instance) by `snakemake --cores 2`. Targets: mean evaluation return >= 475 (PPO) and
>= -200 (SAC) over the 4 seeds.

Directly: the same fits as a script would write them, `PPO("MlpPolicy", gym.make(env), seed=s, **kwargs).learn(n)` with
the same hyperparameters, torch on one thread as in the pipeline's jobs, in 2 processes that each take the next fit in
the config's order when they finish one (the order and scheduling of the pipeline's jobs, which run experiment by
experiment in the config's order); their start-up and imports are timed, as a script pays them.

Reported: wall time per 10,000 steps of each fit (the pipeline's fit.json `wall_time_s`: building the agent, its
chunks and checkpoints; directly: building and `learn`), and the overhead of the pipeline's fit jobs over the direct
fits: (snakemake wall of the fit jobs) / (wall of the direct fits) - 1, target <= 5%: the jobs' start-up,
checkpoints, writer and Snakemake's planning. CPU seconds are reported too, each fit's and each side's in all
(Snakemake and its jobs included, from getrusage): on a shared machine the wall clock also measures the other users'
work, the CPU time much less.

    python tests/benchmarks/bench_sb3.py [--ppo-budget N] [--sac-budget N] [--seeds 4] [--json out.json] [--keep]
                                       [--direct-first]

The machine is shared and noisy: compare ratios taken in one run.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEEP = REPO / "config" / "deep.yaml"
# experiment of config/deep.yaml -> (target mean evaluation return, SB3 algorithm)
EXPERIMENTS = {"ppo_cartpole": (475.0, "PPO"), "sac_pendulum": (-200.0, "SAC")}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def study_config(budgets: dict[str, int], seeds: int, eval_episodes: int) -> dict[str, Any]:
    """config/deep.yaml's benchmarked experiments, with these budgets (the schedules' n_timesteps follows the budget)
    and seeds, one instance per job."""
    deep = yaml.safe_load(DEEP.read_text())
    experiments = {}
    for name, budget in budgets.items():
        spec = dict(deep["experiments"][name])
        spec.pop("optimize", None)
        init_kwargs = dict(spec.get("init_kwargs") or {})
        if "n_timesteps" in init_kwargs:
            init_kwargs["n_timesteps"] = budget
        spec.update(init_kwargs=init_kwargs, fit_budget=budget, n_fit=seeds, instances_per_job=1,
                    eval_kwargs={**spec.get("eval_kwargs", {}), "n_simulations": eval_episodes},
                    writer={"print_log": False})
        experiments[name] = spec
    return {"seed": deep["seed"], "report": {"bootstrap_samples": 1000}, "experiments": experiments}


# ---------------------------------------------------------------------------------------------------- SB3 directly
def direct_fit(algo: str, env_id: str, init_kwargs: dict[str, Any], budget: int, seed: int) -> dict[str, float]:
    """One fit by SB3 alone: the seconds to build the model and learn."""
    import gymnasium as gym
    import stable_baselines3
    import torch
    from stable_baselines3.common.utils import LinearSchedule

    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    kwargs = {key: value for key, value in init_kwargs.items() if key != "n_timesteps"}
    for key in ("learning_rate", "clip_range"):  # rl-baselines3-zoo's "lin_<start>": linear down to 0 over learn()
        if isinstance(kwargs.get(key), str):
            kwargs[key] = LinearSchedule(float(kwargs[key].split("_", 1)[1]), 0.0, 1.0)
    model = getattr(stable_baselines3, algo)("MlpPolicy", gym.make(env_id), seed=seed, device="cpu", **kwargs)
    model.learn(budget)
    return {"fit_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu, "env_steps": int(model.num_timesteps)}


def run_direct(config: dict[str, Any], cores: int, folder: Path) -> dict[str, Any]:
    """Every instance's fit by SB3 alone, in ``cores`` processes side by side that take the next fit in the config's
    order whenever they finish one: the order and the list scheduling of the pipeline's jobs (rw.job_priority)."""
    jobs = [[EXPERIMENTS[name][1], spec["train_env"], spec.get("init_kwargs") or {}, spec["fit_budget"], seed, name]
            for name, spec in config["experiments"].items() for seed in range(spec["n_fit"])]
    claims = folder / "claims"
    claims.mkdir(parents=True)
    argument = json.dumps({"jobs": jobs, "claims": str(claims)})
    start, cpu = time.perf_counter(), children_cpu()
    workers = [subprocess.Popen([sys.executable, __file__, "--direct-worker", argument], stdout=subprocess.PIPE, text=True)
               for _ in range(min(cores, len(jobs)))]
    outputs = [worker.communicate()[0] for worker in workers]
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if any(worker.returncode for worker in workers):
        raise RuntimeError("a direct SB3 fit failed (its error is above)")
    fits = [fit for output in outputs for fit in json.loads(output.splitlines()[-1])]
    per_experiment = {name: [fit for fit in fits if fit["experiment"] == name] for name in config["experiments"]}
    return {"wall_s": wall, "cpu_s": cpu, "fits": per_experiment}


def direct_worker(work: dict[str, Any]) -> None:
    """The child process of :func:`run_direct`: claims the next unclaimed fit (creating its claim file is atomic) and
    runs it, until none is left; the results are its last line."""
    fits = []
    for index, job in enumerate(work["jobs"]):
        try:
            os.close(os.open(Path(work["claims"]) / str(index), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        fits.append({**direct_fit(*job[:5]), "experiment": job[5]})
    print(json.dumps(fits), flush=True)


# ---------------------------------------------------------------------------------------------------- the pipeline
def children_cpu() -> float:
    """CPU seconds (user + system) of the child processes waited for so far, and of theirs (Snakemake's jobs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snakemake(workdir: Path, cores: int, targets: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of a Snakemake run (its jobs' CPU included)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), *targets, "--quiet", "all"]
    start, cpu = time.perf_counter(), children_cpu()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - start, children_cpu() - cpu


def run_pipeline(config: dict[str, Any], workdir: Path, cores: int) -> dict[str, Any]:
    from rlpipe.io.paths import StudyPaths

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    study = StudyPaths(workdir / "results")
    fit_targets = [str(study.experiment(name).batch("fit", i).record.relative_to(workdir))
                   for name, spec in config["experiments"].items() for i in range(spec["n_fit"])]
    fit_wall, fit_cpu = snakemake(workdir, cores, fit_targets)
    rest_wall, _ = snakemake(workdir, cores, [])  # evaluate, aggregate, compare
    experiments = {}
    for name, spec in config["experiments"].items():
        paths = study.experiment(name)
        records = [json.loads(paths.instance(i).fit_record.read_text()) for i in range(spec["n_fit"])]
        summary = json.loads(paths.summary.read_text())
        experiments[name] = {"fits": [{"fit_s": r["wall_time_s"], "cpu_s": r["cpu_time_s"], "env_steps": r["total_env_steps"]}
                                      for r in records],
                             "instance_scores": list(summary["per_instance"].values()), "mean_score": summary["mean"]}
    return {"fit_wall_s": fit_wall, "fit_cpu_s": fit_cpu, "rest_wall_s": rest_wall, "experiments": experiments}


def per_10k(fits: list[dict[str, float]], budget: int, key: str = "fit_s") -> float:
    """Mean seconds (wall, or CPU with ``key="cpu_s"``) of a fit per 10,000 steps of its budget."""
    return sum(fit[key] for fit in fits) / len(fits) / budget * 10_000


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--ppo-budget", type=int, default=100_000, help="PPO's environment steps (default 100,000)")
    parser.add_argument("--sac-budget", type=int, default=20_000, help="SAC's environment steps (default 20,000)")
    parser.add_argument("--seeds", type=int, default=4, help="instances per experiment (default 4)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="evaluation episodes per instance (default 20)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores, and processes of the direct fits")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the pipeline's folder (its path is printed)")
    parser.add_argument("--direct-first", action="store_true",
                        help="fit directly first, then through the pipeline (a machine whose speed drifts favours the "
                             "side that runs in its faster half: compare a run of each order)")
    parser.add_argument("--direct-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.direct_worker:
        direct_worker(json.loads(args.direct_worker))
        return {}

    budgets = {"ppo_cartpole": args.ppo_budget, "sac_pendulum": args.sac_budget}
    config = study_config(budgets, args.seeds, args.eval_episodes)
    root = Path(tempfile.mkdtemp(prefix="bench_sb3_"))
    log(f"working in {root}")
    try:
        if args.direct_first:
            log("SB3 directly")
            direct = run_direct(config, args.cores, root)
        log("pipeline: snakemake --cores %d" % args.cores)
        pipeline = run_pipeline(config, root / "study", args.cores)
        if not args.direct_first:
            log("SB3 directly")
            direct = run_direct(config, args.cores, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    results: dict[str, Any] = {"command": [Path(sys.executable).name, *sys.argv[:1], *(argv or sys.argv[1:])],
                               "machine": {"cpus": multiprocessing.cpu_count(), "python": platform.python_version()},
                               "cores": args.cores, "seeds": args.seeds, "direct_first": args.direct_first,
                               "experiments": {}}
    for name, budget in budgets.items():
        target = EXPERIMENTS[name][0]
        ours = pipeline["experiments"][name]
        results["experiments"][name] = {
            "budget": budget, "target": target, "mean_score": ours["mean_score"], "instance_scores": ours["instance_scores"],
            "reached": ours["mean_score"] >= target, "env_steps": [fit["env_steps"] for fit in ours["fits"]],
            "pipeline_s_per_10k": per_10k(ours["fits"], budget), "direct_s_per_10k": per_10k(direct["fits"][name], budget),
            "pipeline_cpu_s_per_10k": per_10k(ours["fits"], budget, "cpu_s"),
            "direct_cpu_s_per_10k": per_10k(direct["fits"][name], budget, "cpu_s")}
    results.update(pipeline_fit_wall_s=pipeline["fit_wall_s"], pipeline_fit_cpu_s=pipeline["fit_cpu_s"],
                   pipeline_rest_wall_s=pipeline["rest_wall_s"], direct_wall_s=direct["wall_s"], direct_cpu_s=direct["cpu_s"],
                   overhead=pipeline["fit_wall_s"] / direct["wall_s"] - 1,
                   cpu_overhead=pipeline["fit_cpu_s"] / direct["cpu_s"] - 1)

    for name, row in results["experiments"].items():
        scores = ", ".join(f"{score:.1f}" for score in row["instance_scores"])
        print(f"{name}: mean evaluation return {row['mean_score']:.1f} over {args.seeds} seeds ({scores}); "
              f"target >= {row['target']:g}: {'reached' if row['reached'] else 'MISSED'}")
        print(f"  per 10k steps: pipeline {row['pipeline_s_per_10k']:.2f} s wall ({row['pipeline_cpu_s_per_10k']:.2f} s CPU), "
              f"SB3 directly {row['direct_s_per_10k']:.2f} s wall ({row['direct_cpu_s_per_10k']:.2f} s CPU)")
    print(f"fit jobs through snakemake --cores {args.cores}: {results['pipeline_fit_wall_s']:.1f} s wall, "
          f"{results['pipeline_fit_cpu_s']:.1f} s CPU; the same fits by SB3 directly in {args.cores} processes: "
          f"{results['direct_wall_s']:.1f} s wall, {results['direct_cpu_s']:.1f} s CPU")
    print(f"pipeline overhead: {100 * results['overhead']:.1f}% of wall time (target <= 5%), "
          f"{100 * results['cpu_overhead']:.1f}% of CPU time; then evaluate, aggregate, compare: "
          f"{results['pipeline_rest_wall_s']:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
