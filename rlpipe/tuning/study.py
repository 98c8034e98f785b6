"""Hyperparameter optimisation: one Optuna study shared by any number of worker processes.

Both drivers run the same code: each Snakemake ``optimize_worker`` job (or each thread/process of
``ExperimentManager.optimize_hyperparams``) calls :func:`run_worker` on the study, then
:func:`summarize_study` writes the best init kwargs, the trials table and the plots.

What makes a study trustworthy here:

- **Reproducible trials.** Instance ``j`` of trial ``t`` is seeded from (root seed, experiment, t, j)
  only, so :func:`trial_score` replays any trial exactly. The sampler is rebuilt for every trial with
  a seed derived from the trial number (``rlpipe.tuning.samplers.TrialSeededSampler``): one worker proposes
  the same trials every time; with several, random search still does, while model-based samplers
  (TPE, CMA-ES) also depend on the other trials of the study (finished, and for TPE running) at the
  moment a trial samples its parameters.
- **An exact total.** ``n_trials`` counts every trial of the study, whoever runs it: a worker counts
  and asks under a file lock (``study.lock``), so two workers never both take the last trial.
- **Resumable.** The study lives in an Optuna journal file (or any storage URL) under a name derived
  from everything that changes what a trial computes; a later run with the same settings adds trials
  to it. A trial whose worker was killed (its ``running/<study>/<n>.lock`` is free) is marked failed with
  ``interrupted`` set, and does not count towards the total (a grid trial's point is queued again).
- **Visible failures.** A trial that raises is recorded as failed with its error; workers give up
  when :data:`FAILURES_BEFORE_GIVING_UP` trials failed and none completed, and a study without a
  completed trial is an error that shows the first failure, never an empty result.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from filelock import FileLock, Timeout
from optuna.trial import FrozenTrial, TrialState

from rlpipe.agents.base import Agent
from rlpipe.agents.capabilities import eval_settings, fits_additively
from rlpipe.core.evaluation import score_agent
from rlpipe.core.fitting import build_agent
from rlpipe.core.tasks import AgentTask, OptimizeTask, agent_class, episode_seeds
from rlpipe.errors import OptimizationError
from rlpipe.io.paths import OptimizePaths
from rlpipe.io.provenance import software, utc_now
from rlpipe.runtime.seeding import seed_record
from rlpipe.spec.config import plain_value
from rlpipe.spec.search_space import sample_init_kwargs
from rlpipe.tuning.samplers import grid_size, make_pruner, make_sampler

FAILURES_BEFORE_GIVING_UP = 3
_INTERRUPTED = "interrupted"
_ERROR = "error"
_INIT_KWARGS = "init_kwargs"

optuna.logging.set_verbosity(optuna.logging.WARNING)  # rlpipe logs one line per trial itself
_LOGGER = logging.getLogger("rlpipe.tuning")



def trial_cap(task: OptimizeTask, n_trials: int) -> int:
    """``n_trials``, or the grid's size if smaller (the grid sampler has nothing new to propose after it)."""
    size = grid_size(task.settings)
    return n_trials if size is None else min(n_trials, size)


# ---------------------------------------------------------------------------------------------- study
def open_study(task: OptimizeTask, paths: OptimizePaths) -> optuna.Study:
    """The task's study in its storage, created on first use (call under the study lock)."""
    study = optuna.create_study(storage=_storage(task, paths), study_name=task.study_name, direction="maximize",
                                sampler=make_sampler(task.settings, task.sampler_seed),
                                pruner=make_pruner(task.settings["pruner_method"]), load_if_exists=True)
    if "task" not in study.user_attrs:
        study.set_user_attr("task", task.study_record())
        for key, value in software().items():  # versions and git commit
            study.set_user_attr(key, value)
    return study


def stored_study(task: OptimizeTask, paths: OptimizePaths) -> optuna.Study:
    """The task's study as its storage holds it (created empty if there is none yet)."""
    with _study_mutex(paths):
        return open_study(task, paths)


def delete_study(task: OptimizeTask, paths: OptimizePaths) -> bool:
    """Delete the task's study from its storage, if there is one (to start over)."""
    with _study_mutex(paths):
        try:
            optuna.delete_study(study_name=task.study_name, storage=_storage(task, paths))
        except KeyError:
            return False
    return True


