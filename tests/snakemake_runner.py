"""Run the workflow with Snakemake in a temporary folder, as a user would (shared by the end-to-end tests)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

TESTS = Path(__file__).resolve().parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RLPIPE = str(Path(sys.executable).with_name("rlpipe"))  # the console script installed beside this interpreter
# A tiny study of two experiments (a few seconds through Snakemake), shared by the workflow tests.
TINY = {
    "seed": 7,
    "report": {"bootstrap_samples": 500},
    "experiments": {
        "ql": {
            "agent": "rlpipe.agents.QLearningAgent",
            "train_env": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}},
            "init_kwargs": {"epsilon_decay_steps": 500},
            "fit_budget": 1500,
            "n_fit": 2,
            "n_checkpoints": 3,
            "eval_kwargs": {"eval_horizon": 50, "n_simulations": 5},
            "writer": {"print_log": False},
        },
        "rand": {
            "agent": "rlpipe.agents.RandomAgent",
            "train_env": "FrozenLake-v1",
            "fit_budget": 200,
            "n_fit": 2,
            "eval_kwargs": {"eval_horizon": 50, "n_simulations": 4},
        },
    },
}
SNAKEFILE = TESTS.parent / "Snakefile"


def env_with_tests_on_pythonpath() -> dict[str, str]:
    """The environment with ``tests/`` on PYTHONPATH, so that a config can name the test agents
    (``helpers_agents:PeakAgent``) both in Snakemake, which validates the config, and in its jobs."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}


def run_snakemake(workdir: Path, config: dict | None, *extra: str, cores: int = 2) -> subprocess.CompletedProcess:
    """Run on ``workdir/config.yaml``, written from ``config``; with ``config=None`` the file is used as it is
    (a hand-written config, e.g. one the optimize target writes back into)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env_with_tests_on_pythonpath())


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"snakemake failed:\n{result.stdout}\n{result.stderr}"
    return result


def snapshot(folder: Path) -> dict[str, tuple[float, bytes]]:
    """mtime and content of every file below ``folder`` (to show what a run touched)."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def report_items(report: Path) -> dict[str, dict]:
    """``{path: {"labels": ..., "caption": <html>}}`` of every file a ``snakemake --report`` HTML file holds."""
    import json
    import re

    text = report.read_text()
    pattern = re.compile(r'"(results/[^"]+)": (\{"name": .*?"caption": "(?:[^"\\]|\\.)*")')
    return {match.group(1): json.loads(match.group(2) + "}") for match in pattern.finditer(text)}


def job_counts(text: str) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints: rule -> number of jobs ({} when nothing is to be done)."""
    import re

    if "Job stats:" not in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE)}
