"""rlpipe.io.arrow: columns built from raw buffers equal what ``pa.array`` builds, without importing pandas, and
``read_table`` turns a missing or broken Parquet file into an RlpipeError naming the file."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlpipe.errors import RlpipeError
from rlpipe.io.arrow import float64_array, int64_array, read_table, string_array


def _valid(array: pa.Array) -> pa.Array:
    array.validate(full=True)
    return array


@pytest.mark.parametrize("values", [[0.5, -1.0, np.inf], np.arange(4, dtype=np.float32), np.arange(10.0)[::3], []])
def test_float64_array_equals_pa_array(values):
    array = _valid(float64_array(values))
    assert array.type == pa.float64() and array.null_count == 0
    assert array.equals(pa.array(np.asarray(values, dtype=np.float64), type=pa.float64()))


def test_float64_array_keeps_nan_as_a_value_not_a_null():
    array = _valid(float64_array([np.nan, 1.0]))
    assert array.null_count == 0 and np.isnan(array[0].as_py())


@pytest.mark.parametrize("values", [[3, -2, 2**62], np.array([1, 2, 3], dtype=np.int8), np.arange(12)[1::4], []])
def test_int64_array_equals_pa_array(values):
    array = _valid(int64_array(values))
    assert array.type == pa.int64() and array.null_count == 0
    assert array.to_pylist() == [int(v) for v in values]


@pytest.mark.parametrize("values", [["a", "bc", ""], ["café", "日本", "€"], [], [""] * 3])
def test_string_array_equals_pa_array_with_multibyte_text(values):
    array = _valid(string_array(values))
    assert array.type == pa.string() and array.null_count == 0
    assert array.to_pylist() == values and array.equals(pa.array(values, type=pa.string()))


def test_a_table_of_these_columns_round_trips_through_parquet(tmp_path):
    table = pa.Table.from_arrays(
        [string_array(["x", "ÿ"]), int64_array([1, 2]), float64_array([0.25, 0.5]), pa.nulls(2, pa.float64())],
        names=["s", "i", "f", "n"])
    pq.write_table(table, tmp_path / "t.parquet")
    read = read_table(tmp_path / "t.parquet")
    assert read.equals(table)
    assert read.to_pydict() == {"s": ["x", "ÿ"], "i": [1, 2], "f": [0.25, 0.5], "n": [None, None]}


def test_building_columns_does_not_import_pandas():
    code = ("import sys, pyarrow as pa, rlpipe.io.arrow as a\n"
            "a.float64_array([1.0]); a.int64_array([1]); a.string_array(['x']); pa.nulls(1, pa.int64())\n"
            "print('pandas' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# ------------------------------------------------------------------------------ read_table
def test_read_table_of_a_missing_file_names_it(tmp_path):
    path = tmp_path / "writer.parquet"
    with pytest.raises(RlpipeError, match=r"writer\.parquet cannot be read .*delete it and rerun"):
        read_table(path)


def test_read_table_of_a_truncated_file_names_it(tmp_path):
    path = tmp_path / "evaluation.parquet"
    pq.write_table(pa.table({"x": list(range(100))}), path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(RlpipeError, match=r"evaluation\.parquet cannot be read"):
        read_table(path)


@pytest.mark.parametrize("content", [b"", b"not parquet at all\n", b"PAR1" + bytes(64)])
def test_read_table_of_a_file_that_is_not_parquet_names_it(tmp_path, content):
    path = tmp_path / "other.parquet"
    path.write_bytes(content)
    with pytest.raises(RlpipeError, match=r"other\.parquet cannot be read") as raised:
        read_table(path)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