def stored_trial_count(task: OptimizeTask, paths: OptimizePaths) -> int:
    """How many counted trials the task's study already holds (0 if it does not exist yet); trials of
    dead workers are failed first, so they are not counted."""
    with _study_mutex(paths):
        study = open_study(task, paths)
        _fail_interrupted_trials(study, paths)
        return len(counted_trials(study))


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards the total: every trial except those whose worker was killed, and
    those queued (a killed grid trial's point) but not started yet."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state is not TrialState.WAITING and not t.user_attrs.get(_INTERRUPTED)]


def _storage(task: OptimizeTask, paths: OptimizePaths) -> Any:
    if task.storage:
        return task.storage
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(paths.journal)))


# ---------------------------------------------------------------------------------------------- workers
def run_worker(task: OptimizeTask, paths: OptimizePaths, worker: int = 0, n_trials: int | None = None,
               shared_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run trials of the task's study until it holds ``n_trials`` (default ``task.n_trials``) or the timeout passes.

    Returns what this worker did: its trials' numbers and states. Raises :class:`OptimizationError`
    when :data:`FAILURES_BEFORE_GIVING_UP` trials failed and none completed.
    """
    started, deadline = utc_now(), None if task.timeout is None else time.monotonic() + task.timeout
    target = trial_cap(task, task.n_trials if n_trials is None else n_trials)
    steps = len(fraction_budgets(task.fit_budget, task.settings["fit_fraction"]))
    if steps > 1 and not fits_additively(agent_class(task)):
        _LOGGER.warning("%s: with fit_fraction %s each trial calls fit %d times, but %s does not declare "
                        "fit_is_additive: its trials may train differently from the final fit(fit_budget)",
                        task.experiment, task.settings["fit_fraction"], steps, agent_class(task).__name__)
    study = stored_study(task, paths)
    ran: dict[int, str] = {}
    while deadline is None or time.monotonic() < deadline:
        claimed = _claim_trial(study, paths, target)
        if claimed is None:
            break
        trial, running = claimed
        ran[trial.number] = _run_trial(study, trial, running, task, paths, worker, shared_data).name
        _give_up_if_failing(study, task)
    return {"worker": worker, "study": task.study_name, "trials": ran, "target": target,
            "started": started, "finished": utc_now()}


_PROCESS_LOCKS: dict[Path, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
_OWNER = "owner"


@contextlib.contextmanager
def _study_mutex(paths: OptimizePaths) -> Iterator[None]:
    """Exclusive access to the study across processes (a file lock) and across threads of this process.

    The thread lock matters where flock is emulated with per-process POSIX locks (NFS): there, two
    threads of one process would both get the file lock.
    """
    paths.folder.mkdir(parents=True, exist_ok=True)
    with _PROCESS_LOCKS_GUARD:
        thread_lock = _PROCESS_LOCKS.setdefault(paths.study_lock.resolve(), threading.Lock())
    with thread_lock, FileLock(paths.study_lock):
        yield


def _process_id() -> str:
    """Who runs a trial: trials of this very process are alive by definition (it is running)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claim_trial(study: optuna.Study, paths: OptimizePaths, target: int) -> tuple[optuna.Trial, FileLock] | None:
    """Under the study lock: fail the trials of dead workers, stop if the study is full, else ask for a trial
    and take its running lock before anyone can see it running."""
    with _study_mutex(paths):
        _fail_interrupted_trials(study, paths)
        if len(counted_trials(study)) >= target:
            return None
        trial = study.ask()
        trial.set_user_attr(_OWNER, _process_id())
        lock_path = paths.running_lock(study.study_name, trial.number)
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        running = FileLock(lock_path)
        running.acquire(timeout=0)
        return trial, running


def _fail_interrupted_trials(study: optuna.Study, paths: OptimizePaths) -> None:
    """Mark failed (and ``interrupted``) every running trial of another process whose running lock is free."""
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.user_attrs.get(_OWNER) == _process_id():
            continue
        lock_path = paths.running_lock(study.study_name, frozen.number)
        probe = FileLock(lock_path)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            continue  # its worker is alive
        try:
            trial = optuna.Trial(study, frozen._trial_id)
            trial.set_user_attr(_INTERRUPTED, True)
            trial.set_user_attr(_ERROR, "interrupted: the worker running this trial stopped before it ended")
            study.tell(trial, state=TrialState.FAIL)
            if "grid_id" in frozen.system_attrs:  # the grid sampler counts a failed trial's point as visited: queue it again
                study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={
                    key: frozen.system_attrs[key] for key in ("grid_id", "search_space")}))
            _LOGGER.warning("trial %d was interrupted (its worker died); it is not counted", frozen.number)
        finally:
            probe.release()
            lock_path.unlink(missing_ok=True)
            shutil.rmtree(paths.trial_folder(study.study_name, frozen.number), ignore_errors=True)


