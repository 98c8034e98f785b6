"""rlpipe.tuning.confirmation and rlpipe.core.paired_tests: the study's best trials refitted on fresh, paired seeds
before any write-back, and the paired test that decides whether the winner beats the config's own init_kwargs.

PeakAgent (known optimum x = 0.3, level "high", noise 0.01) has settings genuinely better than others; NoiseAgent's
score is pure noise whatever its setting, so its best trial is only the luckiest.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rlpipe.core import tasks
from rlpipe.core.paired_tests import EXACT_MAX_PAIRS, MONTE_CARLO_FLIPS, sign_flip_pvalue, smallest_sign_flip_pvalue
from rlpipe.errors import ConfigError, OptimizationError
from rlpipe.io.paths import OptimizePaths
from rlpipe.spec.experiment import validate_study
from rlpipe.spec.optimize import confirm_problems, smallest_confirmation_pvalue
from rlpipe.tuning import confirmation
from rlpipe.tuning.confirmation import decide, measure_candidate, ranked_candidates, select_setting
from rlpipe.tuning.study import counted_trials, run_worker, stored_study, summarize_study

from helpers_configs import peak_experiment
from result_tables import read_results_csv

CONFIRM = {"enabled": True, "top_k": 3, "n_fit": 8, "alpha": 0.05}


def study_of(agent: str = "helpers_agents:PeakAgent", init_kwargs: dict[str, Any] | None = None, seed: int = 3,
             n_trials: int = 6, **confirm: Any) -> Any:
    spec = peak_experiment({"n_trials": n_trials, "confirm": confirm}, agent=agent,
                           init_kwargs={"x": -0.9, "level": "low"} if init_kwargs is None else init_kwargs)
    return validate_study({"seed": seed, "experiments": {"peak": spec}})


def confirm_study(study: Any, folder: Path) -> tuple[tasks.OptimizeTask, list[dict[str, Any]], dict[str, Any]]:
    """Run the study, confirm every candidate and select, as the pipeline's jobs do one after another."""
    spec = study.experiment("peak")
    task, paths = tasks.optimize_task(spec, study.root), OptimizePaths(folder)
    run_worker(task, paths)
    records = [measure_candidate(task, confirm_task, paths) for confirm_task in tasks.confirm_tasks(spec)]
    return task, records, select_setting(task, spec.optimize["confirm"], paths, records)


# ---------------------------------------------------------------------------------------------- the paired test
def test_sign_flip_pvalue_of_hand_computed_differences() -> None:
    # d = (1, 2, -0.5), sum 2.5: of the 8 sign flips only (+,+,+) = 2.5 and (+,+,-) = 3.5 reach 2.5
    assert sign_flip_pvalue([1.0, 2.0, -0.5]) == 2 / 8
    # d = (3, -1, -1, -1), sum 0: 3*s1 - s2 - s3 - s4 >= 0 for all 8 flips with s1 = +1, and 1 with s1 = -1
    assert sign_flip_pvalue([3.0, -1.0, -1.0, -1.0]) == 9 / 16
    # every difference positive: only the observed signs reach the observed sum
    assert sign_flip_pvalue(np.arange(1.0, 9.0)) == 1 / 256 == smallest_sign_flip_pvalue(8)
    assert sign_flip_pvalue([-1.0, -2.0]) == 1.0  # every flip is at least as large
    assert sign_flip_pvalue([0.0, 0.0, 0.0]) == 1.0  # no difference at all
    # a zero difference is flipped into itself: both of its signs count, so (+2, 0) gives 2/4
    assert sign_flip_pvalue([2.0, 0.0]) == 2 / 4
    # differences equal up to rounding count as ties (0.1 + 0.2 != 0.3 in floating point)
    assert sign_flip_pvalue([0.1, 0.2, -0.3]) == sign_flip_pvalue([1.0, 2.0, -3.0]) == 5 / 8
    for bad in ([], [1.0, np.nan], [np.inf]):
        with pytest.raises(ValueError, match="finite differences"):
            sign_flip_pvalue(bad)


