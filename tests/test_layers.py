"""The package's layers (pyproject.toml's import-linter contracts): one-way dependencies, no driver imported,
no import cycles. Run in the test suite, so the README's test command and CI enforce them."""
from __future__ import annotations

import os
from pathlib import Path

from importlinter.cli import lint_imports


def test_the_import_contracts_are_kept(monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # where pyproject.toml is
    assert lint_imports(no_cache=True, no_logo=True) == 0, "an import crosses the layers: see the report above"
    assert os.path.isfile("pyproject.toml")
