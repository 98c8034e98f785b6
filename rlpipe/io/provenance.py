"""What made a result: library versions, a canonical hash of the task, timestamps."""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import platform
import subprocess
import types
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.io.imports import object_path

_MAX_DEPTH = 32  # objects nested deeper than this (or cyclic) are recorded by their type only

TRACKED_PACKAGES = ("numpy", "gymnasium", "pyarrow", "pandas", "scipy", "optuna", "adastop", "snakemake")


def library_versions() -> dict[str, str]:
    """Versions of Python, rlpipe and the libraries that can change a number."""
    import rlpipe

    versions = {"python": platform.python_version(), "rlpipe": rlpipe.__version__}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The git commit of the rlpipe source tree that runs (its workflow, stages and built-in agents), and whether it
    had changes not committed (untracked files count: a new agent file changes results as much as an edited one).

    Both are None where rlpipe is not a git checkout (an installed wheel), so that a record never names a commit
    that did not make it. Cached: one ``git`` call per process.
    """
    import rlpipe

    source = Path(rlpipe.__file__).resolve().parents[1]
    unknown: dict[str, Any] = {"commit": None, "dirty": None}
    try:
        top = _git(source, "rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != source:
            return unknown
        commit, status = _git(source, "rev-parse", "HEAD"), _git(source, "status", "--porcelain")
    except (OSError, subprocess.SubprocessError):  # no git on this machine
        return unknown
    return {"commit": commit.stdout.strip() if commit.returncode == 0 else None,
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=False)


def commit_label() -> str:
    """The commit in a table's footer or column: 12 hex digits, ``+dirty`` with uncommitted changes, else "unknown"."""
    git = code_version()
    if not git["commit"]:
        return "unknown"
    return git["commit"][:12] + ("+dirty" if git["dirty"] else "")


def software() -> dict[str, Any]:
    """What every record notes about the code that made it: the library versions and the git commit."""
    return {"versions": library_versions(), "git": code_version()}


def files_state(files: Iterable[Path]) -> str:
    """A digest of which of ``files`` exist, with their sizes and modification times: as a rule's params, it reruns
    the rule when another target rewrites files the rule reads but does not take as inputs."""
    entries = [[str(f), f.stat().st_size, f.stat().st_mtime_ns] if f.is_file() else [str(f)] for f in files]
    return stable_hash(entries)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any) -> str:
    """A short hex digest of ``obj``'s canonical JSON: equal configs give equal hashes on any machine."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def json_data(value: Any, _depth: int = 0) -> Any:
    """``value`` as JSON data that says what it is, the same in every process: how a task records (and
    hashes) whatever Python values an experiment's kwargs hold.

    Mappings with keys that are not strings (rlberry's ``reward_at={(4, 4): 1.0}``) become sorted
    ``{"__items__": [[key, value], ...]}``; a ``functools.partial`` its function and arguments; a class
    or function its import path (lambdas and local functions also a digest of their code, so two
    different ones never look alike); a callable or any other object its class and attributes. A
    ``repr`` is used only where the type defines its own (a default repr holds a memory address).
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if _depth > _MAX_DEPTH:
        return {"__object__": object_path(type(value))}
    deeper = functools.partial(json_data, _depth=_depth + 1)
    if isinstance(value, np.ndarray):
        return {"__ndarray__": deeper(value.tolist()), "dtype": str(value.dtype)}
    if isinstance(value, Mapping):
        if all(isinstance(key, str) for key in value):
            return {key: deeper(item) for key, item in value.items()}
        items = [[deeper(key), deeper(item)] for key, item in value.items()]
        return {"__items__": sorted(items, key=canonical_json)}
    if isinstance(value, (list, tuple)):
        return [deeper(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((deeper(item) for item in value), key=canonical_json)
    if isinstance(value, functools.partial):
        return {"__partial__": deeper(value.func), "args": deeper(value.args), "keywords": deeper(value.keywords)}
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return callable_name(value)
    if type(value).__repr__ is not object.__repr__:
        return {"__object__": object_path(type(value)), "repr": repr(value)}
    return {"__object__": object_path(type(value)), "state": deeper(getattr(value, "__dict__", {}))}


def callable_name(obj: Any) -> str:
    """Import path of a class or function; lambdas and local functions, which share a path with their
    siblings, also get a digest of their code."""
    name = object_path(obj) if hasattr(obj, "__qualname__") else repr(obj)
    code = getattr(obj, "__code__", None)
    if code is not None and ("<lambda>" in name or "<locals>" in name):
        name += "#" + stable_hash([code.co_code.hex(), repr(code.co_consts), code.co_names])
    return name