def test_sign_flip_pvalue_beyond_exact_enumeration_is_seeded_monte_carlo() -> None:
    n = EXACT_MAX_PAIRS + 2
    d = np.random.default_rng(0).normal(0.3, 1.0, n)
    bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
    exact = np.mean((1 - 2 * bits) @ d >= d.sum() - 1e-12)  # all 2**18 flips, by brute force
    estimate = sign_flip_pvalue(d, seed=5)
    assert estimate == sign_flip_pvalue(d, seed=5) != sign_flip_pvalue(d, seed=6)
    assert abs(estimate - exact) < 4 * np.sqrt(exact * (1 - exact) / MONTE_CARLO_FLIPS)
    assert sign_flip_pvalue(np.ones(n), seed=1) == 1 / (MONTE_CARLO_FLIPS + 1) == smallest_sign_flip_pvalue(n)


def test_validation_knows_the_smallest_p_value_of_the_test() -> None:
    for n in range(1, 25):
        assert smallest_confirmation_pvalue(n) == smallest_sign_flip_pvalue(n)


def test_the_test_and_the_selection_hold_their_level_under_no_difference() -> None:
    """Scores of settings that do not matter: the test rejects at most alpha of the time, and so does picking the best
    confirmed of 3 candidates and testing it at alpha / 3 (Bonferroni)."""
    rng = np.random.default_rng(2024)
    n, k, alpha, runs = 8, 3, 0.05, 3000
    single = np.mean([sign_flip_pvalue(rng.normal(size=n)) <= alpha for _ in range(runs)])
    current = rng.normal(size=(runs, n))
    candidates = rng.normal(size=(runs, k, n))
    best = candidates[np.arange(runs), candidates.mean(axis=2).argmax(axis=1)]
    picked = np.mean([sign_flip_pvalue(b - c) <= alpha / k and (b - c).mean() > 0 for b, c in zip(best, current)])
    naive = np.mean([sign_flip_pvalue(b - c) <= alpha for b, c in zip(best, current)])
    margin = 3 * np.sqrt(alpha * (1 - alpha) / runs)
    assert single <= alpha + margin and picked <= alpha + margin
    assert naive > alpha + margin  # without the correction the winner's curse shows


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("confirm", "message"), [
    ({"n_fit": 5}, "experiments.peak.optimize.confirm.n_fit: 5 seeds are too few for the confirmation ever to pass: its "
                   "paired test cannot give a p-value below 0.0312, above alpha / top_k = 0.05/3 = 0.0167, so nothing "
                   "would ever be written back; use n_fit >= 6 (or a larger alpha, a smaller top_k)"),
    ({"top_k": 10, "n_fit": 7}, "experiments.peak.optimize.confirm.n_fit: 7 seeds are too few"),
    ({"alpha": 0.01, "n_fit": 8}, "use n_fit >= 9"),
    ({"alpha": 1e-9}, "no n_fit can reach it: use a larger alpha or a smaller top_k"),
    ({"top_n": 3}, "experiments.peak.optimize.confirm: unknown key 'top_n' (did you mean 'top_k'?)"),
    ({"alpha": 1.0}, "experiments.peak.optimize.confirm.alpha: 1.0 is greater than or equal to the maximum of 1"),
    ({"top_k": 0}, "experiments.peak.optimize.confirm.top_k: 0 is less than the minimum of 1"),
    ({"n_fit": 2.0}, "experiments.peak.optimize.confirm.n_fit: 2.0 is not of type 'integer'"),
])
def test_confirm_keys_are_validated_before_anything_runs(confirm: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        study_of(**confirm)
    assert message in str(error.value)


def test_confirm_defaults_and_what_passes_validation() -> None:
    assert study_of().experiment("peak").optimize["confirm"] == CONFIRM
    assert study_of(n_fit=6).experiment("peak").optimize["confirm"]["n_fit"] == 6  # 2**-6 <= 0.05 / 3
    assert study_of(top_k=1, n_fit=5).experiment("peak").optimize["confirm"]["top_k"] == 1  # 2**-5 <= 0.05
    assert confirm_problems({**CONFIRM, "enabled": False, "n_fit": 1}) == []  # no test, nothing to refuse


# ---------------------------------------------------------------------------------------------- tasks
def test_the_confirmation_is_not_part_of_the_study_and_a_write_back_reruns_only_the_current_candidate() -> None:
    default, other = study_of(), study_of(top_k=2, n_fit=9, alpha=0.1)
    assert tasks.optimize_task(default.experiment("peak"), default.root) == \
        tasks.optimize_task(other.experiment("peak"), other.root)  # same study, same trials
    confirm = tasks.confirm_tasks(default.experiment("peak"))
    assert [c.candidate for c in confirm] == ["0", "1", "2", "current"]
    assert all(c.init_kwargs is None and c.top_k is None and c.n_fit == 8 for c in confirm[:3])
    assert confirm[3].init_kwargs == {"x": -0.9, "level": "low"} and confirm[3].top_k == 3
    assert tasks.ConfirmTask.from_json(confirm[3].to_json()) == confirm[3]
    written_back = study_of(init_kwargs={"x": 0.3, "level": "high"})
    after = tasks.confirm_tasks(written_back.experiment("peak"))
    assert [a.to_json() == c.to_json() for a, c in zip(after, confirm)] == [True, True, True, False]
    assert tasks.confirm_tasks(study_of(enabled=False).experiment("peak")) == []


# ---------------------------------------------------------------------------------------------- seeds
def test_candidates_share_fresh_seeds_never_the_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Instance j of every candidate is built and evaluated from the same seeds, none of which a trial used."""
    used: list[tuple[str, int, str, tuple[int, ...]]] = []
    build, score = confirmation.candidate_agent, confirmation.instance_score

    def recording_agent(task, instance, sampled, output_dir, shared_data, seeder):
        used.append((str(sampled), instance, "fit", tuple(seeder.spawn_key)))
        return build(task, instance, sampled, output_dir, shared_data, seeder)

    def recording_score(agent, task, eval_seed):
        used.append((repr((agent.x, agent.level)), -1, "eval", tuple(eval_seed.spawn_key)))
        return score(agent, task, eval_seed)

    monkeypatch.setattr(confirmation, "candidate_agent", recording_agent)
    monkeypatch.setattr(confirmation, "instance_score", recording_score)
    study = study_of()
    task, records, selection = confirm_study(study, tmp_path / "optimize")
    fits = pd.DataFrame([u for u in used if u[2] == "fit"], columns=["candidate", "instance", "purpose", "key"])
    assert fits.candidate.nunique() == 4 and len(fits) == 4 * 8
    assert (fits.groupby("instance").key.nunique() == 1).all()  # common random numbers
    assert fits.groupby("candidate").key.nunique().eq(8).all()  # independent instances
    evals = [u[3] for u in used if u[2] == "eval"]
    assert len(set(evals)) == 8 and len(evals) == 32
    trial_keys = {tuple(task.trial_seed(t, j, p).spawn_key) for t in range(6) for j in range(2) for p in (0, 1)}
    assert not trial_keys & (set(fits.key) | set(evals))
    assert not {tuple(task.sampler_seed.spawn_key)} & set(fits.key)
    assert [tuple(s["spawn_key"]) for s in records[0]["seeds"]["fit"]] == sorted(set(fits.key), key=list(fits.key).index)
    # a later selection, on a larger study, draws fresh seeds again
    assert task.confirmation_seed(6, 0, 0).spawn_key != task.confirmation_seed(7, 0, 0).spawn_key
    # PeakAgent's noise comes from its seeded rng: with paired seeds it is the same in every candidate's instance j
    noise = [np.array(r["scores"]) - expected_peak_score(r["init_kwargs"] or {"x": -0.9, "level": "low"})
             for r in records]
    for other in noise[1:]:
        np.testing.assert_allclose(other, noise[0], atol=1e-12)
    assert np.ptp(noise[0]) > 0  # and it does vary between instances


def expected_peak_score(kwargs: dict[str, Any]) -> float:
    return (1 - (kwargs["x"] - 0.3) ** 2) + (0.5 if kwargs["level"] == "high" else 0.0)


# ---------------------------------------------------------------------------------------------- selection
def test_a_genuinely_better_setting_is_selected_on_confirmed_scores(tmp_path: Path) -> None:
    task, records, selection = confirm_study(study_of(), tmp_path / "optimize")
    trials = counted_trials(stored_study(task, OptimizePaths(tmp_path / "optimize")))
    ranked = ranked_candidates(trials)
    assert [r["trial"] for r in records[:3]] == [t.number for t in ranked[:3]]
    assert [r["search_score"] for r in records[:3]] == sorted((t.value for t in trials), reverse=True)[:3]
    assert selection["decision"] == "written" and selection["written"] is True
    rows = {row["candidate"]: row for row in selection["candidates"]}
    tested = max((rows[c] for c in "012"), key=lambda row: row["confirmed_score"])
    assert tested["tested"] and tested["chosen"] and tested["written"]
    assert selection["chosen"] == {"candidate": tested["candidate"], "trial": tested["trial"],
                                   "init_kwargs": tested["init_kwargs"]}
    assert tested["p_value"] == 1 / 256 and tested["p_adjusted"] == 3 / 256
    assert rows["current"]["init_kwargs"] == {"x": -0.9, "level": "low"} and not rows["current"]["chosen"]
    assert len(rows["current"]["instance_scores"]) == 8
    assert tested["ci_low"] <= tested["confirmed_score"] <= tested["ci_high"]
    assert "written back" in selection["reason"] and "p = 0.00391" in selection["reason"]
    # the outputs
    paths = OptimizePaths(tmp_path / "optimize")
    table = read_results_csv(paths.confirmation)
    assert list(table.columns) == list(confirmation.TABLE_COLUMNS)
    assert list(table.candidate) == ["0", "1", "2", "current"]
    assert table.written.tolist() == [row["written"] for row in selection["candidates"]]
    record = summarize_study(task, paths, selection=confirmation.selection_summary(selection))
    assert record["selection"]["decision"] == "written" and record["selection"]["init_kwargs"] == tested["init_kwargs"]
    assert record["init_kwargs"] == ranked[0].user_attrs["init_kwargs"]  # the best trial by search score, as before
    assert paths.best_init_kwargs.read_text().startswith(f"# Best trial of 'peak' by search score: {ranked[0].number}")


def test_pure_noise_is_not_written_back(tmp_path: Path) -> None:
    """NoiseAgent's trial scores are noise: its best trial scores high only by luck, and its confirmation refuses it.
    (A false "written" has probability below alpha = 5%; with these seeds the test is deterministic.)"""
    task, records, selection = confirm_study(study_of("helpers_agents:NoiseAgent", {"x": 0.0, "level": "low"}),
                                             tmp_path / "optimize")
    assert selection["decision"] == "refused" and selection["written"] is False
    rows = {row["candidate"]: row for row in selection["candidates"]}
    tested = next(row for row in rows.values() if row["tested"])
    assert rows["current"]["chosen"] and not tested["chosen"] and not any(row["written"] for row in rows.values())
    assert tested["p_adjusted"] > 0.05
    assert selection["chosen"] == {"candidate": "current", "trial": None, "init_kwargs": {"x": 0.0, "level": "low"}}
    assert "so nothing was written" in selection["reason"]
    best = max(rows[c]["search_score"] for c in "012")
    assert best > rows["0"]["confirmed_score"]  # the winner's curse: the best search score does not hold up


def record(candidate: str, scores: list[float] | None, **fields: Any) -> dict[str, Any]:
    return {"experiment": "peak", "study": fields.pop("study", None), "study_size": 6, "candidate": candidate, "n_fit": 4,
            "trial": None if candidate == "current" else 10 + int(candidate), "search_score": None, "same_as": None,
            "missing": False, "scores": scores, "init_kwargs": {"x": float(candidate) if candidate != "current" else -1.0},
            "seeds": {}, **fields}


def test_decide_on_hand_made_records() -> None:
    task = tasks.optimize_task(study_of().experiment("peak"), study_of().root)
    confirm = {**CONFIRM, "top_k": 2, "n_fit": 4, "alpha": 0.2}
    current = record("current", [1.0, 1.0, 1.0, 1.0], study=task.study_name)
    better = record("0", [2.0, 2.0, 2.0, 2.0], study=task.study_name)
    worse = record("1", [0.0, 3.0, 0.5, 0.5], study=task.study_name)
    # p of the better one: 1/16, Bonferroni over 2: 1/8 <= 0.2
    selection = decide(task, confirm, [better, worse, current])
    assert selection["decision"] == "written" and selection["chosen"]["candidate"] == "0"
    assert selection["candidates"][0]["p_adjusted"] == 2 / 16 and selection["n_candidates"] == 2
    # with a stricter level it is refused, and so is a candidate no better than the current setting
    assert decide(task, {**confirm, "alpha": 0.1}, [better, worse, current])["decision"] == "refused"
    flat = record("0", [1.0, 1.0, 1.0, 1.0], study=task.study_name)
    refused = decide(task, {**confirm, "alpha": 0.9}, [flat, worse, current])
    assert refused["decision"] == "refused" and refused["chosen"]["candidate"] == "current"
    # a missing rank (fewer distinct trials than top_k) is left out of the Bonferroni count
    missing = record("1", None, study=task.study_name, missing=True, trial=None, init_kwargs=None)
    alone = decide(task, {**confirm, "alpha": 0.07}, [better, missing, current])
    assert alone["n_candidates"] == 1 and alone["decision"] == "written"  # 1/16 <= 0.07
    # the current init_kwargs equal the best confirmed rank: kept, nothing to write
    same = record("current", None, study=task.study_name, same_as="0", init_kwargs=better["init_kwargs"])
    kept = decide(task, confirm, [better, worse, same])
    assert kept["decision"] == "kept" and not kept["written"] and kept["chosen"]["candidate"] == "current"
    assert kept["candidates"][-1]["instance_scores"] == better["scores"]
    # records of another confirmation are refused
    with pytest.raises(OptimizationError, match="different studies, study sizes or n_fit"):
        decide(task, confirm, [better, {**worse, "study_size": 7}, current])
    with pytest.raises(OptimizationError, match=r"needs the records of candidates \['0', '1'\] and 'current'"):
        decide(task, confirm, [better, current])


def test_the_current_candidate_equal_to_a_trial_is_not_fitted_twice(tmp_path: Path) -> None:
    study = study_of()
    task, records, selection = confirm_study(study, tmp_path / "optimize")
    chosen = selection["chosen"]["init_kwargs"]
    spec = dataclasses.replace(study.experiment("peak"), init_kwargs=copy.deepcopy(chosen))
    current = tasks.confirm_tasks(spec)[-1]
    again = measure_candidate(task, current, OptimizePaths(tmp_path / "optimize"))
    assert again["same_as"] == selection["chosen"]["candidate"] and again["scores"] is None
    selection = decide(task, spec.optimize["confirm"], [*records[:3], again])
    assert selection["decision"] == "kept"


def test_the_current_init_kwargs_without_a_tuned_key_are_the_config_as_written(tmp_path: Path) -> None:
    study = study_of(init_kwargs={"x": -0.9})  # level: PeakAgent's default ("low")
    task, records, selection = confirm_study(study, tmp_path / "optimize")
    assert records[-1]["init_kwargs"] == {"x": -0.9} and records[-1]["same_as"] is None
    np.testing.assert_allclose(records[-1]["scores"], expected_peak_score({"x": -0.9, "level": "low"}), atol=0.05)


def test_disabled_confirmation_writes_the_best_trial_unconfirmed(tmp_path: Path) -> None:
    study = study_of(enabled=False)
    spec = study.experiment("peak")
    task, paths = tasks.optimize_task(spec, study.root), OptimizePaths(tmp_path / "optimize")
    run_worker(task, paths)
    selection = select_setting(task, spec.optimize["confirm"], paths, [])
    best = ranked_candidates(counted_trials(stored_study(task, paths)))[0]
    assert selection["decision"] == "unconfirmed" and selection["written"]
    assert selection["chosen"]["init_kwargs"] == best.user_attrs["init_kwargs"]
    assert pd.read_csv(paths.confirmation).written.tolist() == [True]
