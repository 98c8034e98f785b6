"""Arrow columns built from raw buffers.

``pa.array`` imports pandas on its first call, to check whether its input is a pandas object: about
0.15 s. Fit and evaluate jobs never need pandas and each is a fresh process, so they build their
columns here instead, which keeps a job's start-up to the libraries it uses (``pa.nulls`` needs no pandas).
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from rlpipe.errors import RlpipeError


def float64_array(values: Sequence[float] | np.ndarray) -> pa.Array:
    data = np.ascontiguousarray(values, dtype=np.float64)
    return pa.Array.from_buffers(pa.float64(), len(data), [None, pa.py_buffer(data)])


def int64_array(values: Sequence[int] | np.ndarray) -> pa.Array:
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def string_array(values: Sequence[str]) -> pa.Array:
    encoded = [value.encode("utf-8") for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def read_table(path: str | os.PathLike) -> pa.Table:
    """A Parquet table, or an error naming the file when it is missing, truncated or not Parquet."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise RlpipeError(f"{path} cannot be read ({error}); delete it and rerun to rebuild it") from None


def read_metadata(path: str | os.PathLike) -> dict:
    """The rlpipe metadata of a Parquet file's schema (key ``rlpipe``, see ``io.atomic.write_parquet``), read
    without its data; an error naming the file when it cannot be read."""
    import json

    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as error:
        raise RlpipeError(f"{path} cannot be read ({error}); delete it and rerun to rebuild it") from None
    return json.loads(metadata.get(b"rlpipe", b"{}"))
