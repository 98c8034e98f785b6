"""Fault injection: fits SIGKILLed at random moments resume to exactly the uninterrupted results."""
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

from rlpipe.core import tasks
from rlpipe.io.paths import InstancePaths
from rlpipe.spec.config import validate_study

from snakemake_runner import SNAKEFILE, ok, run_snakemake

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
KILL_DELAYS_S = np.random.default_rng(2024).uniform(0.4, 1.6, size=4).round(2).tolist()


def fit_command(folder: Path) -> list[str]:
    task = tasks.fit_task(validate_study(CONFIG), "pg", 0).to_json()
    return [sys.executable, "-m", "rlpipe", "fit", "--task", task, "--instance-dir", str(folder)]


def outputs(folder: Path) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict]:
    """Checkpoint arrays, writer rows (wall clock aside) and the checkpoint's JSON record."""
    paths = InstancePaths(folder)
    with np.load(paths.checkpoint) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    writer = pd.read_parquet(paths.writer).drop(columns="dw_time_elapsed")
    return arrays, writer, meta


def assert_same_outputs(ours: Path, reference: Path) -> None:
    arrays, writer, meta = outputs(ours)
    ref_arrays, ref_writer, ref_meta = outputs(reference)
    assert arrays.keys() == ref_arrays.keys()
    for name in arrays:
        np.testing.assert_array_equal(arrays[name], ref_arrays[name], err_msg=name)
    assert meta == ref_meta
    pd.testing.assert_frame_equal(writer, ref_writer)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reference") / "instance"
    subprocess.run(fit_command(folder), check=True, capture_output=True, timeout=300)
    return folder


@pytest.mark.parametrize("delay", KILL_DELAYS_S)
def test_a_killed_fit_resumes_to_the_uninterrupted_result(tmp_path: Path, uninterrupted: Path, delay: float) -> None:
    folder = tmp_path / "instance"
    job = subprocess.Popen(fit_command(folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the fit finished before the kill: lengthen it"
    assert not InstancePaths(folder).fit_record.exists()  # nothing vouches for a half-done fit
    result = subprocess.run(fit_command(folder), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert_same_outputs(folder, uninterrupted)


def test_snakemake_killed_mid_fit_resumes_with_rerun_incomplete(tmp_path: Path, uninterrupted: Path) -> None:
    workdir = tmp_path / "study"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(json.dumps(CONFIG))
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", "1"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    progress = workdir / "results" / "pg" / "instances" / "0" / "progress" / "progress.json"
    deadline = time.monotonic() + 120
    while not (progress.is_file() and json.loads(progress.read_text() or "{}").get("chunks_done", 0) >= 2):
        assert time.monotonic() < deadline, "the fit never saved two chunks"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # Snakemake and its job, as a scheduler's wall-time limit would
    run.wait()

    ok(run_snakemake(workdir, CONFIG, "--unlock"))
    result = ok(run_snakemake(workdir, CONFIG, "--rerun-incomplete", cores=1))
    folder = workdir / "results" / "pg" / "instances" / "0"
    assert "resuming pg[0] after chunk" in (folder / "fit.log").read_text(), result.stderr
    assert json.loads((folder / "fit.json").read_text())["resumed_after_chunk"] >= 2
    assert_same_outputs(folder, uninterrupted)
