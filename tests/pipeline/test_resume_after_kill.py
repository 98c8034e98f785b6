"""Fault injection: fits SIGKILLed after some of their chunks were saved resume after those chunks, to exactly
the uninterrupted results (the record says where each resumed, so a test cannot pass on a fresh fit)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlpipe.core.evaluation import evaluate_instance
from rlpipe.io.paths import ExperimentPaths, InstancePaths
from rlpipe.spec.experiment import validate_study

from snakemake_runner import RLPIPE, SNAKEFILE, ok, run_snakemake
from study_tasks import eval_task, run_settings, task_batch

pytestmark = pytest.mark.e2e

CONFIG = {
    "seed": 3,
    "experiments": {
        "pg": {
            "agent": "rlpipe.agents.PolicyGradientAgent",
            "train_env": "CartPole-v1",
            "init_kwargs": {"n_steps": 256},
            "fit_budget": 30000,
            "n_fit": 1,
            "n_checkpoints": 8,
            "eval_kwargs": {"eval_horizon": 100, "n_simulations": 3},
            "writer": {"print_log": False},
        }
    },
}
CHUNK = 30000 // 8
# (chunks saved before the kill, extra seconds into the next chunk): kills land mid-chunk, at several points
KILLS = [(1, 0.0), (3, 0.05), (6, 0.1)]


def fit_command(experiment: Path, config: dict = CONFIG) -> list[str]:
    """The command of the fit job of the experiment's first batch (its only one, in CONFIG)."""
    study = validate_study(config)
    task, run = task_batch(study, "pg", "fit", 0).to_json(), str(run_settings(study, "pg"))
    return [RLPIPE, "fit", "--task", task, "--run", run, "--batch", "0", "--experiment-dir", str(experiment)]


def wait_for_progress(progress: Path, budget: int, process: subprocess.Popen) -> None:
    """Until the fit's progress record says it saved ``budget`` of its budget (or the process ended)."""
    deadline = time.monotonic() + 120
    while not (progress.is_file() and json.loads(progress.read_text() or "{}").get("budget_done", 0) >= budget):
        assert process.poll() is None, "the fit ended before the kill"
        assert time.monotonic() < deadline, f"the fit never saved {budget} of its budget"
        time.sleep(0.01)


def outputs(folder: Path) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict]:
    """Checkpoint arrays, writer rows (wall clock aside) and the checkpoint's JSON record."""
    paths = InstancePaths(folder)
    with np.load(paths.checkpoint) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    writer = pd.read_parquet(paths.writer).drop(columns="dw_time_elapsed")
    return arrays, writer, meta


def evaluation(folder: Path) -> pd.DataFrame:
    """The instance's evaluation table: the one the workflow wrote, else one made here as the evaluate stage makes it
    (the table has no wall-clock column: it is compared whole)."""
    paths = InstancePaths(folder)
    if not paths.evaluation.is_file():
        study = validate_study(CONFIG)
        evaluate_instance(eval_task(study, "pg", 0), paths.checkpoint, paths.evaluation, run_settings(study, "pg"))
    return pd.read_parquet(paths.evaluation)


def assert_same_outputs(ours: Path, reference: Path) -> None:
    """The same checkpoint, writer data and, as the README promises, the same evaluation."""
    arrays, writer, meta = outputs(ours)
    ref_arrays, ref_writer, ref_meta = outputs(reference)
    assert arrays.keys() == ref_arrays.keys()
    for name in arrays:
        np.testing.assert_array_equal(arrays[name], ref_arrays[name], err_msg=name)
    assert meta == ref_meta
    pd.testing.assert_frame_equal(writer, ref_writer)
    pd.testing.assert_frame_equal(evaluation(ours), evaluation(reference))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    experiment = tmp_path_factory.mktemp("reference") / "pg"
    subprocess.run(fit_command(experiment), check=True, capture_output=True, timeout=300)
    return ExperimentPaths(experiment).instance(0).folder


