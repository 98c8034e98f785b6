"""How an ExperimentManager is written to and read from disk, and named in a pipeline config.

Parameters are stored as JSON: tuples, mappings with keys that are not strings (rlberry GridWorld's
``reward_at={(4, 4): 1.0}``) and ``functools.partial`` in tagged forms, classes and functions by import
path. Anything else (a lambda, a callable object, a class defined in a notebook) goes to
``manager_objects.pkl`` with cloudpickle, read back only when the caller trusts it. A pipeline experiment folder has no manager file: its
parameters are read from the instances' ``fit.json`` records.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from rlpipe.io.arrow import read_metadata
from rlpipe.io.checkpoint import read_pickle_checkpoint, write_pickle_checkpoint
from rlpipe.io.imports import import_object, importable_path
from rlpipe.io.paths import ExperimentPaths, InstancePaths

MANAGER_FILE = "manager.json"
OBJECTS_FILE = "manager_objects.pkl"
# One-key mappings with these keys stand for a value that JSON lacks; a user's mapping that uses one of
# them as a key is stored in the ``__items__`` form so that it cannot be mistaken for one.
_TAGS = frozenset({"__tuple__", "__items__", "__partial__", "__import__", "__pickled__"})


# ---------------------------------------------------------------------------------------------- JSON encoding
def encode(value: Any, folder: Path) -> Any:
    """``value`` as JSON data; objects without an import path are pickled into ``folder/manager_objects.pkl``."""
    pickled: dict[str, Any] = {}
    data = _encode(value, pickled)
    if pickled:
        write_pickle_checkpoint(folder / OBJECTS_FILE, pickled)
    return data


def decode(data: Any, folder: Path, allow_pickle: bool) -> Any:
    pickled: dict[str, Any] | None = None

    def objects() -> dict[str, Any]:
        nonlocal pickled
        if pickled is None:
            pickled = read_pickle_checkpoint(folder / OBJECTS_FILE, trusted=allow_pickle)
        return pickled

    return _decode(data, objects)


def _encode(value: Any, pickled: dict[str, Any]) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _TAGS.isdisjoint(value):
            return {k: _encode(v, pickled) for k, v in value.items()}
        return {"__items__": [[_encode(k, pickled), _encode(v, pickled)] for k, v in value.items()]}  # e.g. {(4, 4): 1.0}
    if isinstance(value, list):
        return [_encode(v, pickled) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, pickled) for v in value]}
    if isinstance(value, functools.partial):
        return {"__partial__": [_encode(value.func, pickled), _encode(value.args, pickled), _encode(value.keywords, pickled)]}
    path = importable_path(value)
    if path is not None:
        return {"__import__": path}
    key = str(len(pickled))
    pickled[key] = value
    return {"__pickled__": key}


def _decode(data: Any, objects: Any) -> Any:
    if isinstance(data, list):
        return [_decode(v, objects) for v in data]
    if not isinstance(data, dict):
        return data
    if len(data) != 1 or _TAGS.isdisjoint(data):
        return {k: _decode(v, objects) for k, v in data.items()}
    if "__tuple__" in data:
        return tuple(_decode(v, objects) for v in data["__tuple__"])
    if "__items__" in data:
        return {_decode(k, objects): _decode(v, objects) for k, v in data["__items__"]}
    if "__partial__" in data:
        func, args, keywords = (_decode(part, objects) for part in data["__partial__"])
        return functools.partial(func, *args, **keywords)
    if "__import__" in data:
        return import_object(data["__import__"])
    return objects()[data["__pickled__"]]


# ---------------------------------------------------------------------------------------------- reading
def is_manager_folder(folder: Path) -> bool:
    """True for a folder that ``ExperimentManager.load`` reads: a manager's (it holds a manager file), or a
    pipeline experiment's (it holds instances with fit records)."""
    return (folder / MANAGER_FILE).is_file() or next(folder.glob("instances/*/fit.json"), None) is not None


def read_manager_file(path: Path) -> tuple[dict[str, Any], Path]:
    """``(record, folder)`` from a manager file, a folder holding one, or a pipeline experiment folder."""
    folder = path.parent if path.is_file() else path
    if not is_manager_folder(folder):
        raise FileNotFoundError(f"{path} is neither a {MANAGER_FILE}, a folder holding one, nor a pipeline experiment "
                                "folder")
    manager_file = folder / MANAGER_FILE
    return (json.loads(manager_file.read_text()) if manager_file.is_file() else pipeline_record(folder)), folder


def is_fitted(paths: InstancePaths) -> bool:
    """True once the instance's fit is complete. A fit writes its record last (after the checkpoint and the writer
    data) and ``clear_handlers`` deletes it first, so the record is what "fitted" means for every reader."""
    return paths.fit_record.is_file()


def fitted_instances(paths: ExperimentPaths, n_fit: int) -> list[int]:
    """The fitted instances of an experiment folder (see :func:`is_fitted`)."""
    return [i for i in range(n_fit) if is_fitted(paths.instance(i))]


def pipeline_record(folder: Path) -> dict[str, Any]:
    """A manager record for a pipeline experiment folder, from its instances' fit records."""
    fits = sorted((json.loads(p.read_text()) for p in folder.glob("instances/*/fit.json")), key=lambda r: r["instance"])
    if [r["instance"] for r in fits] != list(range(len(fits))):
        raise FileNotFoundError(f"{folder} lacks the fit records of some instances: {[r['instance'] for r in fits]}")
    task = fits[0]["task"]
    per_instance = [r["task"]["init_kwargs"] for r in fits]
    same = all(kw == per_instance[0] for kw in per_instance)
    writer = {**fits[0]["run"]["writer"], "maxlen": task["maxlen"], "maxlen_by_tag": task["maxlen_by_tag"]}
    parameters = {
        "agent_class": task["agent"], "agent_name": task["experiment"], "n_fit": len(fits),
        "train_env": task["train_env"], "eval_env": task["eval_env"],
        "init_kwargs": per_instance[0] if same else {}, "init_kwargs_per_instance": None if same else per_instance,
        "fit_budget": task["fit_budget"], "fit_kwargs": task["fit_kwargs"],
        "eval_kwargs": _pipeline_eval_kwargs(folder), "default_writer_kwargs": writer, "n_checkpoints": task["chunks"],
    }
    return {"rlpipe_version": fits[0]["versions"]["rlpipe"], "unique_id": f"pipeline:{task['experiment']}",
            "timestamp_id": fits[0]["finished"], "seed": task["root_seed"], "parameters": parameters}


def _pipeline_eval_kwargs(folder: Path) -> dict[str, Any] | None:
    """The eval_kwargs recorded in an instance's evaluation table, if it was evaluated."""
    table = folder / "instances" / "0" / "evaluation.parquet"
    if not table.is_file():
        return None
    return read_metadata(table).get("eval_kwargs")
