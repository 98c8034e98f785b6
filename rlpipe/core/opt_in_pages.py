"""HTML pages of the opt-in stages' results (tuning, AdaStop), so that the default target's report shows them.

``snakemake optimize`` and ``snakemake adastop`` are opt-in targets: a plain run must never run a study or write
into the config, so their jobs are not in the default target's DAG, and neither are their outputs. These pages
gather what those targets left on disk (read, never recomputed), with their figures embedded, and say plainly
when a target has not run or ran with other settings than the config's. The rules that write them rerun when those
files change (their params hold a digest of the files' sizes and times).
"""
from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import yaml

from rlpipe.io.atomic import write_text
from rlpipe.io.paths import StudyPaths
from rlpipe.io.provenance import commit_label

_STYLE = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:0.5em 0}"
          "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:48%;margin:4px}"
          ".note{background:#fff4d6;padding:6px}")
CONFIRMATION_SHOWN = ["candidate", "trial", "init_kwargs", "search_score", "confirmed_score", "ci_low", "ci_high",
                      "p_value", "p_adjusted", "chosen", "written"]


def write_tuning_page(studies: Mapping[str, str], paths: StudyPaths, output: Path) -> None:
    """``studies``: each tuned experiment's current study name (a selection of another study is flagged as stale)."""
    sections = [_tuning_section(name, study, paths) for name, study in studies.items()]
    write_text(output, _page("Hyperparameter optimization", [
        "<p>Each tuned experiment's study (<code>snakemake --cores N optimize</code>): the best trials by search "
        "score, refitted with the current <code>init_kwargs</code> on the same fresh seeds, and what the config "
        "received. A setting is written back only if a one-sided paired sign-flip test (Bonferroni over the "
        "candidates) shows it better than the config's own; the search score of the best trial is biased up "
        "(the maximum of noisy scores), the confirmed score is not.</p>", *sections]))


def _tuning_section(experiment: str, study: str, paths: StudyPaths) -> str:
    selection_file, best_file, history, importance = paths.tuning_page_inputs([experiment])
    head = f"<h3>{html.escape(experiment)}</h3>"
    if not selection_file.is_file():
        return head + "<p class='note'>Not tuned yet: run <code>snakemake --cores N optimize</code>, then the default " \
                      "target again.</p>"
    selection = json.loads(selection_file.read_text())
    parts = [head]
    if selection.get("study") != study:
        parts.append(f"<p class='note'>These results are of study {html.escape(str(selection.get('study')))}; the "
                     f"config now defines study {html.escape(study)} (its optimize section or shared init_kwargs "
                     "changed): run <code>snakemake optimize</code> again.</p>")
    best = yaml.safe_load(best_file.read_text()) if best_file.is_file() else {}
    trials = ", ".join(f"{n} {state}" for state, n in (best.get("trials") or {}).items())
    parts.append(f"<p><strong>{html.escape(selection['decision'])}</strong>: {html.escape(selection['reason'])}.</p>")
    if trials:
        parts.append(f"<p>Trials: {html.escape(trials)}; best search score {best.get('best_value', float('nan')):.6g} "
                     f"(trial {best.get('best_trial')}).</p>")
    rows = pd.DataFrame([{column: row.get(column) for column in CONFIRMATION_SHOWN} for row in selection["candidates"]])
    rows["init_kwargs"] = rows["init_kwargs"].map(lambda v: json.dumps(v, sort_keys=True) if v is not None else "")
    parts.append(rows.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"))
    parts += [_image(history), _image(importance)]
    return "\n".join(parts)


def write_adastop_page(comparisons: Mapping[str, str], paths: StudyPaths, output: Path) -> None:
    """``comparisons``: each comparison's current task hash (results of other settings are flagged as stale)."""
    sections = [_adastop_section(name, task_hash, paths) for name, task_hash in comparisons.items()]
    write_text(output, _page("AdaStop comparisons", [
        "<p>Each comparison of the config's <code>adastop</code> section (<code>snakemake --cores N adastop</code>): "
        "AdaStop (Mathieu et al., 2024) adds instances to the experiments still compared, interim by interim, and "
        "stops each pair once its sequential permutation test decides, the family-wise error held at alpha.</p>",
        *sections]))


def _adastop_section(name: str, task_hash: str, paths: StudyPaths) -> str:
    decisions_file, seeds_file, plot = paths.adastop_page_inputs([name])
    head = f"<h3>{html.escape(name)}</h3>"
    if not decisions_file.is_file():
        return head + "<p class='note'>Not run yet: run <code>snakemake --cores N adastop</code>, then the default " \
                      "target again.</p>"
    parts = [head]
    states = sorted(paths.adastop(name).folder.glob("interim-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    last = json.loads(states[-1].read_text()) if states else {}
    if last.get("task_hash") != task_hash:
        parts.append("<p class='note'>These decisions were made with other settings than the config's (its adastop "
                     "section or seed changed): run <code>snakemake adastop</code> again.</p>")
    decisions = pd.read_csv(decisions_file).drop(columns=["git_commit"], errors="ignore")
    seeds = pd.read_csv(seeds_file).drop(columns=["git_commit"], errors="ignore") if seeds_file.is_file() else None
    parts.append(decisions.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"))
    if seeds is not None:
        parts += ["<p>Seeds each experiment needed:</p>", seeds.to_html(index=False, float_format=lambda v: f"{v:.4g}")]
    parts.append(_image(plot))
    return "\n".join(parts)


def _image(path: Path) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(path.name)}' src='data:image/png;base64,{data}'>"


def _page(title: str, body: list[str]) -> str:
    return "\n".join([f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>",
                      f"<style>{_STYLE}</style></head><body><h2>{title}</h2>", *body,
                      f"<p><small>Page made by rlpipe at commit {commit_label()}.</small></p></body></html>"])

