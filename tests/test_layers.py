"""The package's layers (pyproject.toml's import-linter contracts): one-way dependencies, no driver imported,
no import cycles. Run in the test suite, so the README's test command and CI enforce them. And the root package,
which names the public API of the layers without importing them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

import rlpipe
import rlpipe.manager


def test_the_import_contracts_are_kept(monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # where pyproject.toml is
    assert lint_imports(no_cache=True, no_logo=True) == 0, "an import crosses the layers: see the report above"
    assert os.path.isfile("pyproject.toml")


def test_the_root_package_names_the_managers_api_and_imports_no_layer() -> None:
    assert [name for name, module in rlpipe._EXPORTS.items() if module == "rlpipe.manager"] == rlpipe.manager.__all__
    code = "import sys, rlpipe; assert not [m for m in sys.modules if m.startswith('rlpipe.')], sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_core_imports_no_torch_nor_stable_baselines3() -> None:
    """Deep RL is an optional extra (``pip install -e ".[sb3]"``): rlpipe, its agents package, the pipeline's stages
    and the validation of a config without SB3 agents import neither torch nor SB3, installed or not."""
    config = Path(__file__).resolve().parents[1] / "config" / "config.yaml"
    code = (
        "import sys, rlpipe, rlpipe.agents, rlpipe.core.fitting, rlpipe.core.evaluation, rlpipe.pipeline.workflow\n"
        "from rlpipe.spec.config import load_config_file\n"
        "from rlpipe.spec.experiment import validate_study\n"
        f"validate_study(load_config_file({str(config)!r}))\n"
        "loaded = [m for m in ('torch', 'stable_baselines3') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
