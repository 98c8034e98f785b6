"""rlpipe.runtime.writer.DefaultWriter: rows, tags, maxlen, Arrow round trip, and progress output."""
from __future__ import annotations

import io
import logging
import math
import types

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import rlpipe.runtime.writer as writer_module
from rlpipe.runtime.writer import COLUMNS, DefaultWriter


def quiet(**kwargs) -> DefaultWriter:
    return DefaultWriter(print_log=False, **kwargs)


def rows(writer: DefaultWriter) -> list[tuple]:
    """(tag, value, global_step) rows, NaN steps as None so that lists compare."""
    data = writer.data
    return [(t, v, None if math.isnan(s) else s) for t, v, s in zip(data["tag"], data["value"], data["global_step"])]


class FakeClock:
    """Replaces rlpipe.runtime.writer.time so that log timing is under the test's control."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(writer_module, "time", types.SimpleNamespace(perf_counter=fake.perf_counter))
    return fake


# ---------------------------------------------------------------------------------------------- data
def test_data_rows_columns_and_dtypes():
    w = quiet(name="agentA")
    w.add_scalar("loss", 0.5, 1)
    w.add_scalar("reward", 2, 1)
    w.add_scalar("loss", np.float32(0.25), 2)
    data = w.data
    assert isinstance(data, pd.DataFrame)
    assert list(data.columns) == list(COLUMNS) == ["name", "tag", "value", "dw_time_elapsed", "global_step"]
    assert data["name"].tolist() == ["agentA"] * 3
    assert data["tag"].tolist() == ["loss", "reward", "loss"]
    assert data["value"].tolist() == [0.5, 2.0, 0.25]
    assert data["global_step"].tolist() == [1.0, 1.0, 2.0]
    for column in ("value", "dw_time_elapsed", "global_step"):
        assert data[column].dtype == np.float64
    elapsed = data["dw_time_elapsed"].to_numpy()
    assert (elapsed >= 0).all() and (np.diff(elapsed) >= 0).all()


def test_to_arrow_schema():
    w = quiet(name="n")
    w.add_scalar("x", 1, 3)
    table = w.to_arrow()
    assert isinstance(table, pa.Table)
    assert table.schema.names == list(COLUMNS)
    assert [str(t) for t in table.schema.types] == ["string", "string", "double", "double", "double"]
    assert table.num_rows == 1
    assert table.column("global_step").to_pylist() == [3.0]


def test_empty_writer_has_the_columns():
    w = quiet()
    assert w.to_arrow().num_rows == 0
    assert w.to_arrow().schema.names == list(COLUMNS)
    assert list(w.data.columns) == list(COLUMNS)
    assert len(w.data) == 0


def test_global_step_none_is_nan():
    w = quiet()
    w.add_scalar("x", 1.0)
    w.add_scalar("x", 2.0, global_step=None)
    w.add_scalar("x", 3.0, 7)
    steps = w.data["global_step"].to_numpy()
    assert np.isnan(steps[0]) and np.isnan(steps[1]) and steps[2] == 7.0
    assert w.to_arrow().column("global_step").null_count == 0  # NaN, not null, as documented


def test_add_scalars_tag_naming():
    w = quiet()
    w.add_scalars("loss", {"actor": 1.0, "critic": 2.0}, global_step=5)
    assert rows(w) == [("loss_actor", 1.0, 5.0), ("loss_critic", 2.0, 5.0)]
    assert w.read_last_tag_value("critic", main_tag="loss") == 2.0


def test_read_tag_value_first_and_last():
    w = quiet()
    for step, value in [(1, 10.0), (2, 20.0), (5, 50.0)]:
        w.add_scalar("r", value, step)
        w.add_scalar("other", -value, step)
    series = w.read_tag_value("r")
    assert isinstance(series, pd.Series)
    assert series.tolist() == [10.0, 20.0, 50.0]
    assert series.index.tolist() == [1, 2, 5]
    assert series.name == "r"
    assert w.read_first_tag_value("r") == 10.0
    assert w.read_last_tag_value("r") == 50.0
    assert w.read_tag_value("missing").empty


# ---------------------------------------------------------------------------------------------- maxlen
def test_maxlen_keeps_the_last_rows_of_each_tag():
    w = quiet(maxlen=3)
    for i in range(10):
        w.add_scalar("a", i, i)
        w.add_scalar("b", 100 + i, i)
    data = w.data
    assert data[data.tag == "a"]["value"].tolist() == [7.0, 8.0, 9.0]
    assert data[data.tag == "b"]["value"].tolist() == [107.0, 108.0, 109.0]
    assert data["tag"].tolist() == ["a", "b"] * 3  # order of the kept rows is preserved


def test_maxlen_trims_in_batches_with_many_rows():
    w = quiet(maxlen=2)
    for i in range(5000):
        w.add_scalar("a", i, i)
    assert len(w._tags) <= 2 * 2 + 1024 + 1  # the buffer never grows without bound
    assert w.data["value"].tolist() == [4998.0, 4999.0]


def test_maxlen_by_tag_overrides_maxlen():
    w = quiet(maxlen=4, maxlen_by_tag={"a": 1})
    for i in range(10):
        w.add_scalar("a", i, i)
        w.add_scalar("b", i, i)
    data = w.data
    assert data[data.tag == "a"]["value"].tolist() == [9.0]
    assert data[data.tag == "b"]["value"].tolist() == [6.0, 7.0, 8.0, 9.0]


def test_maxlen_by_tag_alone_leaves_other_tags_unbounded():
    w = quiet(maxlen_by_tag={"a": 2})
    for i in range(10):
        w.add_scalar("a", i, i)
        w.add_scalar("b", i, i)
    data = w.data
    assert data[data.tag == "a"]["value"].tolist() == [8.0, 9.0]
    assert len(data[data.tag == "b"]) == 10


def test_read_tag_value_respects_maxlen():
    w = quiet(maxlen=3)
    for i in range(10):
        w.add_scalar("x", i, i)
    assert w.read_tag_value("x").tolist() == [7.0, 8.0, 9.0]
    assert w.read_first_tag_value("x") == 7.0


# ---------------------------------------------------------------------------------------------- reset / arrow
def test_reset_forgets_everything():
    w = quiet()
    w.add_scalar("x", 1.0, 1)
    w.reset()
    assert len(w.data) == 0
    assert w.read_tag_value("x").empty
    w.add_scalar("y", 2.0, 1)
    assert rows(w) == [("y", 2.0, 1.0)]


def test_load_arrow_round_trip():
    source = quiet(name="src")
    for i in range(5):
        source.add_scalar("reward", float(i) / 3, i + 1)
        source.add_scalar("no_step", float(i))
    table = source.to_arrow()

    target = quiet(name="dst")
    target.add_scalar("junk", 99.0, 1)  # replaced by the load
    target.load_arrow(table)
    loaded = target.to_arrow()
    for column in ("tag", "value"):
        assert loaded.column(column).to_pylist() == table.column(column).to_pylist()
    np.testing.assert_array_equal(loaded.column("global_step").to_numpy(), table.column("global_step").to_numpy())
    np.testing.assert_allclose(loaded.column("dw_time_elapsed").to_numpy(), table.column("dw_time_elapsed").to_numpy(),
                               rtol=0, atol=1e-9)
    assert target.read_tag_value("reward").tolist() == source.read_tag_value("reward").tolist()

    old_max = float(np.max(table.column("dw_time_elapsed").to_numpy()))
    target.add_scalar("reward", 10.0, 6)
    elapsed = target.data["dw_time_elapsed"].to_numpy()
    assert elapsed[-1] >= old_max  # the clock continues after the loaded data
    assert (np.diff(elapsed) >= 0).all()


def test_load_arrow_of_an_empty_table():
    w = quiet()
    w.load_arrow(quiet().to_arrow())
    assert len(w.data) == 0
    w.add_scalar("x", 1.0, 1)
    assert w.data["dw_time_elapsed"].iloc[0] >= 0


def test_load_arrow_clock_continues_with_fake_clock(clock):
    source = quiet()
    clock.now = 100.0
    source.reset()
    clock.now = 105.0
    source.add_scalar("x", 1.0, 1)
    assert source.data["dw_time_elapsed"].tolist() == [5.0]
    clock.now = 500.0
    target = quiet()
    target.load_arrow(source.to_arrow())
    clock.now = 502.0
    target.add_scalar("x", 2.0, 2)
    assert target.data["dw_time_elapsed"].tolist() == [5.0, 7.0]


# ---------------------------------------------------------------------------------------------- output
@pytest.mark.parametrize("style", ["one_line", "multi_line"])
def test_log_output_contains_tags_and_values(style):
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log=style, log_interval=0, stream=stream)
    w.add_scalar("episode_rewards", 1.5, 10)
    w.add_scalar("episode_rewards", 2.5, 20)
    w.add_scalar("loss", 0.125, 20)
    out = stream.getvalue()
    assert "[exp]" in out
    assert "episode_rewards" in out and "2.5" in out
    assert "loss" in out and "0.125" in out
    assert "max_global_step" in out and "20" in out


def test_one_line_format():
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="one_line", log_interval=0, stream=stream)
    w.add_scalar("loss", 0.25, 1)
    w.add_scalar("loss", 0.125, 2)
    assert stream.getvalue().splitlines()[-1] == "[exp] | max_global_step = 2 | loss = 0.125"


def test_multi_line_format_has_header_and_values(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for the two-line table
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="multi_line", log_interval=0, stream=stream)
    w.add_scalar("loss", 0.25, 1)
    w.add_scalar("loss", 0.125, 2)
    header, values = stream.getvalue().splitlines()[-2:]
    assert header.startswith("[exp]") and values.startswith("[exp]")
    assert header.split()[1:] == ["max_global_step", "|", "loss"]
    assert values.split()[1:] == ["2", "|", "0.125"]


def test_worker_id_from_execution_metadata_is_shown():
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="one_line", log_interval=0, stream=stream, execution_metadata=3)
    w.add_scalar("x", 1.0, 1)
    w.add_scalar("x", 2.0, 2)
    assert stream.getvalue().startswith("[exp[worker: 3]] |")


def test_no_output_before_a_value_with_global_step():
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="one_line", log_interval=0, stream=stream)
    for i in range(20):
        w.add_scalar("loss", float(i))  # no global_step
    assert stream.getvalue() == ""
    w.add_scalar("loss", 1.0, 1)
    w.add_scalar("loss", 2.0, 2)
    assert "loss = 2" in stream.getvalue()


def test_first_value_with_global_step_is_printed_with_zero_interval():
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="one_line", log_interval=0, stream=stream)
    w.add_scalar("loss", 0.5, 1)
    assert "loss = 0.5" in stream.getvalue()


def test_log_interval_limits_output(clock):
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="one_line", log_interval=10, stream=stream)
    w.add_scalar("x", 1.0, 1)  # t = 0: the first value is printed at once
    assert stream.getvalue() == "[exp] | max_global_step = 1 | x = 1\n"
    clock.now = 5.0
    w.add_scalar("x", 2.0, 2)
    assert stream.getvalue().count("\n") == 1
    clock.now = 10.0
    w.add_scalar("x", 3.0, 3)
    assert stream.getvalue().splitlines()[-1] == "[exp] | max_global_step = 3 | x = 3"
    clock.now = 15.0
    w.add_scalar("x", 4.0, 4)
    assert stream.getvalue().count("\n") == 2
    clock.now = 20.0
    w.add_scalar("x", 5.0, 5)
    assert stream.getvalue().splitlines()[-1] == "[exp] | max_global_step = 5 | x = 5"


def test_log_after_maxlen_trim_shows_latest_values(clock):
    stream = io.StringIO()
    w = DefaultWriter(style_log="one_line", log_interval=10, maxlen=1, stream=stream)
    w.add_scalar("y", 1.0, 1)
    clock.now = 10.0
    w.add_scalar("x", 1.0, 2)  # logged: y = 1, x = 1
    clock.now = 11.0
    w.add_scalar("y", 5.0, 3)
    for i in range(1030):  # enough rows to trigger a trim
        w.add_scalar("x", 2.0, 4 + i)
    clock.now = 20.0
    w.add_scalar("x", 3.0, 5000)
    assert stream.getvalue().splitlines()[-1].endswith("y = 5 | x = 3")


def test_print_log_false_prints_nothing(capsys):
    stream = io.StringIO()
    w = DefaultWriter(print_log=False, log_interval=0, stream=stream)
    for i in range(50):
        w.add_scalar("x", float(i), i)
    w.close()
    assert stream.getvalue() == ""
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert len(w.data) == 50  # recording is unaffected


@pytest.fixture
def rlpipe_log(caplog):
    """Capture the rlpipe logger (its records propagate to the root logger, where caplog listens)."""
    logger = logging.getLogger("rlpipe")
    previous = logger.level
    yield caplog, logger
    logger.setLevel(previous)


def test_default_output_goes_to_the_rlpipe_logger(rlpipe_log):
    caplog, logger = rlpipe_log
    logger.setLevel(logging.INFO)
    w = DefaultWriter(name="e", style_log="one_line", log_interval=0)
    w.add_scalar("x", 1.0, 1)
    w.add_scalar("x", 2.0, 2)
    assert [r.getMessage() for r in caplog.records][-1] == "[e] | max_global_step = 2 | x = 2"


def test_no_progress_lines_when_the_logger_is_above_info(rlpipe_log):
    caplog, logger = rlpipe_log
    logger.setLevel(logging.WARNING)
    w = DefaultWriter(name="e", style_log="one_line", log_interval=0)
    w.add_scalar("x", 1.0, 1)
    assert caplog.records == []


def test_scalars_are_written_to_tensorboard_event_files(tmp_path):
    pytest.importorskip("tensorboardX")
    w = DefaultWriter(name="e", print_log=False, tensorboard_kwargs={"log_dir": str(tmp_path)})
    for step in range(5):
        w.add_scalar("loss", 1.0 / (step + 1), step)
    w.close()
    events = list(tmp_path.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    assert len(w.data) == 5


def test_tensorboard_without_a_writer_package_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name in ("tensorboardX", "torch.utils.tensorboard"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        DefaultWriter(tensorboard_kwargs={"log_dir": "unused"})


def test_progressbar_writes_to_the_stream():
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="progressbar", log_interval=0, stream=stream)
    w.set_max_global_step(10)
    w.add_scalar("loss", 0.5, 1)
    w.add_scalar("loss", 0.125, 4)
    w.close()
    out = stream.getvalue()
    assert "exp" in out
    assert "4/10" in out
    assert "loss=0.125" in out
    assert w._progressbar is None  # closed
    w.close()  # closing twice is fine


def test_invalid_style_raises_value_error():
    with pytest.raises(ValueError, match="style_log must be one of"):
        DefaultWriter(style_log="fancy")


def test_unknown_add_methods_are_no_ops():
    w = quiet()
    assert w.add_text("tag", "text", 1) is None
    assert w.add_histogram("h", np.arange(3), global_step=2) is None
    assert w.add_hparams({"lr": 0.1}, {"score": 1.0}) is None
    assert len(w.data) == 0
    with pytest.raises(AttributeError):
        w.not_a_method  # noqa: B018 - only add_* names are accepted


def test_compatibility_arguments_are_kept(tmp_path):
    pytest.importorskip("tensorboardX")
    w = DefaultWriter(tensorboard_kwargs={"log_dir": str(tmp_path)}, execution_metadata=2, print_log=False)
    assert w.tensorboard_kwargs == {"log_dir": str(tmp_path)}
    assert w.execution_metadata == 2
    w.close()


def test_multi_line_falls_back_to_one_line_when_too_wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "20")
    stream = io.StringIO()
    w = DefaultWriter(name="exp", style_log="multi_line", log_interval=0, stream=stream)
    w.add_scalar("loss", 0.25, 1)
    w.add_scalar("loss", 0.125, 2)
    assert stream.getvalue() == "[exp] | max_global_step = 1 | loss = 0.25\n[exp] | max_global_step = 2 | loss = 0.125\n"


def test_tensorboards_other_methods_are_accepted_and_a_typo_raises():
    w = DefaultWriter(print_log=False)
    w.add_text("notes", "hello")  # TensorBoard's methods: ignored without TensorBoard, as in rlberry
    w.add_histogram("weights", [1.0, 2.0], 3)
    w.flush()
    with pytest.raises(AttributeError, match=r"DefaultWriter has no method 'add_scaler' \(did you mean 'add_scalar'\?\)"):
        w.add_scaler("loss", 1.0)  # a typo would otherwise record nothing, silently
    assert w.data.empty


def test_tensorboards_other_methods_reach_tensorboard(tmp_path):
    w = DefaultWriter(print_log=False, tensorboard_kwargs={"logdir": str(tmp_path)})
    w.add_text("notes", "hello")
    w.add_histogram("weights", np.arange(10.0), 1)
    w.close()
    assert sum(p.stat().st_size for p in tmp_path.glob("events.out.tfevents.*")) > 200
