"""rlpipe.io.provenance: any Python value an experiment holds is recorded, and hashed the same in every process."""
from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rlpipe
from rlpipe.io import provenance
from rlpipe.io.provenance import code_version, json_data, software, stable_hash


class Maker:
    """A callable object: its class and attributes say what it is (its default repr holds an address)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self) -> int:
        return self.size


def test_mappings_with_keys_that_are_not_strings_are_sorted_items() -> None:
    recorded = json_data({"reward_at": {(4, 4): 1.0, (0, 1): 0.5}})
    assert recorded == {"reward_at": {"__items__": [[[0, 1], 0.5], [[4, 4], 1.0]]}}
    assert json_data({(0, 1): 0.5, (4, 4): 1.0}) == json_data({(4, 4): 1.0, (0, 1): 0.5})  # insertion order aside
    json.dumps(recorded)


def test_partials_callables_numpy_and_sets() -> None:
    assert json_data(functools.partial(int, base=2)) == {"__partial__": "builtins:int", "args": [], "keywords": {"base": 2}}
    assert json_data(Maker(3)) == {"__object__": f"{__name__}:Maker", "state": {"size": 3}}
    assert json_data(Maker(3)) != json_data(Maker(4))
    assert json_data(np.float32(1.5)) == 1.5 and json_data({3, 1, 2}) == [1, 2, 3]
    assert json_data(np.arange(3)) == {"__ndarray__": [0, 1, 2], "dtype": "int64"}


def test_lambdas_differ_by_their_code() -> None:
    first, second = (lambda x: x + 1), (lambda x: x + 2)
    assert json_data(first) != json_data(second)
    assert json_data(first).startswith(f"{__name__}:test_lambdas_differ_by_their_code.<locals>.<lambda>#")


def test_cyclic_objects_stop_at_the_depth_limit() -> None:
    node = Maker(1)
    node.size = node  # a cycle
    # A Maker and its attribute dict take a level each; past level 32 an object is recorded by its type alone: 17 Makers,
    # the last one's attribute dict (level 33) only named.
    expected = {"__object__": f"{__name__}:Maker", "state": {"__object__": "builtins:dict"}}
    for _ in range(16):
        expected = {"__object__": f"{__name__}:Maker", "state": {"size": expected}}
    recorded = json_data(node)
    assert recorded == expected
    assert json.loads(json.dumps(recorded)) == expected and stable_hash(recorded) == stable_hash(json_data(node))


def test_the_hash_is_the_same_in_another_process() -> None:
    value = {"partial": functools.partial(print, 1), "keys": {(1, 2): 3}}
    code = ("import functools; from rlpipe.io.provenance import json_data, stable_hash; "
            "print(stable_hash(json_data({'partial': functools.partial(print, 1), 'keys': {(1, 2): 3}})))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == stable_hash(json_data(value))


def _git(*args: str) -> str:
    source = Path(rlpipe.__file__).resolve().parents[1]
    return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_records_name_the_commit_of_the_code_that_runs() -> None:
    try:
        head, status = _git("rev-parse", "HEAD"), _git("status", "--porcelain")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("rlpipe does not run from a git checkout here")
    assert code_version() == {"commit": head, "dirty": bool(status)}
    assert software() == {"versions": provenance.library_versions(), "git": code_version()}


def test_outside_a_checkout_the_commit_is_unknown_not_guessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site-packages" / "rlpipe"  # an installed copy: no repository of its own
    package.mkdir(parents=True)
    monkeypatch.setattr(rlpipe, "__file__", str(package / "__init__.py"))
    code_version.cache_clear()
    try:
        assert code_version() == {"commit": None, "dirty": None}
    finally:
        code_version.cache_clear()
