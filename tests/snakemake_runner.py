"""Run the workflow with Snakemake in a temporary folder, as a user would (shared by the end-to-end tests)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

SNAKEFILE = Path(__file__).resolve().parents[1] / "Snakefile"


def run_snakemake(workdir: Path, config: dict | None, *extra: str, cores: int = 2) -> subprocess.CompletedProcess:
    """Run on ``workdir/config.yaml``, written from ``config``; with ``config=None`` the file is used as it is
    (a hand-written config, e.g. one the optimize target writes back into)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), "--cores", str(cores), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"snakemake failed:\n{result.stdout}\n{result.stderr}"
    return result
