"""Benchmark: planning a sweep of 100,000 cheap instances, and the pipeline's overhead per cheap instance.

Plan: `snakemake -n --quiet` on configs of 100,000 instances of RandomAgent (fit_budget 100, eval of 10 episodes
of at most 100 steps), with the config's default instances_per_job ("auto"): (a) one experiment of 100,000 seeds,
(b) a sweep of 100 experiments (10 envs × 10 budgets) × 1,000 seeds, (c) a sweep of 1,000 experiments (× 10 eval
gammas) × 100 seeds, with "auto" and with `instances_per_job: 100`. Reported: wall time, CPU, peak RSS of the
Snakemake process, and the jobs it plans. Targets for (a) and (b): under 15 s and under 1 GB on 2 cores.

Overhead: one experiment of n cheap instances (1,000 and 10,000) run for real by `snakemake --cores 2` (and with
`--scheduler greedy` at 1,000), against the bare work: the same fit and evaluate batches run one after another in
one Python process by the library (rlpipe.core.batches, writing the same files). Overhead per instance =
(pipeline wall × cores − bare wall) / n, in core-seconds (target <= 0.05): Snakemake's planning, each job's
start-up, the aggregate and compare jobs, and idle cores. The pipeline's wall is split into phases from the files'
times (planning and the first start-up, the fit/evaluate jobs, aggregate, compare and exit).

    python tests/benchmarks/bench_sweeps.py [--only plan|overhead] [--sizes 1000,10000] [--json out.json] [--keep]

The machine is shared and noisy: compare ratios taken in one run. Times come from time.perf_counter around each
child process; CPU and peak RSS from os.wait4 (the rusage of the child and of the jobs it waited for, as
/usr/bin/time reports it).
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
AGENT = "rlpipe.agents.RandomAgent"
EVAL_KWARGS = {"eval_horizon": 100, "n_simulations": 10}
FIT_BUDGET = 100
# The axes of the sweeps: 10 envs (and variants) × 10 fit budgets × 10 evaluation gammas; a sweep of k experiments
# takes the first values of each axis (see grid_axes).
ENVS = {
    "fl": "FrozenLake-v1",
    "fldry": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}},
    "flmap8": {"id": "FrozenLake-v1", "kwargs": {"map_name": "8x8"}},
    "fl8": "FrozenLake8x8-v1",
    "fl8dry": {"id": "FrozenLake8x8-v1", "kwargs": {"is_slippery": False}},
    "cliff": "CliffWalking-v1",
    "cliffslip": {"id": "CliffWalking-v1", "kwargs": {"is_slippery": True}},
    "taxi": "Taxi-v4",
    "taxirain": {"id": "Taxi-v4", "kwargs": {"is_rainy": True}},
    "taxifickle": {"id": "Taxi-v4", "kwargs": {"fickle_passenger": True}},
}
BUDGETS = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
GAMMAS = [0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0]
# experiments x seeds[:instances_per_job]: (a), (b), (c) with auto, (c) with 100 instances per job
DEFAULT_PLAN_SHAPES = "1x100000,100x1000,1000x100,1000x100:100"
PLAN_TARGET_S, PLAN_TARGET_MB, OVERHEAD_TARGET = 15.0, 1024.0, 0.05
RECORD = re.compile(r"(fit|evaluate)-\d+\.json")  # a batch job's record (not its .progress.json)
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------- configs
def grid_axes(n_experiments: int) -> tuple[int, int, int]:
    """How many values of ENVS, BUDGETS and GAMMAS a sweep of ``n_experiments`` takes (fewest axes first)."""
    for gammas in range(1, len(GAMMAS) + 1):
        for budgets in range(1, len(BUDGETS) + 1):
            envs, rest = divmod(n_experiments, gammas * budgets)
            if not rest and 1 <= envs <= len(ENVS):
                return envs, budgets, gammas
    raise ValueError(f"{n_experiments} experiments is not envs × budgets × gammas with at most 10 of each")


def study_config(n_experiments: int, n_fit: int, instances_per_job: int | str = "auto") -> dict[str, Any]:
    """One experiment ``bench`` of RandomAgent on FrozenLake-v1, or a sweep ``grid`` of ``n_experiments`` of them."""
    shared: dict[str, Any] = {"agent": AGENT, "n_fit": n_fit, "eval_kwargs": dict(EVAL_KWARGS),
                              "writer": {"print_log": False}}
    if instances_per_job != "auto":
        shared["instances_per_job"] = instances_per_job
    if n_experiments == 1:
        return {"seed": 0, "experiments": {"bench": {**shared, "train_env": "FrozenLake-v1", "fit_budget": FIT_BUDGET}}}
    envs, budgets, gammas = grid_axes(n_experiments)
    axes = {"train_env": dict(list(ENVS.items())[:envs]), "fit_budget": BUDGETS[:budgets],
            "eval_kwargs.gamma": GAMMAS[:gammas]}
    grid = {key: values for key, values in axes.items() if len(values) > 1}  # an axis of one value is a shared key
    if envs == 1:
        shared["train_env"] = ENVS["fl"]
    if budgets == 1:
        shared["fit_budget"] = FIT_BUDGET
    return {"seed": 0, "sweeps": {"grid": {"grid": grid, **shared}}}


def write_config(config: dict[str, Any], workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(json.dumps(config, indent=1) + "\n")  # JSON is YAML: no yaml import needed here
    return path


def _rlpipe() -> None:
    """Put this checkout's rlpipe first on sys.path (as the Snakefile does), before importing it."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def planned_jobs(config: dict[str, Any]) -> dict[str, int]:
    """The jobs the Snakefile plans for ``config``, counted from rlpipe's own batching (tasks.job_batches): per
    experiment, a fit and an evaluate job per batch and an aggregate job; then compare, provenance and all."""
    _rlpipe()
    from rlpipe.core.tasks import job_batches
    from rlpipe.spec.experiment import validate_study

    study = validate_study(config)
    batches = sum(len(job_batches(spec)) for spec in study.experiments.values())
    jobs = {"fit": batches, "evaluate": batches, "aggregate": len(study.experiments), "compare": 1, "provenance": 1,
            "all": 1}
    return {**jobs, "total": sum(jobs.values())}


