"""Agent checkpoint files.

The native format is a NumPy ``.npz`` archive: named arrays plus one JSON document under the key
``__meta__``. It is read with ``allow_pickle=False``, so a checkpoint cannot run code.
Agents that cannot describe their state as arrays + JSON are saved with cloudpickle behind a magic
header (bz2-compressed when the agent asks, as rlberry's ``compress_pickle``); such a file is only
loaded when the caller says it trusts it. Objects that belong to the caller rather than to the saved
state (the agent's writer, shared data) are written as named references and given back at load, so
every reference to them inside the state (an env wrapper holding the writer, say) stays one object.
"""
from __future__ import annotations

import bz2
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.errors import CheckpointError
from rlpipe.io.atomic import atomic_open, json_default

FORMAT = "rlpipe-checkpoint/1"
META_KEY = "__meta__"
PICKLE_MAGIC = b"RLPIPE-PICKLE/1\n"
COMPRESSED_PICKLE_MAGIC = b"RLPIPE-PICKLE-BZ2/1\n"


def write_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Write ``arrays`` and the JSON ``meta``; refuse what :func:`read_checkpoint` would refuse to read."""
    if META_KEY in arrays:
        raise ValueError(f"'{META_KEY}' is reserved in checkpoints")
    if "format" in meta:
        raise ValueError("'format' is reserved in checkpoint meta: it records the checkpoint format version")
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    objects = sorted(name for name, value in arrays.items() if value.dtype.hasobject)
    if objects:
        raise ValueError(f"checkpoint arrays must hold numbers, booleans or strings, not Python objects: {objects} "
                         "(an object array could only be stored as a pickle)")
    try:
        document = json.dumps({"format": FORMAT, **meta}, sort_keys=True, default=json_default)
    except TypeError as error:  # name the value at fault: json's own message does not
        raise TypeError(f"checkpoint meta {_unwritable(meta)} is not JSON serializable ({error})") from None
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **arrays, **{META_KEY: np.array(document)})
    return Path(path)


def _unwritable(value: Any, where: str = "") -> str:
    """Where in ``value`` JSON fails: ``'state.table[3]' (set)``, the innermost value that cannot be written."""
    items = (value.items() if isinstance(value, Mapping)
             else enumerate(value) if isinstance(value, (list, tuple)) else ())
    for key, item in items:
        if isinstance(value, Mapping) and not isinstance(key, (str, int, float, bool, type(None))):
            return f"at {where or 'top level'!r}: key {key!r} ({type(key).__name__})"
        inner = f"{where}[{key}]" if not isinstance(value, Mapping) else f"{where}.{key}" if where else str(key)
        try:
            json.dumps(item, default=json_default)
        except TypeError:
            return _unwritable(item, inner)
    return f"at {where or 'top level'!r} ({type(value).__name__})"


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Return ``(arrays, meta)``; raise CheckpointError naming the file if it is not a readable checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if is_pickle_checkpoint(path):
        raise CheckpointError(f"checkpoint {path} is a pickle, not an array checkpoint")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"checkpoint {path} is truncated or not an rlpipe checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} is truncated or not an rlpipe checkpoint ({error})") from None
    if META_KEY not in arrays:
        raise CheckpointError(f"checkpoint {path} has no '{META_KEY}' record: not written by rlpipe")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path} has an unreadable '{META_KEY}' record: not written by rlpipe")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}; this rlpipe reads {FORMAT!r}")
    return arrays, meta


def is_pickle_checkpoint(path: str | os.PathLike) -> bool:
    return _pickle_magic(path) is not None


def _pickle_magic(path: str | os.PathLike) -> bytes | None:
    with open(path, "rb") as handle:
        head = handle.read(len(COMPRESSED_PICKLE_MAGIC))
    return next((magic for magic in (PICKLE_MAGIC, COMPRESSED_PICKLE_MAGIC) if head.startswith(magic)), None)


def write_pickle_checkpoint(path: str | os.PathLike, obj: Any, compress: bool = False,
                            references: Mapping[str, Any] | None = None) -> Path:
    """Pickle ``obj`` with cloudpickle; each object of ``references`` (by identity) is stored as its name."""
    import cloudpickle

    names = {id(value): name for name, value in (references or {}).items() if value is not None}

    class _Pickler(cloudpickle.CloudPickler):
        def persistent_id(self, candidate: Any) -> str | None:
            return names.get(id(candidate))

    with atomic_open(path, "wb") as handle:
        handle.write(COMPRESSED_PICKLE_MAGIC if compress else PICKLE_MAGIC)
        stream = bz2.BZ2File(handle, "wb") if compress else handle
        _Pickler(stream).dump(obj)
        if compress:
            stream.close()
    return Path(path)


def read_pickle_checkpoint(path: str | os.PathLike, trusted: bool, references: Mapping[str, Any] | None = None) -> Any:
    """Unpickle a checkpoint, giving each named reference the object of ``references``.

    Unpickling runs code from the file: only for files you trust.
    """
    if not trusted:
        raise CheckpointError(
            f"checkpoint {path} is a pickle; unpickling can run arbitrary code, so it is only loaded when "
            "you trust its source: pass allow_pickle=True (or set 'allow_pickle: true' for the experiment)"
        )
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    magic = _pickle_magic(path)
    if magic is None:
        raise CheckpointError(f"checkpoint {path} is not an rlpipe pickle checkpoint (no '{PICKLE_MAGIC.decode().strip()}' header)")
    given = dict(references or {})

    class _Unpickler(pickle.Unpickler):
        def persistent_load(self, name: str) -> Any:
            return given.get(name)

    try:
        with open(path, "rb") as handle:
            handle.read(len(magic))
            stream = bz2.BZ2File(handle, "rb") if magic == COMPRESSED_PICKLE_MAGIC else handle
            return _Unpickler(stream).load()
    except (EOFError, OSError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({error})") from None
