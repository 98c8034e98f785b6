"""The provenance page of a study's report: what made its results, so a reader can rebuild them a year later.

It holds the config as the run saw it (files merged, ``--config`` overrides applied) and its hash, the root seed,
the code (git commit and whether it had uncommitted changes, library versions), the machine that assembled the
page, and, per experiment, what its ``summary.json`` says made it: results cached from an earlier commit show up
there instead of being silently attributed to the current one.
"""
from __future__ import annotations

import html
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from rlpipe.io.atomic import write_json, write_text
from rlpipe.io.paths import StudyPaths
from rlpipe.io.provenance import software, stable_hash, utc_now


def machine() -> dict[str, Any]:
    """The machine this runs on (the one that assembled the page; each fit record names the code that fitted it)."""
    return {"host": platform.node(), "platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpus": os.cpu_count(),
            "python": f"{platform.python_implementation()} {platform.python_version()}"}


def experiment_rows(summary_files: Sequence[str | Path]) -> pd.DataFrame:
    """One row per experiment: the seed, task hash, commit and rlpipe version its summary records."""
    rows = []
    for path in summary_files:
        summary = json.loads(Path(path).read_text())
        git = summary.get("git") or {}
        rows.append({"experiment": summary["experiment"], "n_fit": summary["n_fit"], "task_hash": summary["task_hash"],
                     "root_seed": summary["root_seed"]["entropy"], "git_commit": git.get("commit"),
                     "git_dirty": git.get("dirty"), "rlpipe": summary["versions"]["rlpipe"]})
    return pd.DataFrame(rows, columns=["experiment", "n_fit", "task_hash", "root_seed", "git_commit", "git_dirty",
                                       "rlpipe"])


def study_provenance(config: Mapping[str, Any], config_files: Sequence[str],
                     summary_files: Sequence[str | Path]) -> dict[str, Any]:
    """Everything the page shows, as JSON data."""
    experiments = experiment_rows(summary_files)
    code = software()
    commits = set(experiments["git_commit"]) - {code["git"]["commit"]}
    return {
        "written": utc_now(),
        "config_files": list(config_files),
        "config_hash": stable_hash(config),
        "config": dict(config),
        "root_seed": config.get("seed"),
        **code,
        "machine": machine(),
        "experiments": experiments.to_dict(orient="records"),
        "other_commits": sorted(map(str, commits)),
    }


def write_provenance(record: Mapping[str, Any], paths: StudyPaths) -> None:
    """``provenance.json`` (for programs) and ``provenance.html`` (for the report)."""
    write_json(paths.provenance_json, record)
    write_text(paths.provenance_html, provenance_html(record))


def provenance_html(record: Mapping[str, Any]) -> str:
    git = record["git"]
    commit = git["commit"] or "unknown (rlpipe does not run from a git checkout)"
    state = {True: "with uncommitted changes", False: "clean", None: "unknown"}[git["dirty"]]
    facts = pd.DataFrame([
        ("config files", ", ".join(record["config_files"]) or "(none: --config only)"),
        ("config hash", record["config_hash"]),
        ("root seed", record["root_seed"]),
        ("git commit of rlpipe", f"{commit} ({state})"),
        ("page written", record["written"]),
        *((f"machine: {key}", value) for key, value in record["machine"].items()),
    ], columns=["what", "value"])
    versions = pd.DataFrame(list(record["versions"].items()), columns=["package", "version"])
    experiments = pd.DataFrame(record["experiments"])
    warning = ""
    if record["other_commits"]:
        warning = (f"<p><strong>Some results were made at other commits</strong> ({', '.join(record['other_commits'])}): "
                   "Snakemake reruns a job when its task changes, not when the code does; rerun them with "
                   "<code>--forcerun</code> to make every result at this commit.</p>")
    config_text = yaml.safe_dump(record["config"], sort_keys=False, default_flow_style=None, width=100)
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'><title>Provenance</title>",
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}pre{background:#f6f6f6;padding:8px}</style>",
        "</head><body>",
        "<h2>Provenance</h2>",
        "<p>What made these results. Rebuild them from a clone of rlpipe at the commit below with the config below "
        "(<code>snakemake --cores N --configfile config.yaml</code>): every seed derives from the root seed.</p>",
        facts.to_html(index=False, escape=True),
        "<h3>Experiments: what each summary records</h3>",
        warning,
        experiments.to_html(index=False, escape=True, na_rep="unknown"),
        "<h3>Library versions</h3>",
        versions.to_html(index=False, escape=True),
        "<h3>Config, as the run saw it</h3>",
        f"<pre>{html.escape(config_text)}</pre>",
        "</body></html>",
    ])