def job_stats(config: dict[str, Any], env: dict[str, str]) -> dict[str, int]:
    """Snakemake's own job stats for ``config`` (an untimed dry run in a scratch folder, which prints them)."""
    with tempfile.TemporaryDirectory(prefix="bench_sweeps_stats_") as tmp:
        path = write_config(config, Path(tmp))
        out = subprocess.run(snakemake_command(Path(tmp), path, 2, "-n", "--quiet", "rules", "reason", "host"),
                             capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"snakemake -n failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    text = out.stdout + out.stderr
    block = text[text.index("Job stats:"):]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)\s*$", block.split("\n\n")[0], re.M)}


# ---------------------------------------------------------------------------------------------- child processes
@dataclass
class Measured:
    wall_s: float
    cpu_s: float  # user + system of the child and every process it waited for (Snakemake's jobs)
    peak_rss_mb: float  # the largest resident set of the child or of any process it waited for
    returncode: int
    log: Path


def snakemake_command(workdir: Path, configfile: Path, cores: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), "--configfile",
            str(configfile), "--cores", str(cores), *extra]


def measure(command: list[str], log_path: Path, env: dict[str, str], progress: Any = None,
            every: float = 30.0) -> Measured:
    """Run ``command`` (output to ``log_path``), timed by perf_counter; its rusage from os.wait4. ``progress``, a
    callable giving a line, is printed every ``every`` seconds while it runs."""
    done = threading.Event()

    def report() -> None:
        while not done.wait(every):
            log(f"  ... {progress()}")

    with open(log_path, "wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        if progress is not None:
            threading.Thread(target=report, daemon=True).start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        done.set()
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode, log_path)


def checked(result: Measured, what: str) -> Measured:
    if result.returncode:
        tail = result.log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"{what} failed (exit {result.returncode}); end of {result.log}:\n{tail}")
    return result


def child_env() -> dict[str, str]:
    return {**os.environ, **THREAD_ENV}


# ------------------------------------------------------------------------------------------------------ planning
@dataclass
class PlanRow:
    shape: str
    experiments: int
    seeds: int
    instances: int
    instances_per_job: str
    jobs: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    snakemake_jobs: int | None = None  # from Snakemake's job stats (--check-jobs)
    jobs_by_rule: dict[str, int] = field(default_factory=dict)
    meets_target: bool = False


