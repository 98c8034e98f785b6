"""The cross_env stage: the study's algorithms compared across environments (with a ``metrics`` section).

It reads each experiment's per-instance scores (``summary.json``) and the configured writer tag
(``writer_data.parquet``), normalises both with the reference scores of the experiment's evaluation env, and writes
to ``results/cross_env/`` (``rlpipe.io.paths.CrossEnvPaths``): every run's score, the aggregate metrics and the
probability of improvement as CSV, Markdown and LaTeX (booktabs), the performance profiles and sample-efficiency
curves as CSV, and a figure of each as PNG and PDF. The statistics are ``rlpipe.core.cross_env``'s, each part and
algorithm seeded by its own keyed child of the study's root seed (``CrossEnvTask.generator``), so a rerun is
bit-identical and a new algorithm leaves the others' intervals as they were.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from rlpipe.core import cross_env, cross_env_plots, statistics
from rlpipe.core.comparison import read_summaries
from rlpipe.core.plots import percent
from rlpipe.core.tasks import CrossEnvTask
from rlpipe.errors import RlpipeError
from rlpipe.io.atomic import save_figure, write_csv, write_text
from rlpipe.io.paths import StudyPaths
from rlpipe.io.provenance import commit_label

SCORE_COLUMNS = ["algorithm", "env", "experiment", "instance", "raw_score", "score"]
FIGURE_DPI = 150
_LOGGER = logging.getLogger("rlpipe.core.cross_env_comparison")


# ---------------------------------------------------------------------------------------------- inputs
def normalised_scores(task: CrossEnvTask, paths: StudyPaths) -> pd.DataFrame:
    """One row per run (an experiment's instance): its algorithm, env, mean evaluation score (``raw_score``, as in
    ``summary.json``) and that score normalised with the env's reference scores (``score``)."""
    experiments = pd.DataFrame(task.experiments).rename(columns={"name": "experiment"})
    _, per_instance = read_summaries([paths.experiment(name).summary for name in experiments["experiment"]])
    runs = experiments.merge(per_instance.rename(columns={"score": "raw_score"}), on="experiment", sort=False)
    runs["score"] = 0.0
    for env, rows in runs.groupby("env", sort=False):
        reference = task.reference_scores[env]
        runs.loc[rows.index, "score"] = cross_env.normalize(rows["raw_score"], reference["random"], reference["optimum"])
    return runs[SCORE_COLUMNS]


