"""``DefaultWriter``: rlberry's writer interface, buffered in memory and flushed to Parquet.

Rows are ``name, tag, value, dw_time_elapsed, global_step`` (``global_step`` is NaN when not given).
``add_scalar`` only appends to four lists and reads the clock, so a call costs about a microsecond;
progress lines are printed at most every ``log_interval`` seconds, after the first value that has a
``global_step``.
"""
from __future__ import annotations

import logging
import math
import shutil
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from rlpipe.runtime.keywords import suggestion

STYLES = ("multi_line", "one_line", "progressbar")
# TensorBoard SummaryWriter's methods besides add_scalar(s), which agents written for TensorBoard call.
SUMMARY_WRITER_METHODS = frozenset({
    "add_audio", "add_custom_scalars", "add_custom_scalars_marginchart", "add_custom_scalars_multilinechart",
    "add_embedding", "add_figure", "add_graph", "add_histogram", "add_histogram_raw", "add_hparams", "add_image",
    "add_image_with_boxes", "add_images", "add_mesh", "add_onnx_graph", "add_pr_curve", "add_pr_curve_raw",
    "add_text", "add_video", "flush",
})
_LOGGER = logging.getLogger("rlpipe.runtime.writer")
COLUMNS = ("name", "tag", "value", "dw_time_elapsed", "global_step")