def parse_shape(text: str) -> tuple[int, int, int | str]:
    match = re.fullmatch(r"(\d+)x(\d+)(?::(\d+|auto))?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"a plan shape is EXPERIMENTSxSEEDS[:INSTANCES_PER_JOB], not {text!r}")
    ipj = match[3] or "auto"
    return int(match[1]), int(match[2]), ipj if ipj == "auto" else int(ipj)


def bench_plan(shape: tuple[int, int, int | str], root: Path, cores: int, check_jobs: bool) -> PlanRow:
    n_experiments, seeds, ipj = shape
    label = f"{n_experiments} exp × {seeds} seeds" + ("" if ipj == "auto" else f", {ipj}/job")
    config = study_config(n_experiments, seeds, ipj)
    workdir = root / f"plan-{n_experiments}x{seeds}-{ipj}"
    configfile = write_config(config, workdir)
    log(f"plan {label}: snakemake -n")
    result = checked(measure(snakemake_command(workdir, configfile, cores, "-n", "--quiet"),
                             workdir / "snakemake.out", child_env()), f"planning {label}")
    jobs = planned_jobs(config)
    per_job = "auto" if ipj == "auto" else str(ipj)
    if ipj == "auto":
        per_job += f" ({math.ceil(seeds / _auto_jobs())})"
    row = PlanRow(label, n_experiments, seeds, n_experiments * seeds, per_job, jobs["total"], result.wall_s,
                  result.cpu_s, result.peak_rss_mb, jobs_by_rule=jobs)
    row.meets_target = row.wall_s < PLAN_TARGET_S and row.peak_rss_mb < PLAN_TARGET_MB
    if check_jobs:
        stats = job_stats(config, child_env())
        row.snakemake_jobs = stats.get("total")
        if stats != jobs:
            log(f"  WARNING: Snakemake plans {stats}, rlpipe's batching counts {jobs}")
    log(f"  {row.wall_s:.2f} s, {row.cpu_s:.2f} s CPU, {row.peak_rss_mb:.0f} MB, {row.jobs} jobs")
    return row


def _auto_jobs() -> int:
    _rlpipe()
    from rlpipe.core.tasks import AUTO_JOBS_PER_EXPERIMENT
    return AUTO_JOBS_PER_EXPERIMENT


# ------------------------------------------------------------------------------------------------------ overhead
@dataclass
class OverheadRow:
    instances: int
    scheduler: str
    instances_per_job: str
    jobs: int
    pipeline_s: float
    bare_s: float
    overhead_per_instance: float  # (pipeline × cores − bare) / n, core-seconds
    pipeline_cpu_s: float  # Snakemake and all its jobs
    bare_cpu_s: float
    cpu_overhead_per_instance: float  # (pipeline CPU − bare CPU) / n, CPU seconds
    peak_rss_mb: float
    phases: dict[str, float] = field(default_factory=dict)
    meets_target: bool = False


def bare_work(config_path: Path, out: Path) -> dict[str, Any]:
    """The fit then evaluate batches of every experiment of the config, in this process, as its jobs run them
    (same batches, same run settings, same files under ``out/results``). Times only the work, not the imports."""
    _rlpipe()
    started = time.perf_counter()
    from rlpipe.core import tasks
    from rlpipe.core.batches import evaluate_batch, fit_batch
    from rlpipe.io.paths import StudyPaths
    from rlpipe.spec.experiment import validate_study

    study = validate_study(json.loads(config_path.read_text()))
    results = StudyPaths(out / "results")
    imported = time.perf_counter()
    clock, cpu = time.perf_counter(), time.process_time()
    for name, spec in study.experiments.items():
        paths, run = results.experiment(name), tasks.run_settings(spec)
        n_batches = len(tasks.job_batches(spec))
        for stage, work in (("fit", fit_batch), ("evaluate", evaluate_batch)):
            for index in range(n_batches):
                work(tasks.task_batch(stage, spec, study.root, index), paths, index, run)
    return {"wall_s": time.perf_counter() - clock, "cpu_s": time.process_time() - cpu,
            "startup_s": imported - started}


def phases(workdir: Path, experiment: str, wall: float, launched: float) -> dict[str, float]:
    """Where the pipeline's wall went, from its files' modification times (``launched``: epoch time at launch):
    planning and the first job's start-up, the fit and evaluate jobs (first start to last record), the jobs'
    own work (the sum of their records' wall times), aggregate (with its start-up) and compare and exit."""
    folder = workdir / "results" / experiment
    records = [(path.stat().st_mtime, json.loads(path.read_text())) for path in (folder / "batches").iterdir()
               if RECORD.fullmatch(path.name)]
    if not records:
        return {}
    first_start = min(mtime - record["wall_time_s"] for mtime, record in records)
    last_record = max(mtime for mtime, _ in records)
    summary = (folder / "summary.json").stat().st_mtime
    return {
        "plan_and_first_start_s": first_start - launched,
        "fit_evaluate_jobs_s": last_record - first_start,
        "jobs_own_work_s": sum(record["wall_time_s"] for _, record in records),
        "jobs_own_cpu_s": sum(record["cpu_time_s"] for _, record in records),
        "aggregate_s": summary - last_record,
        "compare_and_exit_s": launched + wall - summary,
    }


def batch_records(workdir: Path) -> tuple[int, int]:
    """How many fit and evaluate batches of the experiment ``bench`` under ``workdir`` have their record."""
    batches = workdir / "results" / "bench" / "batches"
    stages = [RECORD.fullmatch(name) for name in (os.listdir(batches) if batches.is_dir() else [])]
    return tuple(sum(1 for match in stages if match and match[1] == stage) for stage in ("fit", "evaluate"))


def batch_progress(what: str, workdir: Path, jobs: dict[str, int]) -> Any:
    """A progress line: how many of the fit and evaluate batches are done."""
    def line() -> str:
        fits, evals = batch_records(workdir)
        return f"{what}: {fits}/{jobs['fit']} fit and {evals}/{jobs['evaluate']} evaluate batches done"
    return line


def bench_overhead(n: int, schedulers: list[str], root: Path, cores: int, ipj: int | str) -> list[OverheadRow]:
    config = study_config(1, n, ipj)
    jobs = planned_jobs(config)
    bare_dir = root / f"bare-{n}"
    configfile = write_config(config, bare_dir)
    log(f"overhead {n} instances: bare work in one process ({jobs['fit']} fit and {jobs['evaluate']} evaluate batches)")
    command = [sys.executable, str(Path(__file__).resolve()), "--bare-worker", str(configfile), str(bare_dir)]
    out = checked(measure(command, bare_dir / "bare.out", child_env(), batch_progress("bare", bare_dir, jobs)),
                  f"bare work of {n} instances")
    bare = json.loads(out.log.read_text().strip().splitlines()[-1])
    log(f"  bare: {bare['wall_s']:.1f} s ({bare['cpu_s']:.1f} s CPU)")
    rows = []
    for scheduler in schedulers:
        workdir = root / f"pipeline-{n}-{scheduler}"
        configfile = write_config(config, workdir)
        extra = ["--quiet"] + (["--scheduler", scheduler] if scheduler != "default" else [])
        log(f"overhead {n} instances: snakemake --cores {cores}" + ("" if scheduler == "default" else f" --scheduler {scheduler}"))
        launched = time.time()
        result = checked(measure(snakemake_command(workdir, configfile, cores, *extra), workdir / "snakemake.out",
                                 child_env(), batch_progress(f"pipeline ({scheduler})", workdir, jobs)),
                         f"pipeline of {n} instances")
        if batch_records(workdir) != (jobs["fit"], jobs["evaluate"]):
            log(f"  WARNING: {batch_records(workdir)} fit and evaluate batch records, {jobs} jobs planned")
        overhead = (result.wall_s * cores - bare["wall_s"]) / n
        row = OverheadRow(n, scheduler, str(ipj), jobs["total"],
                          result.wall_s, bare["wall_s"], overhead, result.cpu_s, bare["cpu_s"],
                          (result.cpu_s - bare["cpu_s"]) / n, result.peak_rss_mb,
                          phases(workdir, "bench", result.wall_s, launched), overhead <= OVERHEAD_TARGET)
        log(f"  pipeline: {row.pipeline_s:.1f} s ({row.pipeline_cpu_s:.1f} s CPU): "
            f"overhead {row.overhead_per_instance:.4f} core-s per instance")
        rows.append(row)
    return rows


# -------------------------------------------------------------------------------------------------------- output
def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if k else cell.ljust(w) for k, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def plan_table(rows: list[PlanRow]) -> str:
    head = ["plan (snakemake -n)", "instances", "per job", "jobs", "wall s", "CPU s", "peak MB", "<15 s, <1 GB"]
    return table([head] + [[r.shape, f"{r.instances:,}", r.instances_per_job, f"{r.jobs:,}", f"{r.wall_s:.2f}",
                            f"{r.cpu_s:.2f}", f"{r.peak_rss_mb:.0f}", "yes" if r.meets_target else "NO"] for r in rows])


def overhead_table(rows: list[OverheadRow], cores: int) -> str:
    head = ["overhead", "scheduler", "jobs", "pipeline s", "bare s", f"overhead/inst (<= {OVERHEAD_TARGET})",
            "CPU pipe/bare s", "CPU ovh/inst", "plan+start s", "jobs s", "aggregate s", "compare+exit s"]
    body = []
    for r in rows:
        p = r.phases
        body.append([f"{r.instances:,} instances", r.scheduler, str(r.jobs), f"{r.pipeline_s:.1f}", f"{r.bare_s:.1f}",
                     f"{r.overhead_per_instance:.4f} " + ("ok" if r.meets_target else "MISSED"),
                     f"{r.pipeline_cpu_s:.0f}/{r.bare_cpu_s:.0f}", f"{r.cpu_overhead_per_instance:.4f}",
                     *(f"{p[k]:.1f}" if k in p else "-" for k in ("plan_and_first_start_s", "fit_evaluate_jobs_s",
                                                                  "aggregate_s", "compare_and_exit_s"))])
    return table([head] + body) + f"\n(overhead per instance = (pipeline s × {cores} cores − bare s) / instances)"


def machine() -> dict[str, Any]:
    try:
        from importlib.metadata import version
        snakemake = version("snakemake")
    except Exception:  # noqa: BLE001 - informative only
        snakemake = "?"
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "snakemake": snakemake, "repo": str(REPO)}


