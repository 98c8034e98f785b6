"""Compare experiments: one row per experiment in results/summary.csv and summary.md, and a plot."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.core import plots
from rlpipe.io.atomic import save_figure, write_text
from rlpipe.io.paths import StudyPaths

SUMMARY_COLUMNS = ["experiment", "agent", "env", "n_fit", "fit_budget", "mean", "std", "median", "iqm",
                   "ci_low", "ci_high", "confidence", "fit_wall_time_s", "fit_cpu_time_s",
                   "git_commit"]


def read_summaries(summary_files: Sequence[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(summary, per_instance)``: one row per experiment, and one row per (experiment, instance) score."""
    records = [json.loads(Path(f).read_text()) for f in summary_files]
    summary = pd.DataFrame.from_records(records)
    for column in ("fit_wall_time_s", "fit_cpu_time_s"):  # the mean over instances (a summary without it: NaN)
        summary[column] = [float(np.mean(r.get(column) or [np.nan], dtype=float)) for r in records]
    summary["git_commit"] = [_commit(r.get("git") or {}) for r in records]
    per_instance = pd.DataFrame(
        [(r["experiment"], int(i), score) for r in records for i, score in r["per_instance"].items()],
        columns=["experiment", "instance", "score"],
    )
    return summary[SUMMARY_COLUMNS], per_instance


def compare_experiments(summary_files: Sequence[str | Path], paths: StudyPaths) -> pd.DataFrame:
    summary, per_instance = read_summaries(summary_files)
    write_text(paths.summary_csv, summary.to_csv(index=False))
    write_text(paths.summary_md, _markdown(summary))
    save_figure(plots.comparison_figure(summary, per_instance), paths.comparison_plot, dpi=120)
    return summary


def _commit(git: dict) -> str | None:
    """The commit a summary was made at, marked ``+dirty`` when the tree had uncommitted changes."""
    if not git.get("commit"):
        return None
    return git["commit"][:12] + ("+dirty" if git.get("dirty") else "")


def _markdown(summary: pd.DataFrame) -> str:
    confidence = summary["confidence"].iloc[0]
    table = summary.assign(
        **{f"{confidence:.0%} CI of mean": [f"[{lo:.3g}, {hi:.3g}]" for lo, hi in zip(summary.ci_low, summary.ci_high)]}
    ).drop(columns=["ci_low", "ci_high", "confidence", "git_commit"])
    commits = ", ".join(sorted(set(summary["git_commit"].fillna("unknown"))))
    lines = [
        "# Study summary",
        "",
        "Score: mean evaluation score per fitted instance (the return of its evaluation episodes, discounted "
        "with each experiment's eval gamma, or the value of its agent's own eval); statistics are over instances.",
        "",
        table.to_markdown(index=False, floatfmt=".4g"),
        "",
        f"Made by rlpipe at commit {commits} (see provenance.html).",
        "",
    ]
    return "\n".join(lines)