def _run_trial(study: optuna.Study, trial: optuna.Trial, running: FileLock, task: OptimizeTask, paths: OptimizePaths,
               worker: int, shared_data: dict[str, Any] | None) -> TrialState:
    value, state = None, TrialState.COMPLETE
    clock = time.perf_counter()
    folder = paths.trial_folder(study.study_name, trial.number)
    try:
        value = trial_score(trial, task, folder, shared_data)
    except optuna.TrialPruned:
        state = TrialState.PRUNED
    except Exception as error:
        state = TrialState.FAIL
        trial.set_user_attr(_ERROR, f"{type(error).__name__}: {error}")
        _LOGGER.error("trial %d failed:\n%s", trial.number, traceback.format_exc())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    with _study_mutex(paths):  # finish and unlock together: no worker ever sees it running and unlocked
        try:
            study.tell(trial, value if state is TrialState.COMPLETE else None, state=state)
        except ValueError as error:  # another worker marked it interrupted: its lock was not visible to it
            raise OptimizationError(
                f"trial {trial.number} of '{task.experiment}' was marked interrupted by another worker while it ran "
                f"({error}). Workers sharing a study must share its folder {paths.folder} (it holds their locks)"
            ) from error
        finally:
            running.release()
            paths.running_lock(study.study_name, trial.number).unlink(missing_ok=True)
    shown = f"value {value:.6g}" if value is not None else state.name.lower()
    _LOGGER.info("%s trial %d (worker %d): %s in %.1f s, %s", task.experiment, trial.number, worker, shown,
                 time.perf_counter() - clock, trial.params)
    return state


def _give_up_if_failing(study: optuna.Study, task: OptimizeTask) -> None:
    trials = counted_trials(study)
    failed = [t for t in trials if t.state is TrialState.FAIL]
    if len(failed) >= FAILURES_BEFORE_GIVING_UP and not any(t.state is TrialState.COMPLETE for t in trials):
        raise OptimizationError(f"'{task.experiment}': the first {len(failed)} trials failed and none completed, "
                                f"so the study was stopped. {first_error(trials)}")


def first_error(trials: list[FrozenTrial]) -> str:
    errors = [(t.number, t.user_attrs[_ERROR]) for t in trials if t.state is TrialState.FAIL and _ERROR in t.user_attrs]
    return f"First error (trial {errors[0][0]}): {errors[0][1]}" if errors else "No trial recorded an error."


