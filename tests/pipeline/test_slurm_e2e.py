"""End-to-end on a real SLURM: the tiny study through `workflow/profiles/slurm` gives the numbers of a local run.

The module starts a single-node SLURM cluster on this machine (tests/slurm/slurm_cluster.sh: Debian packages, no
accounting, no systemd) and stops it at the end. It needs root and apt/dpkg and skips, saying why, without them;
``RLPIPE_REQUIRE_SLURM=1`` turns such a skip into a failure. The profile is used as shipped: it must work where
accounting (sacct) is off.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from snakemake_runner import SNAKEFILE, TESTS, TINY, env_with_tests_on_pythonpath, job_counts, ok, run_snakemake

pytestmark = pytest.mark.e2e

CLUSTER = TESTS / "slurm" / "slurm_cluster.sh"
PROFILE = TESTS.parent / "workflow" / "profiles" / "slurm"
SLURMCTLD_LOG = Path("/var/log/slurm/slurmctld.log")  # SlurmctldLogFile in the slurm.conf that slurm_cluster.sh writes
HARD_TIMEOUT = 420  # seconds per Snakemake run, then SIGKILL: a run that lost track of its jobs waits forever

# TINY plus a tuned experiment whose two Optuna workers run as two SLURM jobs at once on one journal. Random search:
# trial t's parameters depend only on t, so the trials are those of a local run whichever worker ran which.
STUDY = copy.deepcopy(TINY)
STUDY["experiments"]["tuned"] = {
    "agent": "rlpipe.agents.QLearningAgent",
    "train_env": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": True}},
    "init_kwargs": {"learning_rate": 0.1, "epsilon_decay_steps": 500, "gamma": 0.9},
    "fit_budget": 1500,
    "n_fit": 2,
    "eval_kwargs": {"eval_horizon": 50, "n_simulations": 10, "gamma": 0.9},
    "writer": {"print_log": False},
    "optimize": {
        "n_trials": 6,
        "n_optuna_workers": 2,
        "n_fit": 2,
        "sampler_method": "random",
        "search_space": {
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.9},
            "epsilon_decay_steps": {"type": "int", "low": 100, "high": 3000},
        },
    },
}
INSTANCE_FILES = ("agent.ckpt", "writer.parquet", "fit.json", "evaluation.parquet")
# What legitimately differs between two runs of the same config: clock times, durations, hosts and processes.
VOLATILE_KEY = re.compile(r"time|started|finished|written|host|pid", re.IGNORECASE)
VOLATILE_COLUMN = re.compile(r"time|duration|owner|host", re.IGNORECASE)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:?\d{2}|Z)?")  # also inside a value


def skip_or_fail(reason: str) -> None:
    if os.environ.get("RLPIPE_REQUIRE_SLURM") == "1":
        pytest.fail(f"RLPIPE_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def cluster(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER), command], capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def slurm_cluster() -> SimpleNamespace:
    """A running single-node SLURM, stopped at the end (a stopped cluster leaves no slurm.conf behind: with one, every
    Snakemake start would spend ~10 s in the SLURM plugin asking a dead controller for its config)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        skip_or_fail("the SLURM test needs root (it installs Debian packages and starts the SLURM daemons)")
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        skip_or_fail("the SLURM test needs Debian's apt-get and dpkg to install slurm-wlm and munge")
    started = time.monotonic()
    result = cluster("start")
    output = result.stdout + result.stderr
    if result.returncode == 2:  # this machine cannot have the cluster: no packages, or a real cluster's slurm.conf
        skip_or_fail(f"no test SLURM cluster here: {output.strip().splitlines()[-1] if output.strip() else 'rc 2'}")
    assert result.returncode == 0, f"slurm_cluster.sh start failed:\n{output}"
    print(f"\n{output}SLURM start took {time.monotonic() - started:.1f} s")
    yield SimpleNamespace(start_output=output)
    stopped = cluster("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def run_on_slurm(workdir: Path, *targets: str) -> SimpleNamespace:
    """Snakemake with the shipped SLURM profile, killed after HARD_TIMEOUT seconds."""
    log_offset = SLURMCTLD_LOG.stat().st_size if SLURMCTLD_LOG.exists() else 0
    command = ["timeout", "-s", "KILL", str(HARD_TIMEOUT), sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE),
               "-d", str(workdir), "--configfile", str(workdir / "config.yaml"),
               # as the profile says: the partition (and account) given apart, before the targets; --verbose: sbatch calls
               "--default-resources", "slurm_partition=debug", "--verbose", "--workflow-profile", str(PROFILE), *targets]
    started = time.monotonic()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env=env_with_tests_on_pythonpath())
    seconds = time.monotonic() - started
    text = result.stdout + result.stderr
    (workdir / f"snakemake-{'-'.join(targets) or 'all'}.log").write_text(text)  # kept for a look after a failure
    assert result.returncode != -9 and result.returncode != 137, f"killed after {HARD_TIMEOUT} s (lost jobs?):\n{text}"
    ok(result)
    jobs = re.findall(r"submitted with SLURM jobid (\d+)", text)
    print(f"SLURM run {' '.join(targets) or 'all'}: {seconds:.1f} s, {len(jobs)} SLURM jobs")
    with open(SLURMCTLD_LOG, errors="replace") as log:
        log.seek(log_offset)
        slurmctld = log.read()
    return SimpleNamespace(text=text, seconds=seconds, jobs=jobs, slurmctld=slurmctld)


