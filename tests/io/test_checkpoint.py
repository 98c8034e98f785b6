"""rlpipe.io.checkpoint, the file formats themselves: npz archives with a JSON ``__meta__`` record read without
pickle, and cloudpickles behind a magic header (bz2 when asked) that are only read when trusted and keep named
references as one object. Agent-level checks of the same files are in tests/agents/test_agents.py."""
from __future__ import annotations

import bz2
import json
import os
import pickle
import threading
import zipfile

import numpy as np
import pytest

from rlpipe.errors import CheckpointError
from rlpipe.io.checkpoint import (
    COMPRESSED_PICKLE_MAGIC,
    FORMAT,
    META_KEY,
    PICKLE_MAGIC,
    is_pickle_checkpoint,
    read_checkpoint,
    read_pickle_checkpoint,
    write_checkpoint,
    write_pickle_checkpoint,
)


class LeavesAMark:
    """Unpickling it creates a file: proof that code from a checkpoint ran."""

    def __init__(self, mark: str) -> None:
        self.mark = mark

    def __reduce__(self):
        return open, (self.mark, "w")


class Writer:
    """Stands for an object the caller owns (an agent's writer): saved by name, given back at load."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Unconvertible:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("cannot become an array")


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------ npz checkpoints
def test_arrays_and_meta_round_trip_with_their_dtypes_and_shapes(tmp_path):
    arrays = {"q": np.arange(12, dtype=np.float32).reshape(3, 4), "visits": np.array([1, 0, 2]),
              "done": np.array([True, False]), "scalar": np.float64(2.5), "names": np.array(["a", "bé"])}
    meta = {"agent_class": "pkg:Agent", "state": {"epsilon": 0.1, "tags": ["x"], "nothing": None}}
    returned = write_checkpoint(tmp_path / "agent.ckpt", arrays, meta)
    assert returned == tmp_path / "agent.ckpt" and _files(tmp_path) == ["agent.ckpt"]  # no .npz suffix added
    read_arrays, read_meta = read_checkpoint(returned)
    assert read_meta == {"format": FORMAT, **meta}
    assert set(read_arrays) == set(arrays)
    for name, value in arrays.items():
        assert read_arrays[name].dtype == np.asarray(value).dtype and read_arrays[name].shape == np.shape(value)
        np.testing.assert_array_equal(read_arrays[name], value)


def test_lists_are_stored_as_arrays(tmp_path):
    write_checkpoint(tmp_path / "a.ckpt", {"actions": [2, 0, 1], "empty": []}, {})
    arrays, meta = read_checkpoint(tmp_path / "a.ckpt")
    assert arrays["actions"].tolist() == [2, 0, 1] and arrays["empty"].shape == (0,)
    assert meta == {"format": FORMAT}


def test_the_file_is_an_npz_with_a_sorted_json_meta_record_and_no_pickle(tmp_path):
    path = write_checkpoint(tmp_path / "a.ckpt", {"w": np.zeros(2)}, {"b": 1, "a": 2})
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == [f"{META_KEY}.npy", "w.npy"]
    with np.load(path, allow_pickle=False) as archive:
        document = str(archive[META_KEY])
    assert document == '{"a": 2, "b": 1, "format": "rlpipe-checkpoint/1"}'
    assert json.loads(document)["format"] == FORMAT == "rlpipe-checkpoint/1"


def test_meta_key_is_reserved_among_arrays_and_nothing_is_written(tmp_path):
    with pytest.raises(ValueError, match="'__meta__' is reserved"):
        write_checkpoint(tmp_path / "a.ckpt", {META_KEY: np.zeros(1)}, {})
    assert _files(tmp_path) == []


def test_a_rewrite_replaces_the_checkpoint(tmp_path):
    path = tmp_path / "a.ckpt"
    write_checkpoint(path, {"w": np.zeros(3), "old": np.ones(1)}, {"step": 1})
    write_checkpoint(path, {"w": np.ones(2)}, {"step": 2})
    arrays, meta = read_checkpoint(path)
    assert set(arrays) == {"w"} and arrays["w"].tolist() == [1.0, 1.0] and meta["step"] == 2


def test_a_write_failing_halfway_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "a.ckpt"
    write_checkpoint(path, {"w": np.arange(3)}, {"step": 1})
    with pytest.raises(RuntimeError, match="cannot become an array"):
        write_checkpoint(path, {"w": np.arange(5), "bad": Unconvertible()}, {"step": 2})
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_checkpoint(path, {"w": np.arange(5)}, {"step": object()})
    arrays, meta = read_checkpoint(path)
    assert arrays["w"].tolist() == [0, 1, 2] and meta["step"] == 1
    assert _files(tmp_path) == ["a.ckpt"]


def test_a_folder_is_not_a_checkpoint(tmp_path):
    (tmp_path / "a.ckpt").mkdir()
    with pytest.raises(CheckpointError, match=r"a\.ckpt does not exist"):
        read_checkpoint(tmp_path / "a.ckpt")


@pytest.mark.parametrize("compress", [False, True])
def test_a_pickle_checkpoint_is_refused_by_the_array_reader(tmp_path, compress):
    path = write_pickle_checkpoint(tmp_path / "p.ckpt", {"x": 1}, compress=compress)
    with pytest.raises(CheckpointError, match=r"p\.ckpt is a pickle, not an array checkpoint"):
        read_checkpoint(path)


@pytest.mark.parametrize("written, read", [("rlpipe-checkpoint/0", "'rlpipe-checkpoint/0'"), (None, "None")])
def test_another_format_is_named_with_the_one_this_version_reads(tmp_path, written, read):
    document = json.dumps({} if written is None else {"format": written})
    np.savez(tmp_path / "old.npz", w=np.zeros(1), **{META_KEY: np.array(document)})
    with pytest.raises(CheckpointError, match=f"old.npz has format {read}; this rlpipe reads 'rlpipe-checkpoint/1'"):
        read_checkpoint(tmp_path / "old.npz")


def test_a_corrupted_member_of_a_complete_archive_is_a_checkpoint_error(tmp_path):
    path = write_checkpoint(tmp_path / "a.ckpt", {"w": np.arange(2000.0)}, {})
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # the zip's directory at the end stays intact
    path.write_bytes(bytes(data))
    assert zipfile.is_zipfile(path)
    with pytest.raises(CheckpointError, match=r"a\.ckpt is truncated or not an rlpipe checkpoint"):
        read_checkpoint(path)


def test_object_arrays_are_refused_without_running_their_code(tmp_path):
    mark = tmp_path / "ran"
    evil = np.array([LeavesAMark(str(mark)), None], dtype=object)
    np.savez(tmp_path / "evil.npz", w=evil, **{META_KEY: np.array(json.dumps({"format": FORMAT}))})
    with pytest.raises(CheckpointError, match=r"evil\.npz is truncated or not an rlpipe checkpoint .*allow_pickle"):
        read_checkpoint(tmp_path / "evil.npz")
    assert not mark.exists()


@pytest.mark.parametrize("document", ["[1, 2]", "42", '"text"', "null"])
def test_meta_that_is_json_but_not_an_object_is_a_checkpoint_error(tmp_path, document):
    np.savez(tmp_path / "foreign.npz", **{META_KEY: np.array(document)})
    with pytest.raises(CheckpointError, match=r"foreign\.npz"):
        read_checkpoint(tmp_path / "foreign.npz")


@pytest.mark.parametrize("arrays, meta, phrase", [({"w": np.zeros(1)}, {"format": "mine"}, "'format' is reserved"),
                                                  ({"w": np.array([(1, 2), "x"], dtype=object)}, {}, r"\['w'\]")],
                         ids=["format-in-meta", "object-array"])
def test_what_read_checkpoint_would_refuse_is_refused_when_written(tmp_path, arrays, meta, phrase):
    path = tmp_path / "a.ckpt"
    with pytest.raises(ValueError, match=phrase):
        write_checkpoint(path, arrays, meta)
    assert not path.exists() and _files(tmp_path) == []


def test_numpy_values_in_meta_are_written_as_json_values(tmp_path):
    """What a get_state returns alongside its arrays (counters, flags) is often a numpy scalar."""
    meta = {"state": {"steps": np.int64(7), "done": np.bool_(True), "rate": np.float32(0.5), "sizes": np.arange(2)}}
    _, read = read_checkpoint(write_checkpoint(tmp_path / "a.ckpt", {}, meta))
    assert read["state"] == {"steps": 7, "done": True, "rate": 0.5, "sizes": [0, 1]}
    assert type(read["state"]["steps"]) is int and type(read["state"]["done"]) is bool


@pytest.mark.parametrize("state, where", [({"ok": 1, "visited": {1, 2}}, r"at 'state\.visited' \(set\)"),
                                          ({"log": [1, [2, object()]]}, r"at 'state\.log\[1\]\[1\]' \(object\)"),
                                          ({"table": {(0, 1): 2.0}}, r"at 'state\.table': key \(0, 1\) \(tuple\)")],
                         ids=["set", "nested-object", "tuple-key"])
def test_meta_that_json_cannot_hold_is_refused_naming_where(tmp_path, state, where):
    path = tmp_path / "a.ckpt"
    with pytest.raises(TypeError, match="checkpoint meta " + where + " is not JSON serializable"):
        write_checkpoint(path, {}, {"state": state})
    assert not path.exists() and _files(tmp_path) == []


# ------------------------------------------------------------------------------ pickle checkpoints
@pytest.mark.parametrize("compress, magic", [(False, PICKLE_MAGIC), (True, COMPRESSED_PICKLE_MAGIC)])
def test_pickle_round_trip_behind_its_magic_header(tmp_path, compress, magic):
    state = {"counts": np.arange(4), "step": lambda x: x + 1, "name": "é"}  # cloudpickle: lambdas too
    path = write_pickle_checkpoint(tmp_path / "p.ckpt", state, compress=compress)
    data = path.read_bytes()
    assert data.startswith(magic) and is_pickle_checkpoint(path)
    body = data[len(magic):]
    assert body.startswith(b"BZh") if compress else body[:1] == pickle.PROTO
    loaded = read_pickle_checkpoint(path, trusted=True)
    assert loaded["counts"].tolist() == [0, 1, 2, 3] and loaded["step"](1) == 2 and loaded["name"] == "é"
    assert _files(tmp_path) == ["p.ckpt"]


def test_compression_is_bz2_of_the_plain_pickle(tmp_path):
    state = {"visits": [0] * 20_000}
    plain = write_pickle_checkpoint(tmp_path / "plain.ckpt", state).read_bytes()
    packed = write_pickle_checkpoint(tmp_path / "packed.ckpt", state, compress=True).read_bytes()
    assert bz2.decompress(packed[len(COMPRESSED_PICKLE_MAGIC):]) == plain[len(PICKLE_MAGIC):]
    assert len(packed) < len(plain) // 10


@pytest.mark.parametrize("head, expected", [(PICKLE_MAGIC + b"x", True), (COMPRESSED_PICKLE_MAGIC, True),
                                            (PICKLE_MAGIC[:-1], False), (b"", False), (b"PK\x03\x04", False),
                                            (b"rlpipe-pickle/1\n", False)])
def test_is_pickle_checkpoint_looks_at_the_magic_header_only(tmp_path, head, expected):
    (tmp_path / "f").write_bytes(head)
    assert is_pickle_checkpoint(tmp_path / "f") is expected


def test_an_array_checkpoint_is_not_a_pickle_checkpoint(tmp_path):
    assert not is_pickle_checkpoint(write_checkpoint(tmp_path / "a.ckpt", {"w": np.zeros(1)}, {}))


def test_references_are_stored_by_name_and_given_back_as_one_object(tmp_path):
    writer = Writer(b"SECRET-WRITER-PAYLOAD")
    state = {"writer": writer, "env": {"wrapper_writer": writer}, "other": Writer(b"kept")}
    path = write_pickle_checkpoint(tmp_path / "p.ckpt", state, references={"writer": writer, "shared": None})
    assert b"SECRET-WRITER-PAYLOAD" not in path.read_bytes() and b"kept" in path.read_bytes()
    given = Writer(b"new")
    loaded = read_pickle_checkpoint(path, trusted=True, references={"writer": given})
    assert loaded["writer"] is given and loaded["env"]["wrapper_writer"] is given
    assert loaded["other"].payload == b"kept"


def test_a_reference_not_given_at_load_comes_back_as_none(tmp_path):
    writer = Writer(b"w")
    path = write_pickle_checkpoint(tmp_path / "p.ckpt", {"writer": writer}, references={"writer": writer})
    assert read_pickle_checkpoint(path, trusted=True) == {"writer": None}


@pytest.mark.parametrize("compress", [False, True])
def test_an_untrusted_pickle_is_refused_before_any_code_runs(tmp_path, compress):
    mark = tmp_path / "ran"
    path = write_pickle_checkpoint(tmp_path / "p.ckpt", LeavesAMark(str(mark)), compress=compress)
    with pytest.raises(CheckpointError, match=r"p\.ckpt is a pickle; unpickling can run arbitrary code.*allow_pickle=True"):
        read_pickle_checkpoint(path, trusted=False)
    assert not mark.exists()
    read_pickle_checkpoint(path, trusted=True).close()
    assert mark.exists()  # the same file, trusted, does run its code


@pytest.mark.parametrize("content", [COMPRESSED_PICKLE_MAGIC + b"not bz2", PICKLE_MAGIC + b"\x00garbage",
                                     PICKLE_MAGIC, COMPRESSED_PICKLE_MAGIC],
                         ids=["bz2-garbage", "pickle-garbage", "plain-header-only", "bz2-header-only"])
def test_a_corrupt_pickle_is_a_checkpoint_error(tmp_path, content):
    (tmp_path / "p.ckpt").write_bytes(content)
    with pytest.raises(CheckpointError, match=r"p\.ckpt is truncated or corrupt"):
        read_pickle_checkpoint(tmp_path / "p.ckpt", trusted=True)


def test_a_truncated_compressed_pickle_is_a_checkpoint_error(tmp_path):
    data = write_pickle_checkpoint(tmp_path / "p.ckpt", {"x": list(range(5000))}, compress=True).read_bytes()
    (tmp_path / "p.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt .*end-of-stream"):
        read_pickle_checkpoint(tmp_path / "p.ckpt", trusted=True)


@pytest.mark.parametrize("compress", [False, True])
def test_an_unpicklable_object_keeps_the_previous_checkpoint(tmp_path, compress):
    path = write_pickle_checkpoint(tmp_path / "p.ckpt", {"step": 1}, compress=compress)
    with pytest.raises(TypeError, match="lock"):
        write_pickle_checkpoint(path, {"step": 2, "lock": threading.Lock()}, compress=compress)
    assert read_pickle_checkpoint(path, trusted=True) == {"step": 1}
    assert _files(tmp_path) == ["p.ckpt"]


@pytest.mark.parametrize("kind", ["array-checkpoint", "text", "missing"])
def test_reading_a_file_that_is_not_a_pickle_checkpoint_is_a_checkpoint_error(tmp_path, kind):
    path = tmp_path / "manager_objects.pkl"
    if kind == "array-checkpoint":
        write_checkpoint(path, {"w": np.zeros(1)}, {})
    elif kind == "text":
        path.write_text("hello\n")
    with pytest.raises(CheckpointError, match=r"manager_objects\.pkl"):
        read_pickle_checkpoint(path, trusted=True)