# ---------------------------------------------------------------------------------------------- one trial
def fraction_budgets(fit_budget: int, fit_fraction: float) -> list[int]:
    """Budgets of the successive fits of a trial: steps of ``fit_fraction * fit_budget`` rounded up, the
    last one shortened so that they sum to ``fit_budget`` exactly (never more). A budget of 0 or -1
    (agents that need none) is one fit with that budget."""
    if fit_budget <= 0:
        return [fit_budget]
    step = max(1, min(fit_budget, math.ceil(fit_budget * fit_fraction - 1e-9)))
    budgets = [step] * (fit_budget // step)
    return budgets + ([fit_budget - sum(budgets)] if sum(budgets) < fit_budget else [])


def trial_score(trial: Any, task: OptimizeTask, output_dir: Path, shared_data: dict[str, Any] | None = None) -> float:
    """Fit ``n_fit`` instances with the trial's init kwargs and return their score.

    With ``fit_fraction < 1`` the instances are fitted in steps; the score after each step but the
    last is reported to the pruner, which may stop the trial (``optuna.TrialPruned``). The score is
    ``custom_eval_function(agents)`` or the mean over instances of their mean evaluation score: the
    discounted return of policy rollouts, or the agent's own ``eval`` when it has one (the objective it
    defines is the one tuned). Works with ``optuna.trial.FixedTrial(params, number)`` to replay a trial exactly.
    """
    cls = agent_class(task)
    sampled = sample_init_kwargs(trial, cls, task.settings.get("search_space"))
    trial.set_user_attr(_INIT_KWARGS, plain_value(sampled, "init_kwargs"))
    agents = [_trial_agent(task, trial.number, j, sampled, output_dir, shared_data) for j in range(task.settings["n_fit"])]
    budgets = fraction_budgets(task.fit_budget, task.settings["fit_fraction"])
    for step, budget in enumerate(budgets, start=1):
        for agent in agents:
            agent.fit(budget, **task.fit_kwargs)
        score = _score(agents, task, trial.number)
        if step < len(budgets):
            trial.report(score, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after step {step}/{len(budgets)} with score {score:.6g}")
    return score


def _trial_agent(task: OptimizeTask, number: int, instance: int, sampled: dict[str, Any],
                 output_dir: Path, shared_data: dict[str, Any] | None) -> Agent:
    """Instance ``instance`` of trial ``number``: shared init kwargs, then the trial's, then the instance's own."""
    return candidate_agent(task, instance, sampled, output_dir, shared_data, task.trial_seed(number, instance, 0))


def candidate_agent(task: OptimizeTask, instance: int, sampled: dict[str, Any], output_dir: Path,
                    shared_data: dict[str, Any] | None, seeder: np.random.SeedSequence) -> Agent:
    """Instance ``instance`` of a setting of the study (a trial's, or one being confirmed), seeded from ``seeder``: the
    study's shared init kwargs, then ``sampled``, then the instance's own."""
    per_instance = task.init_kwargs_per_instance or []
    own = per_instance[instance % len(per_instance)] if per_instance else {}
    overridden = sorted(set(own) & set(sampled))
    if overridden:  # validation sees only the keys of probe trials (tuned_keys); a sample_parameters may return others
        raise ValueError(f"init_kwargs_per_instance sets {overridden}, which the search space tunes; "
                         "a parameter set per instance cannot be tuned")
    agent_task = AgentTask(experiment=task.experiment, root_seed=task.root_seed, instance=instance, agent=task.agent,
                           train_env=task.train_env, eval_env=task.eval_env,
                           init_kwargs={**task.init_kwargs, **sampled, **own})
    agent = build_agent(agent_task, output_dir / str(instance), task.writer_kwargs, shared_data, seeder=seeder)
    if task.writer_kwargs is None:
        agent.set_writer(None)
    return agent


def _score(agents: list[Agent], task: OptimizeTask, number: int) -> float:
    if task.custom_eval_function is not None:
        score = float(task.custom_eval_function(agents))
    else:
        score = float(np.mean([instance_score(agent, task, task.trial_seed(number, j, 1)) for j, agent in enumerate(agents)]))
    if not math.isfinite(score):
        raise ValueError(f"the trial's score is {score}")
    return score


def instance_score(agent: Agent, task: OptimizeTask, eval_seed: np.random.SeedSequence) -> float:
    """One fitted instance's mean evaluation score over ``n_simulations`` rows seeded from ``eval_seed``, or, when the
    Python API scores with ``custom_eval_function(agents)``, that function of this one agent."""
    if task.custom_eval_function is not None:
        return float(task.custom_eval_function([agent]))
    n = eval_settings(task.eval_kwargs)["n_simulations"]
    return float(np.mean(score_agent(agent, task.eval_kwargs, episode_seeds(eval_seed, n))["score"]))


# ---------------------------------------------------------------------------------------------- results
def summarize_study(task: OptimizeTask, paths: OptimizePaths, selection: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the best init kwargs (YAML), the trials (Parquet) and the history and importance plots.

    Returns the record written to ``best_init_kwargs.yaml``: the best trial by search score, and ``selection``, what
    the confirmation decided (``rlpipe.tuning.confirmation.selection_summary``), when given. Raises :class:`OptimizationError`
    (naming the first error) when no trial completed.
    """
    from rlpipe.tuning.report import write_study_outputs

    study = stored_study(task, paths)
    trials = counted_trials(study)
    counts = Counter(t.state.name.lower() for t in trials)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    if not complete:
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
        raise OptimizationError(f"no trial of '{task.experiment}' completed (trials: {states}). {first_error(trials)}")
    best = max(complete, key=lambda t: (t.value, -t.number))
    record = {
        "experiment": task.experiment,
        "init_kwargs": best.user_attrs[_INIT_KWARGS],
        "best_trial": best.number,
        "best_value": float(best.value),
        "trials": dict(sorted(counts.items())),
        "first_error": first_error(trials) if counts.get("fail") else None,
        "study": task.study_name,
        "storage": task.storage or str(paths.journal),
        "root_seed": task.root_seed,
        "sampler_seed": seed_record(task.sampler_seed),
        "task": task.record(),
        **software(),
        "written": utc_now(),
    }
    if selection is not None:
        record["selection"] = selection
    write_study_outputs(study, trials, record, paths)
    return record
