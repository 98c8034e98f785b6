"""The tables and the figure of a finished AdaStop comparison, from its last interim's JSON (no adastop import).

``decisions.csv`` has one row per compared pair, ``scores.csv`` one per score used, ``seeds.csv`` one per experiment
(how many instances it needed); ``decisions.md`` lays the first and the last out for a person, and ``adastop.png``
shows every score and the decision of every pair.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rlpipe.io.atomic import save_figure, write_csv, write_text
from rlpipe.io.paths import AdastopPaths
from rlpipe.io.provenance import commit_label

DECISION_COLORS = {"larger": "#1a9850", "smaller": "#d73027", "equal": "#bdbdbd"}


def scores_table(state: Mapping[str, Any]) -> pd.DataFrame:
    """One row per score used: ``experiment``, ``instance``, ``interim`` (the one that added it), ``score``."""
    rows = [{"experiment": name, **row} for name in state["experiments"] for row in state["scores"][name]]
    return pd.DataFrame(rows, columns=["experiment", "instance", "interim", "score"])


def seeds_table(state: Mapping[str, Any]) -> pd.DataFrame:
    """One row per experiment: the instances (seeds) it needed, of at most ``n * K``, and their mean and std."""
    scores = scores_table(state)
    settings = state["settings"]
    rows = []
    for name in state["experiments"]:
        own = scores[scores.experiment == name]
        rows.append({"experiment": name, "seeds": len(own), "max_seeds": settings["n"] * settings["K"],
                     "interims": int(own.interim.nunique()), "mean": own.score.mean(), "std": own.score.std(ddof=0)})
    return pd.DataFrame(rows)


def decisions_table(state: Mapping[str, Any]) -> pd.DataFrame:
    """One row per compared pair: the decision ("larger": ``first`` scores higher than ``second``), the interim it was
    taken at, and each side's mean, standard deviation and number of scores (adastop's ``get_results``, over all the
    scores of each experiment)."""
    seeds = seeds_table(state).set_index("experiment")
    rows = []
    for pair in state["pairs"]:
        first, second = seeds.loc[pair["first"]], seeds.loc[pair["second"]]
        rows.append({"pair": f"{pair['first']} vs {pair['second']}", "first": pair["first"], "second": pair["second"],
                     "decision": pair["decision"], "decided_at_interim": pair["decided_at"],
                     "mean_first": first["mean"], "mean_second": second["mean"], "mean_diff": first["mean"] - second["mean"],
                     "std_first": first["std"], "std_second": second["std"],
                     "n_first": int(first["seeds"]), "n_second": int(second["seeds"])})
    table = pd.DataFrame(rows)
    table["decided_at_interim"] = table["decided_at_interim"].astype("Int64")
    return table


def write_report(state: Mapping[str, Any], paths: AdastopPaths) -> None:
    """Write decisions.csv, decisions.md, scores.csv, seeds.csv and adastop.png of a finished comparison."""
    decisions, seeds, scores = decisions_table(state), seeds_table(state), scores_table(state)
    write_csv(paths.decisions_csv, decisions)
    write_csv(paths.scores_csv, scores)
    write_csv(paths.seeds_csv, seeds)
    write_text(paths.decisions_md, markdown(state, decisions, seeds))
    save_figure(figure(state, scores), paths.plot, dpi=120)


def markdown(state: Mapping[str, Any], decisions: pd.DataFrame, seeds: pd.DataFrame) -> str:
    settings = state["settings"]
    lines = [f"# AdaStop: {state['comparison']}", "",
             f"alpha = {settings['alpha']}, beta = {settings['beta']}, n = {settings['n']} instances per interim, "
             f"K = {settings['K']} interims at most, B = {settings['B']} permutations; "
             f"{'finished' if state['finished'] else 'stopped'} after interim {state['interim']} "
             f"(seed of the permutations {state['seed']}).", "",
             "\"larger\": the first experiment's mean score is larger, the difference being significant at level alpha "
             "over all pairs (family-wise).", "",
             decisions.drop(columns=["first", "second"]).to_markdown(index=False, floatfmt=".4g"), "",
             "## Seeds used", "", seeds.to_markdown(index=False, floatfmt=".4g"), "",
             f"Made by rlpipe at commit {commit_label()}.", ""]
    return "\n".join(lines)


def figure(state: Mapping[str, Any], scores: pd.DataFrame) -> Figure:
    """Left: every score used, by experiment, coloured by the interim that added it, with the mean. Right: the
    decision of each pair, read as "row vs column"."""
    names = list(state["experiments"])
    settings = state["settings"]
    fig = Figure(figsize=(5.0 + 1.4 * len(names), 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.4, 1.0])
    rng = np.random.default_rng(0)  # jitter of the points only
    interims = int(scores.interim.max()) + 1 if len(scores) else 1
    for x, name in enumerate(names):
        own = scores[scores.experiment == name]
        for k in range(interims):
            at = own[own.interim == k]
            left.scatter(x + rng.uniform(-0.15, 0.15, len(at)), at.score, s=16, color=f"C{k % 10}",
                         label=f"interim {k}", zorder=3)
        if len(own):
            left.hlines(own.score.mean(), x - 0.3, x + 0.3, color="black", linewidth=2, zorder=4)
            left.annotate(f"{len(own)} seeds", (x, own.score.max()), textcoords="offset points", xytext=(0, 6),
                          ha="center", fontsize=8)
    left.set_xticks(range(len(names)), names, rotation=20, ha="right")
    left.set_ylabel("score (mean evaluation score of an instance)")
    left.set_title("scores used (bar: mean)")
    handles, labels = left.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    left.legend(unique.values(), unique.keys(), fontsize=8, loc="best")
    matrix = np.full((len(names), len(names)), "", dtype=object)
    for pair in state["pairs"]:
        i, j = names.index(pair["first"]), names.index(pair["second"])
        matrix[i, j] = pair["decision"]
        matrix[j, i] = {"larger": "smaller", "smaller": "larger"}.get(pair["decision"], pair["decision"])
    colors = np.ones((len(names), len(names), 3))
    for i in range(len(names)):
        for j in range(len(names)):
            if matrix[i, j] in DECISION_COLORS:
                colors[i, j] = _rgb(DECISION_COLORS[matrix[i, j]])
            right.text(j, i, matrix[i, j], ha="center", va="center", fontsize=9)
    right.imshow(colors)
    right.set_xticks(range(len(names)), names, rotation=20, ha="right")
    right.set_yticks(range(len(names)), names)
    right.set_title("row vs column")
    fig.suptitle(f"AdaStop {state['comparison']}: alpha={settings['alpha']}, n={settings['n']}, K={settings['K']}, "
                 f"B={settings['B']}; {interims} interim{'s' if interims > 1 else ''} run")
    return fig


def _rgb(color: str) -> tuple[float, float, float]:
    return tuple(int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
