"""Write every output to a temporary name in the same folder, fsync it, then rename it into place.

A reader (or Snakemake after a kill) never sees a half-written file under the final name.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it, which is not safe once threads run.
_NEW_FILE_MODE = 0o666 & ~_read_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path``, on error it is removed.

    The file gets the mode ``path`` had, or the usual mode of a new file (mkstemp alone would make
    every result owner-only, which breaks sharing results on a cluster).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, target.stat().st_mode & 0o7777 if target.exists() else _NEW_FILE_MODE)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n")


def write_csv(path: str | os.PathLike, frame: Any) -> None:
    """Write a pandas DataFrame as CSV with a ``git_commit`` column (the commit that wrote it) unless it has one, so
    that a table copied out of the results still says which code made it."""
    from rlpipe.io.provenance import commit_label

    if "git_commit" not in frame.columns:
        frame = frame.assign(git_commit=commit_label())
    write_text(path, frame.to_csv(index=False))


def write_parquet(path: str | os.PathLike, table: Any, metadata: dict[str, Any] | None = None) -> None:
    """Write a pyarrow Table or a pandas DataFrame; ``metadata`` is stored as JSON in the file's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged[b"rlpipe"] = json.dumps(metadata, sort_keys=True, default=json_default).encode()
        table = table.replace_schema_metadata(merged)
    with atomic_open(path, "wb") as handle:
        pq.write_table(table, handle)


# Metadata entries matplotlib would fill with a date or its version, per format: set to None, they are left out.
_UNDATED_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
                     "pdf": {"CreationDate": None, "Producer": None, "Creator": None}}


def save_figure(figure: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """Save a matplotlib figure (format from the suffix) atomically.

    png, svg and pdf files carry no date or version, and svg element ids are not random, so the same
    figure gives the same bytes every time (ps/eps get their date from ``SOURCE_DATE_EPOCH``).
    """
    import matplotlib

    fmt = Path(path).suffix.lstrip(".") or "png"
    kwargs.setdefault("metadata", _UNDATED_METADATA.get(fmt))
    with matplotlib.rc_context({"svg.hashsalt": "rlpipe"}), atomic_open(path, "wb") as handle:
        figure.savefig(handle, format=fmt, **kwargs)


def json_default(obj: Any) -> Any:
    """``json.dumps``'s ``default`` hook of every JSON rlpipe writes: numpy scalars and arrays as Python values,
    paths as strings; anything else raises TypeError as ``json.dumps`` would."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