@pytest.mark.parametrize("chunks, delay", KILLS)
def test_a_killed_fit_resumes_after_its_last_saved_chunk(tmp_path: Path, uninterrupted: Path, chunks: int,
                                                          delay: float) -> None:
    experiment = tmp_path / "pg"
    folder = ExperimentPaths(experiment).instance(0).folder
    job = subprocess.Popen(fit_command(experiment), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_progress(InstancePaths(folder).progress / "progress.json", chunks * CHUNK, job)
    time.sleep(delay)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the fit finished before the kill: lengthen it"
    assert not InstancePaths(folder).fit_record.exists()  # nothing vouches for a half-done fit
    saved = json.loads((InstancePaths(folder).progress / "progress.json").read_text())["budget_done"]
    assert saved >= chunks * CHUNK
    result = subprocess.run(fit_command(experiment), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads(InstancePaths(folder).fit_record.read_text())
    assert record["resumed_at"] == saved and sum(record["chunks"]) == 30000 - saved  # it resumed, it did not refit
    assert_same_outputs(folder, uninterrupted)


def test_snakemake_killed_mid_fit_resumes_with_rerun_incomplete(tmp_path: Path, uninterrupted: Path) -> None:
    workdir = tmp_path / "study"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(json.dumps(CONFIG))
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", "1"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    progress = workdir / "results" / "pg" / "instances" / "0" / "progress" / "progress.json"
    wait_for_progress(progress, 2 * CHUNK, run)
    os.killpg(run.pid, signal.SIGKILL)  # Snakemake and its job, as a scheduler's wall-time limit would
    run.wait()

    ok(run_snakemake(workdir, CONFIG, "--unlock"))
    result = ok(run_snakemake(workdir, CONFIG, "--rerun-incomplete", cores=1))
    folder = workdir / "results" / "pg" / "instances" / "0"
    assert "resuming pg[0] after" in (folder / "fit.log").read_text(), result.stderr
    assert json.loads((folder / "fit.json").read_text())["resumed_at"] >= 2 * CHUNK
    assert_same_outputs(folder, uninterrupted)


def test_a_killed_batch_job_resumes_after_the_instances_it_completed(tmp_path: Path, uninterrupted: Path) -> None:
    """A job of three instances killed while fitting the second: run again, it keeps the first (not refitted: its
    files are untouched) and resumes the second after its last chunk, to the numbers of an uninterrupted fit."""
    config = json.loads(json.dumps(CONFIG))
    config["experiments"]["pg"].update(n_fit=3, instances_per_job=3)
    experiment = tmp_path / "pg"
    paths = ExperimentPaths(experiment)
    job = subprocess.Popen(fit_command(experiment, config), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_progress(paths.instance(1).progress / "progress.json", 2 * CHUNK, job)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the job finished before the kill: lengthen it"
    assert json.loads(paths.batch("fit", 0).progress.read_text())["done"] == [0]
    assert not paths.batch("fit", 0).record.exists() and not paths.instance(1).fit_record.exists()
    first = paths.instance(0).fit_record.stat().st_mtime_ns, paths.instance(0).checkpoint.read_bytes()

    result = subprocess.run(fit_command(experiment, config), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "pg[0]: fitted by an earlier run of this job" in result.stderr
    assert (paths.instance(0).fit_record.stat().st_mtime_ns, paths.instance(0).checkpoint.read_bytes()) == first
    assert json.loads(paths.instance(1).fit_record.read_text())["resumed_at"] >= 2 * CHUNK
    assert json.loads(paths.instance(2).fit_record.read_text())["resumed_at"] == 0
    assert json.loads(paths.batch("fit", 0).record.read_text())["instances"] == [0, 1, 2]
    assert not paths.batch("fit", 0).progress.exists()
    assert_same_outputs(paths.instance(0).folder, uninterrupted)  # instance 0 of a batch of 3 = a batch of 1
