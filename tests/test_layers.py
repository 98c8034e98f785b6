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