@pytest.fixture(scope="module")
def runs(slurm_cluster: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The same study run locally (--cores 2) and on SLURM, each: the default target, then `optimize`."""
    local = tmp_path_factory.mktemp("local")
    started = time.monotonic()
    ok(run_snakemake(local, STUDY))
    ok(run_snakemake(local, None, "optimize"))
    print(f"local run: {time.monotonic() - started:.1f} s")
    slurm = tmp_path_factory.mktemp("slurm")
    (slurm / "config.yaml").write_text(yaml.safe_dump(STUDY, sort_keys=False))
    return SimpleNamespace(local=local, slurm=slurm, all=run_on_slurm(slurm), optimize=run_on_slurm(slurm, "optimize"))


# --------------------------------------------------------------------------------------------------------- helpers
def stable(value):
    """A JSON value without the keys that differ between two runs of the same config."""
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items() if not VOLATILE_KEY.search(str(key))}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return TIMESTAMP.sub("<time>", value) if isinstance(value, str) else value


def table(path: Path) -> tuple[pa.Table, dict]:
    """A Parquet table without its time columns, and its rlpipe provenance without volatile keys."""
    data = pq.read_table(path)
    provenance = json.loads((data.schema.metadata or {}).get(b"rlpipe", b"{}"))
    data = data.drop_columns([name for name in data.column_names if VOLATILE_COLUMN.search(name)])
    return data.replace_schema_metadata(None), stable(provenance)


def assert_same_table(a: Path, b: Path) -> None:
    (table_a, provenance_a), (table_b, provenance_b) = table(a), table(b)
    assert table_a.num_rows > 0 and table_a.equals(table_b), f"{a.name} differs:\n{table_a}\n{table_b}"
    assert provenance_a == provenance_b, b


def assert_same_json(a: Path, b: Path) -> None:
    assert stable(json.loads(a.read_text())) == stable(json.loads(b.read_text())), b



def job_total(text: str) -> int:
    return sum(job_counts(text).values())


def slurm_intervals(slurmctld: str) -> dict[str, list[datetime]]:
    """job id -> [start, end] from slurmctld's log (no sacct or squeue: accounting is off)."""
    stamp = r"^\[(?P<t>[\d\-T:.]+)\] "
    intervals: dict[str, list[datetime]] = {}
    for match in re.finditer(stamp + r"(?:sched: Allocate|backfill: Started) JobId=(?P<id>\d+)", slurmctld, re.M):
        intervals[match["id"]] = [datetime.fromisoformat(match["t"])]
    for match in re.finditer(stamp + r"_job_complete: JobId=(?P<id>\d+) done", slurmctld, re.M):
        intervals.setdefault(match["id"], []).append(datetime.fromisoformat(match["t"]))
    return intervals


def instance_dir(workdir: Path, experiment: str, instance: int) -> Path:
    return workdir / "results" / experiment / "instances" / str(instance)


def optimize_dir(workdir: Path) -> Path:
    return workdir / "results" / "tuned" / "optimize"


# ----------------------------------------------------------------------------------------------------------- tests
def test_every_job_ran_as_a_slurm_job_that_exited_0(runs: SimpleNamespace) -> None:
    for run in (runs.all, runs.optimize):
        local_jobs = len(re.findall(r"^localrule \w+:", run.text, re.MULTILINE))  # `all`, `optimize`: no work
        assert 0 < len(run.jobs) <= job_total(run.text) - local_jobs, run.text  # fewer when rules form a group job
        assert len(set(run.jobs)) == len(run.jobs)
        # The plugin's SLURM log of each submission (deleted on success) names its rule, or its group and rules.
        submitted = " ".join(re.findall(r"submitted with SLURM jobid \d+ \(log: \S*/slurm_logs/(\S+?)/", run.text))
        for rule in job_counts(run.text):
            if not re.search(rf"^localrule {rule}:", run.text, re.MULTILINE):
                assert re.search(rf"(^|_){rule}(_|$| )", submitted), (rule, submitted)
        for job in run.jobs:  # slurmctld ran it and saw it exit 0
            assert re.search(rf"_job_complete: JobId={job} WEXITSTATUS 0$", run.slurmctld, re.MULTILINE), job
        assert "SLURM status is" not in run.text  # no job failed
        # every job got the partition given on the command line and kept its rule's runtime and memory
        calls = re.findall(r"sbatch call: (.*)", run.text)
        assert len(calls) == len(run.jobs), run.text
        for call in calls:
            assert " -p debug" in call and re.search(r" -t \d+", call) and re.search(r" --mem \d+", call), call


def test_slurm_results_equal_the_local_run(runs: SimpleNamespace) -> None:
    for experiment, spec in STUDY["experiments"].items():
        for i in range(spec["n_fit"]):
            local, slurm = instance_dir(runs.local, experiment, i), instance_dir(runs.slurm, experiment, i)
            for name in INSTANCE_FILES:
                assert (slurm / name).is_file(), slurm / name
            assert (local / "agent.ckpt").read_bytes() == (slurm / "agent.ckpt").read_bytes(), slurm
            assert_same_table(local / "writer.parquet", slurm / "writer.parquet")
            assert_same_table(local / "evaluation.parquet", slurm / "evaluation.parquet")
            assert_same_json(local / "fit.json", slurm / "fit.json")
        assert_same_json(runs.local / "results" / experiment / "summary.json",
                         runs.slurm / "results" / experiment / "summary.json")


def test_tuning_on_slurm_equals_the_local_tuning(runs: SimpleNamespace) -> None:
    local, slurm = optimize_dir(runs.local), optimize_dir(runs.slurm)
    assert_same_table(local / "trials.parquet", slurm / "trials.parquet")
    trials = pq.read_table(slurm / "trials.parquet").to_pandas()
    assert list(trials.number) == list(range(6)) and set(trials.state) == {"COMPLETE"}
    best_local, best_slurm = (yaml.safe_load((d / "best_init_kwargs.yaml").read_text()) for d in (local, slurm))
    assert stable(best_local) == stable(best_slurm)
    tuned = (runs.slurm / "config.yaml").read_text()
    assert tuned == (runs.local / "config.yaml").read_text()  # the same write-back, comments and all
    selection = best_slurm["selection"]  # the confirmed selection: written back only if shown better
    expected = {**STUDY["experiments"]["tuned"]["init_kwargs"], **(selection["init_kwargs"] if selection["written"] else {})}
    assert yaml.safe_load(tuned)["experiments"]["tuned"]["init_kwargs"] == expected
    assert_same_json(local / "selection.json", slurm / "selection.json")


def test_optimize_workers_were_concurrent_slurm_jobs_on_one_study(runs: SimpleNamespace) -> None:
    workers = [json.loads((optimize_dir(runs.slurm) / "workers" / f"{k}.json").read_text()) for k in (0, 1)]
    assert len({record["study"] for record in workers}) == 1
    ran = [set(map(int, record["trials"])) for record in workers]
    assert ran[0].isdisjoint(ran[1]) and ran[0] | ran[1] == set(range(6))  # one journal: no trial run twice
    worker_jobs = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*rule_optimize_worker", runs.optimize.text)
    assert len(worker_jobs) == 2, runs.optimize.text
    intervals = slurm_intervals(runs.optimize.slurmctld)
    (start_a, end_a), (start_b, end_b) = (intervals[job] for job in worker_jobs)
    assert start_a < end_b and start_b < end_a, intervals  # both workers' allocations overlapped