class DefaultWriter:
    """Record scalars during training and print progress.

    Parameters mirror rlberry: ``name`` labels every row; ``print_log`` and ``style_log`` control the
    progress output (``multi_line``, ``one_line`` or a tqdm ``progressbar`` whose total is set with
    :meth:`set_max_global_step`); ``log_interval`` is in seconds; ``maxlen`` (or ``maxlen_by_tag``)
    keeps only the last rows of each tag. ``tensorboard_kwargs`` (e.g. ``{"log_dir": ...}``) also
    writes every scalar to TensorBoard event files, with tensorboardX or torch's SummaryWriter.
    ``execution_metadata`` is the worker index shown in progress lines. Progress lines go to
    ``stream`` if given, else to the ``rlpipe`` logger at INFO level.
    """

    def __init__(
        self,
        name: str = "",
        print_log: bool = True,
        style_log: str = "multi_line",
        log_interval: float = 3,
        tensorboard_kwargs: Mapping[str, Any] | None = None,
        execution_metadata: Any = None,
        maxlen: int | None = None,
        maxlen_by_tag: Mapping[str, int] | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        if style_log not in STYLES:
            raise ValueError(f"style_log must be one of {STYLES}, got {style_log!r}")
        self.name = name
        self.print_log = print_log
        self.style_log = style_log
        self.log_interval = float(log_interval)
        self.tensorboard_kwargs = dict(tensorboard_kwargs) if tensorboard_kwargs else None
        self._summary_writer = summary_writer(self.tensorboard_kwargs) if self.tensorboard_kwargs else None
        self.execution_metadata = execution_metadata
        self.maxlen = maxlen
        self.maxlen_by_tag = dict(maxlen_by_tag or {})
        self._stream = stream
        self._max_global_step: float | None = None
        self._progressbar: Any = None
        self.reset()

    # ------------------------------------------------------------------ recording
    def reset(self) -> None:
        """Forget all data and restart the clock."""
        self._tags: list[str] = []
        self._values: list[float] = []
        self._times: list[float] = []
        self._steps: list[float] = []
        self._start = time.perf_counter()
        self._time_offset = 0.0
        self._next_log = 0.0  # the first value with a global_step is printed at once
        self._logged_upto = 0
        self._last_values: dict[str, float] = {}
        self._last_step: float = 0
        self._trim_above = self._row_limit()

    def add_scalar(self, tag: str, scalar_value: float, global_step: int | None = None,
                   walltime: float | None = None, new_style: bool = False) -> None:
        """Record ``scalar_value`` under ``tag`` at ``global_step``."""
        now = time.perf_counter()
        self._tags.append(tag)
        self._values.append(scalar_value)
        self._times.append(now)
        if global_step is None:
            self._steps.append(math.nan)
        else:
            self._steps.append(global_step)
            if now >= self._next_log:
                self._log(now)
        if len(self._tags) > self._trim_above:
            self._trim()
        if self._summary_writer is not None:
            self._summary_writer.add_scalar(tag, scalar_value, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: Mapping[str, float], global_step: int | None = None) -> None:
        """Record each ``{k: v}`` under ``f"{main_tag}_{k}"``."""
        for key, value in tag_scalar_dict.items():
            self.add_scalar(f"{main_tag}_{key}", value, global_step)

    def __getattr__(self, name: str) -> Any:
        """TensorBoard's other methods (``add_text``, ``add_histogram``…) go to TensorBoard when it is enabled and are
        ignored otherwise, as in rlberry; any other name is a typo (``add_scaler``) and raises."""
        if name in SUMMARY_WRITER_METHODS:
            method = getattr(self.__dict__.get("_summary_writer"), name, None)
            return method if method is not None else _ignore
        raise AttributeError(f"DefaultWriter has no method '{name}'{suggestion(name, writer_methods())}")

    # ------------------------------------------------------------------ reading
    @property
    def data(self) -> "Any":
        """All rows as a pandas DataFrame (empty with the right columns if nothing was recorded)."""
        return self.to_arrow().to_pandas()

    def to_arrow(self) -> "Any":
        """All rows as a pyarrow Table with the documented column types."""
        import pyarrow as pa

        from rlpipe.io.arrow import float64_array, string_array

        self._trim()
        elapsed = np.asarray(self._times, dtype=np.float64) - self._start + self._time_offset
        columns = [string_array([self.name] * len(self._tags)), string_array(self._tags), float64_array(self._values),
                   float64_array(elapsed), float64_array(self._steps)]
        return pa.Table.from_arrays(columns, names=list(COLUMNS))

    def load_arrow(self, table: "Any") -> None:
        """Replace the data by ``table`` (as written by :meth:`to_arrow`); the clock continues after it."""
        self.reset()
        self._tags = table.column("tag").to_pylist()
        self._values = table.column("value").to_pylist()
        elapsed = table.column("dw_time_elapsed").to_numpy()
        self._time_offset = float(elapsed.max()) if len(elapsed) else 0.0
        self._times = list(elapsed - self._time_offset + self._start)
        self._steps = table.column("global_step").to_pylist()

    def read_tag_value(self, tag: str, main_tag: str = "") -> "Any":
        """The values of one tag, as a pandas Series indexed by global_step."""
        import pandas as pd

        self._trim()
        full = f"{main_tag}_{tag}" if main_tag else tag
        idx = [i for i, t in enumerate(self._tags) if t == full]
        return pd.Series([self._values[i] for i in idx], index=[self._steps[i] for i in idx], name=full, dtype=float)

    def read_first_tag_value(self, tag: str, main_tag: str = "") -> float:
        return float(self.read_tag_value(tag, main_tag).iloc[0])

    def read_last_tag_value(self, tag: str, main_tag: str = "") -> float:
        return float(self.read_tag_value(tag, main_tag).iloc[-1])

    # ------------------------------------------------------------------ maxlen
    def _row_limit(self) -> float:
        if self.maxlen is None and not self.maxlen_by_tag:
            return math.inf
        # Trim in batches: checking a length per call is cheap, trimming per call is not.
        return 2 * max([self.maxlen or 0, *self.maxlen_by_tag.values()]) + 1024

    def _trim(self) -> None:
        if self._trim_above == math.inf:
            return
        keep: list[int] = []
        seen: dict[str, int] = {}
        for i in range(len(self._tags) - 1, -1, -1):
            tag = self._tags[i]
            limit = self.maxlen_by_tag.get(tag, self.maxlen)
            count = seen.get(tag, 0)
            if limit is None or count < limit:
                keep.append(i)
                seen[tag] = count + 1
        keep.reverse()
        self._logged_upto = sum(1 for i in keep if i < self._logged_upto)
        for column in ("_tags", "_values", "_times", "_steps"):
            values = getattr(self, column)
            setattr(self, column, [values[i] for i in keep])

    # ------------------------------------------------------------------ progress output
    def set_max_global_step(self, max_global_step: float) -> None:
        """The budget shown by the ``progressbar`` style."""
        self._max_global_step = max_global_step

    def close(self) -> None:
        if self._progressbar is not None:
            self._progressbar.close()
            self._progressbar = None
        if self._summary_writer is not None:
            self._summary_writer.close()
            self._summary_writer = None

    def _log(self, now: float) -> None:
        self._next_log = now + self.log_interval
        if not self.print_log or (self._stream is None and not _LOGGER.isEnabledFor(logging.INFO)):
            return
        last = self._last_values
        for i in range(self._logged_upto, len(self._tags)):
            last[self._tags[i]] = self._values[i]
            if self._steps[i] > self._last_step:  # NaN compares False
                self._last_step = self._steps[i]
        self._logged_upto = len(self._tags)
        step = self._last_step
        worker = getattr(self.execution_metadata, "obj_worker_id", self.execution_metadata)
        label = f"{self.name}[worker: {worker}]" if worker is not None else self.name
        if self.style_log == "progressbar":
            self._update_progressbar(step, last)
            return
        fields = {"max_global_step": step, **{k: f"{v:.4g}" for k, v in last.items()}}
        if self.style_log == "multi_line":
            header = " | ".join(f"{k:>{_width(k, v)}}" for k, v in fields.items())
            values = " | ".join(f"{v!s:>{_width(k, v)}}" for k, v in fields.items())
            if len(header) + len(label) + 3 <= shutil.get_terminal_size((120, 20)).columns:
                self._emit(f"[{label}] {header}\n[{label}] {values}")
                return
        self._emit(f"[{label}] | " + " | ".join(f"{k} = {v}" for k, v in fields.items()))

    def _emit(self, line: str) -> None:
        if self._stream is not None:
            print(line, file=self._stream, flush=True)
        else:
            _LOGGER.info(line)

    def _update_progressbar(self, step: float, last: dict[str, float]) -> None:
        from tqdm import tqdm

        if self._progressbar is None:
            self._progressbar = tqdm(total=self._max_global_step, desc=self.name, file=self._stream or sys.stderr, leave=True)
        self._progressbar.n = step
        self._progressbar.set_postfix({k: f"{v:.4g}" for k, v in last.items()}, refresh=True)


def summary_writer_class() -> type:
    """TensorBoard's SummaryWriter from tensorboardX, or else torch; a clear ImportError without either."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ImportError(
                "TensorBoard logging needs a SummaryWriter: pip install tensorboardX (or torch with tensorboard)"
            ) from None
    return SummaryWriter


def summary_writer(tensorboard_kwargs: Mapping[str, Any]) -> Any:
    return summary_writer_class()(**tensorboard_kwargs)


def _width(key: str, value: Any) -> int:
    return max(len(key), len(str(value)))


def writer_methods() -> list[str]:
    """Every method a writer answers: DefaultWriter's own and TensorBoard's."""
    own = [name for name, value in vars(DefaultWriter).items() if callable(value) and not name.startswith("_")]
    return sorted({*own, *SUMMARY_WRITER_METHODS})


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None