def score_mapping(runs: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """``{algorithm: {env: normalised scores}}`` of :func:`normalised_scores`, algorithms in their order of appearance."""
    mapping: dict[str, dict[str, list[float]]] = {}
    for (algorithm, env), rows in runs.groupby(["algorithm", "env"], sort=False):
        mapping.setdefault(algorithm, {})[env] = rows["score"].tolist()
    return mapping


def _tag_rows(path: Path, tag: str, xtag: str) -> pd.DataFrame:
    """The rows of one writer tag, read with a filter (the other tags, often most of the file, are never loaded)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["instance", "tag", "value", xtag], filters=[("tag", "==", tag)])
    except (OSError, pa.ArrowInvalid) as error:
        raise RlpipeError(f"{path} cannot be read ({error}); delete it and rerun to rebuild it") from None
    return table.to_pandas()


def normalised_curves(task: CrossEnvTask, paths: StudyPaths) -> dict[str, dict[str, pd.DataFrame]]:
    """``{algorithm: {env: curves}}``: each experiment's instances' curves of the configured tag (smoothed, on the
    experiment's common grid: ``statistics.learning_curves``), normalised. An experiment without such a curve is left
    out, and the log says why."""
    settings = task.sample_efficiency
    tag, xtag = settings["tag"], settings["xtag"]
    curves: dict[str, dict[str, pd.DataFrame]] = {}
    for experiment in task.experiments:
        name = experiment["name"]
        rows = _tag_rows(paths.experiment(name).writer_data, tag, xtag)
        if rows.empty:
            _LOGGER.info("experiment '%s' logged no %r: left out of the sample-efficiency curves", name, tag)
            continue
        try:
            frame = statistics.learning_curves(rows, tag, xtag=xtag, smoothing_window=experiment["smoothing_window"])
        except (KeyError, ValueError) as error:
            _LOGGER.info("experiment '%s' has no curve of %r (%s): left out of the sample-efficiency curves", name, tag,
                         error)
            continue
        reference = task.reference_scores[experiment["env"]]
        frame["value"] = cross_env.normalize(frame["value"], reference["random"], reference["optimum"])
        curves.setdefault(experiment["algorithm"], {})[experiment["env"]] = frame
    return curves


# ---------------------------------------------------------------------------------------------- the stage
def compare_across_envs(task: CrossEnvTask, paths: StudyPaths) -> dict[str, pd.DataFrame]:
    """Compute and write every table and figure of the metrics across environments; return the tables by name
    (``scores``, ``aggregates``, ``improvement``, ``profiles``, ``sample_efficiency``)."""
    runs = normalised_scores(task, paths)
    scores = score_mapping(runs)
    tables = {"scores": runs, **score_tables(task, scores), "sample_efficiency": _sample_efficiency(task, paths)}
    envs = {algorithm: sorted(by_env) for algorithm, by_env in scores.items()}
    _write(tables, envs, task, paths)
    return tables


def score_tables(task: CrossEnvTask, scores: dict[str, dict[str, list[float]]]) -> dict[str, pd.DataFrame]:
    """The aggregate metrics, performance profiles and probability of improvement of ``scores``. Each algorithm (each
    pair, for the probability of improvement) draws from its own generator, so adding an experiment of another
    algorithm changes no interval of these."""
    bootstrap = {"n_resamples": task.bootstrap_samples, "confidence": task.confidence}
    thresholds = (cross_env.profile_thresholds(scores) if task.profile_thresholds is None else task.profile_thresholds)
    names = list(scores)
    pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
    compared = [cross_env.probability_of_improvement({x: scores[x], y: scores[y]}, task.generator("improvement", x, y),
                                                     **bootstrap) for x, y in pairs]
    compared = [frame for frame in compared if not frame.empty]  # pairs without a common env have no rows
    improvement = (pd.concat(compared, ignore_index=True) if compared
                   else pd.DataFrame({column: [] for column in cross_env.IMPROVEMENT_COLUMNS}))
    rank = {name: k for k, name in enumerate(names)}
    return {
        "aggregates": pd.concat([cross_env.aggregate_metrics({a: scores[a]}, task.generator("aggregates", a), **bootstrap)
                                 for a in names], ignore_index=True),
        "improvement": improvement.sort_values(["algorithm_x", "algorithm_y"], key=lambda names: names.map(rank),
                                               kind="stable", ignore_index=True),
        "profiles": pd.concat([cross_env.performance_profiles({a: scores[a]}, task.generator("profiles", a),
                                                              thresholds=thresholds, **bootstrap) for a in names],
                              ignore_index=True),
    }


def _sample_efficiency(task: CrossEnvTask, paths: StudyPaths) -> pd.DataFrame:
    """The curves of every algorithm whose runs share an x range, each from its own generator."""
    frames = []
    for algorithm, by_env in normalised_curves(task, paths).items():
        try:
            frames.append(cross_env.sample_efficiency_curves(
                {algorithm: by_env}, task.generator("sample_efficiency", algorithm), n_points=task.sample_efficiency["n_points"],
                n_resamples=task.bootstrap_samples, confidence=task.confidence))
        except ValueError as error:
            _LOGGER.info("no sample-efficiency curve of %s: %s", algorithm, error)
    if not frames:
        return pd.DataFrame({column: [] for column in cross_env.CURVE_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _write(tables: dict[str, pd.DataFrame], envs: dict[str, list[str]], task: CrossEnvTask, paths: StudyPaths) -> None:
    files = paths.cross_env
    write_csv(files.scores, tables["scores"])
    aggregates = tables["aggregates"].assign(envs=[", ".join(envs[a]) for a in tables["aggregates"]["algorithm"]])
    write_csv(files.table("aggregates"), aggregates)
    for name in ("improvement", "profiles", "sample_efficiency"):
        write_csv(files.table(name), tables[name])
    note = [*_note(task), f"Made by rlpipe at commit {commit_label()}."]
    shown = {"aggregates": aggregates_table(tables["aggregates"], envs),
             "improvement": improvement_table(tables["improvement"], envs)}
    titles = {"aggregates": "Aggregate metrics across environments", "improvement": "Probability of improvement"}
    for name, table in shown.items():
        write_text(files.table(name, "md"), _markdown(titles[name], note, table))
        write_text(files.table(name, "tex"), booktabs(table, [titles[name], *note]))
    xlabel = "environment steps (global step)" if task.sample_efficiency["xtag"] == "global_step" else "seconds"
    algorithms = list(envs)  # each keeps its colour in every figure
    empty = f"no experiment logged a curve of {task.sample_efficiency['tag']!r} (see cross_env.log)"
    figures = {
        "aggregates": cross_env_plots.aggregate_metrics_figure(tables["aggregates"], algorithms),
        "improvement": cross_env_plots.improvement_figure(tables["improvement"], algorithms),
        "profiles": cross_env_plots.performance_profiles_figure(tables["profiles"], algorithms),
        "sample_efficiency": cross_env_plots.sample_efficiency_figure(
            tables["sample_efficiency"], xlabel, note=empty if tables["sample_efficiency"].empty else None,
            algorithms=algorithms),
    }
    for name, figure in figures.items():
        for suffix in ("png", "pdf"):
            save_figure(figure, files.figure(name, suffix), dpi=FIGURE_DPI)


# ---------------------------------------------------------------------------------------------- tables
def _interval(estimate: float, low: float, high: float) -> str:
    return f"{estimate:.3f} [{low:.3f}, {high:.3f}]"


def _note(task: CrossEnvTask) -> list[str]:
    """What every table's text says: the normalisation, the weighting and the intervals."""
    return ["Normalised score of a run: (score - random) / (optimum - random), with the reference scores of its "
            "evaluation env (metrics.reference_scores); every env weighs the same.",
            f"Intervals: {percent(task.confidence)} stratified-bootstrap percentile CIs, {task.bootstrap_samples} "
            "resamples of the runs within each env (Agarwal et al., 2021).",
            "Algorithms that ran on different envs are not directly comparable."]


def aggregates_table(aggregates: pd.DataFrame, envs: dict[str, list[str]]) -> pd.DataFrame:
    """One row per algorithm: its envs, runs, and each metric as "estimate [low, high]"."""
    cells = aggregates.assign(cell=[_interval(*row) for row in aggregates[["estimate", "ci_low", "ci_high"]].to_numpy()])
    wide = cells.pivot(index="algorithm", columns="metric", values="cell").reindex(index=list(envs),
                                                                                    columns=pd.unique(aggregates["metric"]))
    runs = aggregates.drop_duplicates("algorithm").set_index("algorithm")["n_runs"].reindex(list(envs))
    wide = wide.rename(columns=lambda metric: cross_env_plots.METRIC_TITLES.get(metric, metric)
                       + (" (lower is better)" if metric == "optimality_gap" else ""))
    wide.insert(0, "runs", runs.astype(int))
    wide.insert(0, "envs", [", ".join(envs[a]) for a in wide.index])
    return wide.reset_index().rename_axis(columns=None)


def improvement_table(improvement: pd.DataFrame, envs: dict[str, list[str]]) -> pd.DataFrame:
    """One row per pair X, Y (X before Y in the order of ``envs``, each algorithm's envs): P(X > Y) as
    "estimate [low, high]", and the envs both ran on."""
    rank = {name: k for k, name in enumerate(envs)}
    pairs = improvement[[rank[x] < rank[y] for x, y in zip(improvement["algorithm_x"], improvement["algorithm_y"])]]
    return pd.DataFrame({
        "X": pairs["algorithm_x"].to_numpy(), "Y": pairs["algorithm_y"].to_numpy(),
        "P(X > Y)": [_interval(*row) for row in pairs[["probability", "ci_low", "ci_high"]].to_numpy()],
        "common envs": [", ".join(sorted(set(envs[x]) & set(envs[y]))) for x, y in zip(pairs["algorithm_x"], pairs["algorithm_y"])],
        "runs of X": pairs["n_runs_x"].to_numpy(dtype=int), "runs of Y": pairs["n_runs_y"].to_numpy(dtype=int),
    })


def _markdown(title: str, note: list[str], table: pd.DataFrame) -> str:
    body = table.to_markdown(index=False) if not table.empty else "(no rows)"
    return "\n".join([f"# {title}", "", *note, "", body, ""])


_NUMERIC = re.compile(r"-?\d")  # a number, or an interval "estimate [low, high]"
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
                  "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: object) -> str:
    return "".join(_LATEX_SPECIAL.get(character, character) for character in str(text))


def booktabs(table: pd.DataFrame, comments: Sequence[str] = ()) -> str:
    """A LaTeX ``tabular`` with booktabs rules (``\\usepackage{booktabs}``), cells escaped, numbers and intervals
    right-aligned, text left-aligned, ``comments`` above it as LaTeX comments. Written here rather than with
    ``DataFrame.to_latex``, which needs jinja2."""
    columns = list(table.columns)
    align = "".join("r" if k and all(_NUMERIC.match(str(v)) for v in table[c]) else "l" for k, c in enumerate(columns))
    lines = [f"% {comment}" for comment in comments] + [r"% needs \usepackage{booktabs}",
                                                        rf"\begin{{tabular}}{{{align}}}", r"\toprule",
                                                        " & ".join(latex_escape(c) for c in columns) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(value) for value in row) + r" \\" for row in table.itertuples(index=False)]
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}", ""])
