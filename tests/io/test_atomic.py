"""rlpipe.io.atomic: every write goes to a temporary file in the same folder and is renamed into place, so the
final name holds either the old content or the complete new one; the file mode is the one a plain write gives."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from matplotlib.figure import Figure

from rlpipe.io.atomic import atomic_open, save_figure, write_json, write_parquet, write_text


class Interrupted(Exception):
    """Raised inside a write to stand for a crash halfway through it."""


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name not in keep)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------------------------------------ atomic_open
def test_write_creates_missing_folders_and_leaves_only_the_file(tmp_path):
    path = tmp_path / "a" / "b" / "out.txt"
    write_text(path, "hello\n")
    assert path.read_text() == "hello\n"
    assert _leftovers(path.parent, {"out.txt"}) == []


def test_write_replaces_the_previous_content(tmp_path):
    path = tmp_path / "out.txt"
    write_text(path, "a much longer first version\n")
    write_text(path, "short\n")
    assert path.read_text() == "short\n"


def test_the_final_name_keeps_the_old_content_until_the_write_completes(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_open(path, "wb") as handle:
        handle.write(b"new")
        handle.flush()
        (temporary,) = (tmp_path / name for name in _leftovers(tmp_path, {"out.bin"}))
        assert path.read_bytes() == b"old"
        assert temporary.parent == tmp_path and temporary.name.startswith(".out.bin.") and temporary.name.endswith(".tmp")
        assert temporary.read_bytes() == b"new"
    assert path.read_bytes() == b"new" and not temporary.exists()


@pytest.mark.parametrize("error", [Interrupted("disk on fire"), KeyboardInterrupt()])
def test_an_interrupted_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, error):
    path = tmp_path / "out.txt"
    path.write_text("previous\n")
    with pytest.raises(type(error)):
        with atomic_open(path, "w") as handle:
            handle.write("half of the new")
            handle.flush()
            raise error
    assert path.read_text() == "previous\n"
    assert _leftovers(tmp_path, {"out.txt"}) == []


def test_an_interrupted_first_write_leaves_no_file(tmp_path):
    with pytest.raises(Interrupted, match="crash"):
        with atomic_open(tmp_path / "new.txt", "w") as handle:
            handle.write("partial")
            raise Interrupted("crash")
    assert os.listdir(tmp_path) == []


def test_text_mode_writes_utf8_and_binary_mode_writes_bytes(tmp_path):
    write_text(tmp_path / "t.txt", "café €\n")
    assert (tmp_path / "t.txt").read_bytes() == "café €\n".encode("utf-8")
    with atomic_open(tmp_path / "b.bin") as handle:  # binary by default
        handle.write(b"\x00\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"


def test_a_new_file_gets_the_mode_of_a_plain_new_file_not_owner_only(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text(tmp_path / "atomic.txt", "x")
    assert _mode(tmp_path / "atomic.txt") == _mode(plain)


@pytest.mark.parametrize("mode", [0o640, 0o755, 0o600])
def test_rewriting_a_file_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "out.sh"
    path.write_text("old")
    path.chmod(mode)
    write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == mode


# ------------------------------------------------------------------------------ write_json
def test_write_json_is_sorted_indented_and_ends_with_a_newline(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"b": 1, "a": {"d": [1, 2], "c": None}})
    assert path.read_text() == '{\n  "a": {\n    "c": null,\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n'


def test_write_json_converts_numpy_values_and_paths(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"scalar": np.float32(0.5), "count": np.int64(3), "array": np.arange(3), "where": Path("x") / "y"})
    assert json.loads(path.read_text()) == {"scalar": 0.5, "count": 3, "array": [0, 1, 2], "where": os.path.join("x", "y")}


def test_write_json_of_an_unknown_type_fails_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"ok": 1})
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert _leftovers(tmp_path, {"r.json"}) == []


# ------------------------------------------------------------------------------ write_parquet
def test_write_parquet_of_a_table_stores_metadata_as_json_and_keeps_the_schema_metadata(tmp_path):
    path = tmp_path / "t.parquet"
    table = pa.table({"x": [1, 2]}).replace_schema_metadata({b"other": b"kept"})
    write_parquet(path, table, metadata={"seed": np.int64(7), "name": "exp"})
    read = pq.read_table(path)
    assert read.column("x").to_pylist() == [1, 2]
    assert read.schema.metadata[b"other"] == b"kept"
    assert json.loads(read.schema.metadata[b"rlpipe"]) == {"name": "exp", "seed": 7}


def test_write_parquet_of_a_dataframe_drops_its_index(tmp_path):
    path = tmp_path / "t.parquet"
    write_parquet(path, pd.DataFrame({"x": [1.5, 2.5]}, index=[10, 20]))
    read = pq.read_table(path)
    assert read.column_names == ["x"] and read.column("x").to_pylist() == [1.5, 2.5]
    assert b"rlpipe" not in (read.schema.metadata or {})


def test_a_failed_parquet_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "t.parquet"
    write_parquet(path, pa.table({"x": [1]}))
    with pytest.raises(TypeError):
        write_parquet(path, pa.table({"x": [2]}), metadata={"bad": object()})
    assert pq.read_table(path).column("x").to_pylist() == [1]
    assert _leftovers(tmp_path, {"t.parquet"}) == []


# ------------------------------------------------------------------------------ save_figure
def _figure() -> Figure:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([0, 1], [1, 0])
    return figure


def test_save_figure_takes_the_format_from_the_suffix(tmp_path):
    save_figure(_figure(), tmp_path / "f.png")
    save_figure(_figure(), tmp_path / "f.svg")
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:1000]
    assert _leftovers(tmp_path, {"f.png", "f.svg"}) == []


def test_save_figure_png_has_no_software_stamp_and_is_reproducible(tmp_path):
    save_figure(_figure(), tmp_path / "a.png", dpi=50)
    save_figure(_figure(), tmp_path / "b.png", dpi=50)
    data = (tmp_path / "a.png").read_bytes()
    assert b"Software" not in data and b"matplotlib" not in data
    assert data == (tmp_path / "b.png").read_bytes()


@pytest.mark.parametrize("suffix, date_field", [("svg", b"<dc:date>"), ("pdf", b"/CreationDate")])
def test_save_figure_writes_no_timestamp_in_any_format(tmp_path, monkeypatch, suffix, date_field):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    save_figure(_figure(), tmp_path / f"f.{suffix}")
    assert date_field not in (tmp_path / f"f.{suffix}").read_bytes()
