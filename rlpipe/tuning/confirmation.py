"""Confirmation of a finished study on fresh seeds, so that tuning does not write noise back into the config.

The best trial's score is the maximum of noisy scores, so it is biased up (the winner's curse): on slippery
FrozenLake a study's best trial scored above the best achievable score, and its settings replaced optimal ones.
Before anything is written back, the ``top_k`` distinct completed trials (by search score) and the experiment's own
``init_kwargs`` ("current") are each refitted ``n_fit`` times (:func:`measure_candidate`, one job per candidate in
the pipeline). Every candidate's instance ``j`` gets the same seeds (``OptimizeTask.confirmation_seed``), a stream
of their own that no trial used: common random numbers, so the differences between candidates are paired and the
noise the seeds put in cancels out. :func:`select_setting` then picks the candidate with the best confirmed score
and writes it back only if a one-sided paired sign-flip test of it against the current init_kwargs gives
``p <= alpha / m`` over the ``m`` trial candidates (Bonferroni: the pick is the best of ``m``). Otherwise nothing
is written and the selection says why (``selection.json``, ``confirmation.csv``, the select job's output).

Both drivers run this code: the Snakemake rules ``optimize_confirm`` and ``optimize_select`` through the CLI, and
``ExperimentManager.optimize_hyperparams(confirm=...)`` on its thread or process pool.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from rlpipe.core.paired_tests import sign_flip_pvalue
from rlpipe.core.statistics import bootstrap_ci
from rlpipe.core.tasks import CURRENT_CANDIDATE, ConfirmTask, OptimizeTask
from rlpipe.errors import OptimizationError
from rlpipe.io.atomic import write_csv, write_json
from rlpipe.io.paths import OptimizePaths
from rlpipe.io.provenance import canonical_json, json_data, software, utc_now
from rlpipe.runtime.seeding import keyed_child, seed_record
from rlpipe.tuning.study import candidate_agent, counted_trials, first_error, instance_score, stored_study

_LOGGER = logging.getLogger("rlpipe.tuning")
BOOTSTRAP_RESAMPLES = 10_000
# What the selection decided: a confirmed candidate written back; none shown better than the current init_kwargs;
# the current init_kwargs are the best confirmed candidate already; confirmation disabled, the best trial written.
DECISIONS = ("written", "refused", "kept", "unconfirmed")
TABLE_COLUMNS = ("candidate", "trial", "init_kwargs", "search_score", "confirmed_score", "ci_low", "ci_high",
                 "diff_vs_current", "p_value", "p_adjusted", "same_as", "tested", "chosen", "written", "n_fit",
                 "instance_scores")


# ---------------------------------------------------------------------------------------------- candidates
def ranked_candidates(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The completed trials, best search score first (ties: the earlier trial), one per distinct init kwargs (two
    trials of the same setting, a grid's or a categorical space's, are one candidate)."""
    complete = sorted((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: (-t.value, t.number))
    seen: set[str] = set()
    ranked = []
    for trial in complete:
        key = _kwargs_key(trial.user_attrs["init_kwargs"])
        if key not in seen:
            seen.add(key)
            ranked.append(trial)
    return ranked


def _kwargs_key(kwargs: Mapping[str, Any]) -> str:
    """Equal keys for equal settings, of equal types (1 and 1.0 differ: the config would read differently)."""
    return canonical_json(json_data(dict(kwargs)))


def current_tuned_kwargs(task: OptimizeTask, init_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the experiment's init kwargs that the study tunes (what a candidate replaces): those keys of
    ``init_kwargs`` that are not among the study's shared ones. A tuned key the config leaves out (the agent's
    default) is absent: the current candidate is the config as written."""
    differing = [key for key, value in task.init_kwargs.items()
                 if key not in init_kwargs or _kwargs_key({key: value}) != _kwargs_key({key: init_kwargs[key]})]
    if differing:
        raise OptimizationError(f"'{task.experiment}': the current init_kwargs differ from the study's untuned ones on "
                                f"{sorted(differing)}: they are not the config the study was made for")
    return {key: value for key, value in init_kwargs.items() if key not in task.init_kwargs}


# ---------------------------------------------------------------------------------------------- one candidate
def measure_candidate(task: OptimizeTask, confirm: ConfirmTask, paths: OptimizePaths,
                      shared_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refit one candidate of the finished study ``confirm.n_fit`` times on the confirmation's seeds and score each
    instance; returns its record (the confirmation job's output).

    A rank beyond the study's distinct completed trials is recorded ``missing``; the current candidate whose init
    kwargs equal those of one of the ``top_k`` ranks is recorded ``same_as`` that rank and not fitted (its scores
    would be the rank's, on the same seeds). Raises :class:`OptimizationError` when no trial completed.
    """
    trials = counted_trials(stored_study(task, paths))
    study_size, ranked = len(trials), ranked_candidates(trials)
    if not ranked:
        raise OptimizationError(f"no trial of '{task.experiment}' completed, so there is nothing to confirm. "
                                f"{first_error(trials)}")
    record: dict[str, Any] = {"experiment": task.experiment, "study": task.study_name, "study_size": study_size,
                              "candidate": confirm.candidate, "n_fit": confirm.n_fit, "trial": None, "search_score": None,
                              "same_as": None, "missing": False, "scores": None, "confirmed_score": None}
    if confirm.is_current:
        sampled = current_tuned_kwargs(task, confirm.init_kwargs or {})
        same = [rank for rank, trial in enumerate(ranked[:confirm.top_k])
                if _kwargs_key(trial.user_attrs["init_kwargs"]) == _kwargs_key(sampled)]
        record.update(init_kwargs=json_data(sampled), same_as=str(same[0]) if same else None)
    elif confirm.rank < len(ranked):
        trial = ranked[confirm.rank]
        sampled = trial.user_attrs["init_kwargs"]
        record.update(init_kwargs=sampled, trial=trial.number, search_score=float(trial.value))
    else:
        record.update(init_kwargs=None, missing=True)
    if record["same_as"] is None and not record["missing"]:
        scores = _confirmed_scores(task, confirm, sampled, study_size, paths, shared_data)
        record.update(scores=scores, confirmed_score=float(np.mean(scores)))
    record.update(seeds=confirmation_seeds(task, study_size, confirm.n_fit), **software(),
                  finished=utc_now())
    return record


def confirmation_seeds(task: OptimizeTask, study_size: int, n_fit: int) -> dict[str, list[dict[str, Any]]]:
    """The seeds of the confirmation's instances (the same for every candidate), as records."""
    return {purpose: [seed_record(task.confirmation_seed(study_size, j, p)) for j in range(n_fit)]
            for p, purpose in enumerate(("fit", "evaluation"))}


def _confirmed_scores(task: OptimizeTask, confirm: ConfirmTask, sampled: dict[str, Any], study_size: int,
                      paths: OptimizePaths, shared_data: dict[str, Any] | None) -> list[float]:
    """Fit and score the candidate's instances one after another (one agent in memory at a time), each in one
    ``fit(fit_budget)`` call as the experiment's own fit of an agent whose fit is not additive (and the same for one
    whose fit is)."""
    folder = paths.confirm_folder(confirm.candidate)
    scores = []
    try:
        for j in range(confirm.n_fit):
            clock = time.perf_counter()
            agent = candidate_agent(task, j, sampled, folder, shared_data, task.confirmation_seed(study_size, j, 0))
            agent.fit(task.fit_budget, **task.fit_kwargs)
            score = instance_score(agent, task, task.confirmation_seed(study_size, j, 1))
            if not np.isfinite(score):
                raise ValueError(f"instance {j} of candidate {confirm.candidate} scored {score}")
            scores.append(score)
            _LOGGER.info("%s confirm %s instance %d: score %.6g in %.1f s", task.experiment, confirm.candidate, j, score,
                         time.perf_counter() - clock)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return scores


# ---------------------------------------------------------------------------------------------- selection
def select_setting(task: OptimizeTask, confirm: Mapping[str, Any] | None, paths: OptimizePaths,
                   records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Decide what the config receives from the candidates' ``records``; write ``confirmation.csv`` and
    ``selection.json``; return the selection (its ``written`` says whether to write ``chosen.init_kwargs`` back).

    ``confirm`` is the experiment's ``optimize.confirm`` (``None`` or not ``enabled``: the best trial is chosen
    unconfirmed, as before confirmation existed).
    """
    if confirm is None or not confirm["enabled"]:
        selection = _unconfirmed(task, paths)
    else:
        selection = decide(task, confirm, records)
    write_selection(selection, paths)
    return selection


def decide(task: OptimizeTask, confirm: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The selection from the confirmation records (pure: nothing is written).

    The trial candidate with the best mean confirmed score (ties: the better search rank) is tested against the
    current init_kwargs: the one-sided sign-flip p-value of their paired per-seed differences, times ``m``, the
    number of trial candidates (Bonferroni), must be ``<= alpha``, and the mean difference positive, for it to be
    written. Every trial candidate's p-value against the current init_kwargs is reported.
    """
    ranks, current = _check_records(task, confirm, records)
    alpha, m = float(confirm["alpha"]), len(ranks)
    current_scores = np.asarray(_resolve(current, ranks)["scores"], dtype=float)
    statistics = task.confirmation_statistics_seed(current["study_size"])
    rows = []
    for index, record in enumerate([*ranks, current]):
        scores = np.asarray(_resolve(record, ranks)["scores"], dtype=float)
        is_current = record is current
        low, high = bootstrap_ci(scores, np.random.default_rng(keyed_child(statistics, index, 0)), "mean",
                                 BOOTSTRAP_RESAMPLES, 1.0 - alpha)
        p = None if is_current else sign_flip_pvalue(scores - current_scores, keyed_child(statistics, index, 1))
        rows.append({"candidate": record["candidate"], "trial": record["trial"], "init_kwargs": record["init_kwargs"],
                     "search_score": record["search_score"], "confirmed_score": float(scores.mean()),
                     "ci_low": low, "ci_high": high, "diff_vs_current": float((scores - current_scores).mean()),
                     "p_value": p, "p_adjusted": None if p is None else min(1.0, m * p), "same_as": record["same_as"],
                     "tested": False, "chosen": False, "written": False, "n_fit": int(scores.size),
                     "instance_scores": scores.tolist()})
    trial_rows, current_row = rows[:-1], rows[-1]
    tested = max(trial_rows, key=lambda row: (row["confirmed_score"], -int(row["candidate"])))
    tested["tested"] = True
    outcome = _outcome(tested, current_row, alpha, m)
    chosen = tested if outcome == "written" else current_row
    chosen["chosen"] = True
    chosen["written"] = outcome == "written"
    return {
        "experiment": task.experiment, "study": task.study_name, "study_size": current["study_size"],
        "decision": outcome, "reason": _reason(outcome, tested, current_row, alpha, m),
        "written": outcome == "written",
        "chosen": {"candidate": chosen["candidate"], "trial": chosen["trial"], "init_kwargs": chosen["init_kwargs"]},
        "alpha": alpha, "top_k": int(confirm["top_k"]), "n_fit": int(confirm["n_fit"]), "n_candidates": m,
        "threshold": alpha / m, "test": "one-sided paired sign-flip test (exact up to 16 seeds), Bonferroni over the "
                                          "trial candidates",
        "candidates": rows, "seeds": current["seeds"], "root_seed": task.root_seed, **software(),
        "finished": utc_now(),
    }


def _check_records(task: OptimizeTask, confirm: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
                   ) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    """The trial candidates (ranks in order, the missing ones left out) and the current one, after checking that
    they are one confirmation: the same study, study size and seeds, each rank once."""
    current = [r for r in records if r["candidate"] == CURRENT_CANDIDATE]
    ranks = sorted((r for r in records if r["candidate"] != CURRENT_CANDIDATE), key=lambda r: int(r["candidate"]))
    expected = [str(rank) for rank in range(int(confirm["top_k"]))]
    if len(current) != 1 or [r["candidate"] for r in ranks] != expected:
        raise OptimizationError(f"'{task.experiment}': the confirmation needs the records of candidates {expected} and "
                                f"'{CURRENT_CANDIDATE}', got {[r['candidate'] for r in records]}")
    identities = {(r["study"], r["study_size"], r["n_fit"]) for r in records}
    if len(identities) != 1 or any(r["study"] != task.study_name or r["n_fit"] != confirm["n_fit"] for r in records):
        raise OptimizationError(f"'{task.experiment}': the confirmation records come from different studies, study sizes "
                                f"or n_fit ({sorted(identities, key=str)}): rerun the confirmation jobs")
    present = [r for r in ranks if not r["missing"]]
    if not present:
        raise OptimizationError(f"'{task.experiment}': no trial candidate was confirmed")
    return present, current[0]


def _resolve(record: Mapping[str, Any], ranks: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """A current candidate that equals a rank has that rank's scores."""
    if record["same_as"] is None:
        return record
    return next(r for r in ranks if r["candidate"] == record["same_as"])


def _outcome(tested: dict[str, Any], current: dict[str, Any], alpha: float, m: int) -> str:
    if current["same_as"] == tested["candidate"]:
        return "kept"
    if tested["diff_vs_current"] > 0 and tested["p_adjusted"] <= alpha:
        return "written"
    return "refused"


def _reason(outcome: str, tested: dict[str, Any], current: dict[str, Any], alpha: float, m: int) -> str:
    name = f"candidate {tested['candidate']} (trial {tested['trial']})"
    if outcome == "kept":
        return (f"the current init_kwargs are {name}'s, the best confirmed score ({tested['confirmed_score']:.6g} over "
                f"{tested['n_fit']} fresh seeds): nothing to write")
    scores = (f"{name} confirmed {tested['confirmed_score']:.6g} against {current['confirmed_score']:.6g} for the current "
              f"init_kwargs (mean paired difference {tested['diff_vs_current']:+.3g} over {tested['n_fit']} fresh seeds)")
    test = (f"one-sided paired sign-flip p = {tested['p_value']:.3g}, Bonferroni over {m} candidate{'s' * (m > 1)}: "
            f"{tested['p_adjusted']:.3g}")
    if outcome == "written":
        return f"{scores}; {test} <= alpha = {alpha:g}: written back"
    if tested["diff_vs_current"] <= 0:
        return f"{scores}: not better than the current init_kwargs, so nothing was written"
    return f"{scores}; {test} > alpha = {alpha:g}: not shown better than the current init_kwargs, so nothing was written"


def _unconfirmed(task: OptimizeTask, paths: OptimizePaths) -> dict[str, Any]:
    """Confirmation disabled: the best trial by search score is chosen and written, as before confirmation existed."""
    trials = counted_trials(stored_study(task, paths))
    ranked = ranked_candidates(trials)
    if not ranked:
        raise OptimizationError(f"no trial of '{task.experiment}' completed. {first_error(trials)}")
    best = ranked[0]
    row = {column: None for column in TABLE_COLUMNS} | {
        "candidate": "0", "trial": best.number, "init_kwargs": best.user_attrs["init_kwargs"],
        "search_score": float(best.value), "tested": False, "chosen": True, "written": True}
    return {"experiment": task.experiment, "study": task.study_name, "study_size": len(trials),
            "decision": "unconfirmed", "written": True,
            "reason": (f"optimize.confirm.enabled is false: trial {best.number}, the best search score "
                       f"({best.value:.6g}, biased up: the maximum of noisy scores), is written back unconfirmed"),
            "chosen": {"candidate": "0", "trial": best.number, "init_kwargs": best.user_attrs["init_kwargs"]},
            "candidates": [row], "root_seed": task.root_seed, **software(), "finished": utc_now()}


def selection_summary(selection: Mapping[str, Any]) -> dict[str, Any]:
    """What ``best_init_kwargs.yaml`` says of the selection (``selection.json`` has every candidate's scores)."""
    rows = {row["candidate"]: row for row in selection["candidates"]}
    tested = next((row for row in selection["candidates"] if row["tested"]), None)
    summary = {key: selection[key] for key in ("decision", "reason", "written")}
    summary.update(candidate=selection["chosen"]["candidate"], trial=selection["chosen"]["trial"],
                   init_kwargs=selection["chosen"]["init_kwargs"])
    if tested is not None:
        summary.update(tested_candidate=tested["candidate"], tested_trial=tested["trial"],
                       tested_confirmed_score=tested["confirmed_score"],
                       current_confirmed_score=rows[CURRENT_CANDIDATE]["confirmed_score"],
                       p_value=tested["p_value"], p_adjusted=tested["p_adjusted"], alpha=selection["alpha"],
                       n_fit=selection["n_fit"], n_candidates=selection["n_candidates"])
    return summary


# ---------------------------------------------------------------------------------------------- outputs
def confirmation_table(selection: Mapping[str, Any]) -> pd.DataFrame:
    """One row per candidate (trial ranks, then "current"); init kwargs and per-instance scores as JSON text."""
    table = pd.DataFrame([{column: row.get(column) for column in TABLE_COLUMNS} for row in selection["candidates"]],
                         columns=list(TABLE_COLUMNS))
    for column in ("init_kwargs", "instance_scores"):
        table[column] = table[column].map(lambda v: None if v is None else json.dumps(v, sort_keys=True, default=str))
    return table


def write_selection(selection: Mapping[str, Any], paths: OptimizePaths) -> None:
    write_csv(paths.confirmation, confirmation_table(selection))
    write_json(paths.selection, selection)


def selection_lines(selection: Mapping[str, Any]) -> list[str]:
    """What the select job prints: the decision and why, then the candidates' table."""
    table = confirmation_table(selection)[["candidate", "trial", "search_score", "confirmed_score", "ci_low", "ci_high",
                                           "p_value", "p_adjusted", "chosen", "written"]]
    head = f"rlpipe: '{selection['experiment']}': {selection['decision']}: {selection['reason']}"
    return [head, *table.to_string(index=False, float_format=lambda v: f"{v:.4g}").splitlines()]