def parse_sizes(text: str) -> list[int]:
    return [int(s) for s in text.replace(" ", "").split(",") if s]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--only", choices=["plan", "overhead"], help="run only the planning or the overhead benchmark")
    parser.add_argument("--sizes", type=parse_sizes, default=[1000, 10000],
                        help="instances of the overhead runs, comma-separated (default 1000,10000)")
    parser.add_argument("--greedy-sizes", type=parse_sizes, default=[1000],
                        help="sizes also run with --scheduler greedy (default 1000; '' for none)")
    parser.add_argument("--plan-shapes", type=lambda t: [parse_shape(s) for s in t.split(",") if s],
                        default=DEFAULT_PLAN_SHAPES,
                        help=f"EXPERIMENTSxSEEDS[:INSTANCES_PER_JOB],... to plan (default {DEFAULT_PLAN_SHAPES})")
    parser.add_argument("--instances-per-job", default="auto",
                        help="instances_per_job of the overhead runs (default auto, the config's default)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--check-jobs", action="store_true",
                        help="also count the planned jobs with an untimed Snakemake dry run that prints its job stats")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (their path is printed)")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--bare-worker", nargs=2, metavar=("CONFIG", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.bare_worker:  # the child process of the bare work: its result is the last line of stdout
        print(json.dumps(bare_work(Path(args.bare_worker[0]), Path(args.bare_worker[1]))), flush=True)
        return {}
    shapes = args.plan_shapes  # argparse converts the default string too
    ipj = args.instances_per_job if args.instances_per_job == "auto" else int(args.instances_per_job)
    root = Path(tempfile.mkdtemp(prefix="bench_sweeps_"))
    log(f"working in {root}")
    results: dict[str, Any] = {"command": [Path(sys.executable).name, *sys.argv], "machine": machine(),
                               "cores": args.cores, "plan": [], "overhead": []}
    try:
        if args.only in (None, "plan"):
            for shape in shapes:
                results["plan"].append(asdict(bench_plan(shape, root, args.cores, args.check_jobs)))
        if args.only in (None, "overhead"):
            for n in args.sizes:
                schedulers = ["default"] + (["greedy"] if n in args.greedy_sizes else [])
                results["overhead"] += [asdict(row) for row in bench_overhead(n, schedulers, root, args.cores, ipj)]
    finally:
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    print(f"rlpipe sweep benchmark: {results['machine']['platform']}, {results['machine']['cpus']} CPUs, "
          f"python {results['machine']['python']}, snakemake {results['machine']['snakemake']}, --cores {args.cores}")
    if results["plan"]:
        print(plan_table([PlanRow(**row) for row in results["plan"]]))
    if results["overhead"]:
        print(overhead_table([OverheadRow(**row) for row in results["overhead"]], args.cores))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results written to {args.json}")
    return results


if __name__ == "__main__":
    main()
