"""``ExperimentManager``: rlberry's Python API over the same core and on-disk layout as the pipeline.

A manager is one experiment: ``n_fit`` instances of an agent, seeded exactly as the Snakemake rules
seed them (instance ``i`` of experiment ``agent_name`` under the root ``seed``), fitted by
:func:`rlpipe.core.fitting.fit_instance` and written to ``<output_dir>/instances/<i>/`` like a pipeline
experiment folder. Its arguments become the same validated
:class:`~rlpipe.spec.experiment.ExperimentSpec` a config entry becomes (same checks, same messages, at
construction), and every task is built from that spec as the pipeline builds it. So
``ExperimentManager.load`` reads a pipeline's ``results/<experiment>``, and ``to_config`` gives the
pipeline config that reproduces a manager's numbers.
"""
from __future__ import annotations

import copy
import cProfile
import dataclasses
import datetime as _dt
import functools
import io
import json
import logging
import multiprocessing
import multiprocessing.spawn  # not imported by `import multiprocessing`; _check_spawn_safe needs it
import pstats
import shutil
import types
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

import rlpipe
from rlpipe.agents.base import Agent
from rlpipe.agents.capabilities import call_eval, has_array_state
from rlpipe.core import tasks
from rlpipe.core.aggregation import aggregate_experiment, read_instance_tables
from rlpipe.core.evaluation import evaluate_instance, load_instance_agent, score_agent
from rlpipe.core.fitting import fit_instance
from rlpipe.errors import ConfigError
from rlpipe.io.atomic import write_json
from rlpipe.io.imports import import_object
from rlpipe.io.logs import configure_logging, default_level
from rlpipe.io.paths import ExperimentPaths, InstancePaths
from rlpipe.manager import storage
from rlpipe.manager.storage import MANAGER_FILE, OBJECTS_FILE, decode, encode, read_manager_file
from rlpipe.runtime.envs import make_env, seed_env
from rlpipe.runtime.seeding import Seeder, SeedLike, Stream, experiment_stream, seed_from_record, seed_record
from rlpipe.runtime.writer import summary_writer_class
from rlpipe.spec.config import load_config_file
from rlpipe.spec.experiment import ExperimentSpec, experiment_spec, validate_study
from rlpipe.spec.optimize import optimize_problems
from rlpipe.spec.schema import experiment_schema, schema_defaults, section_problems

DEFAULT_OUTPUT_DIR = Path("rlpipe_data") / "temp"
RLBERRY_API_VERSION = "0.7.3"  # the rlberry release whose ExperimentManager API this one follows
_SPEC_WRITER_KEYS = tuple(experiment_schema()["properties"]["writer"]["properties"])  # the config's writer keys
_LOGGER = logging.getLogger("rlpipe.manager")


class ExperimentManager:
    """Fit an agent ``n_fit`` times with independent seeds, evaluate the instances, gather their data.

    Parameters follow rlberry's ``ExperimentManager`` (see the README's Python API section):
    ``train_env``/``eval_env`` are ``(constructor, kwargs)`` tuples, gymnasium ids or rlpipe env specs;
    ``fit_budget`` may come from ``fit_kwargs["fit_budget"]``; ``seed`` is an int, a SeedSequence, a
    :class:`~rlpipe.runtime.seeding.Seeder` or None (fresh entropy, recorded); ``parallelization`` is
    ``"thread"`` or ``"process"`` (with ``max_workers`` and ``mp_context``); ``outdir_id_style`` is
    None, ``"unique"`` or ``"timestamp"``; ``init_kwargs_per_instance`` wins over ``init_kwargs``;
    ``thread_shared_data`` is shared by reference between threads and copied into processes.
    ``n_checkpoints`` (keyword only, as the config's key) fits an agent whose fit is not additive in
    that many calls, and checkpoints each ``fit()`` of an additive agent that many times (unset: one
    call). Arguments that a config would reject raise :class:`~rlpipe.errors.ConfigError`
    with the config's messages, every problem at once. The experiment is ``spec`` (frozen): build a new
    manager to change it.
    """

    def __init__(
        self,
        agent_class: type[Agent] | str,
        train_env: Any = (None, None),
        fit_budget: int | None = None,
        eval_env: Any = None,
        init_kwargs: dict[str, Any] | None = None,
        fit_kwargs: dict[str, Any] | None = None,
        eval_kwargs: dict[str, Any] | None = None,
        agent_name: str | None = None,
        n_fit: int = 4,
        output_dir: str | Path | None = None,
        parallelization: str = "thread",
        max_workers: int | None = None,
        mp_context: str = "spawn",
        worker_logging_level: int | str | None = None,
        seed: SeedLike = None,
        enable_tensorboard: bool = False,
        outdir_id_style: str | None = "timestamp",
        default_writer_kwargs: dict[str, Any] | None = None,
        init_kwargs_per_instance: Sequence[dict[str, Any]] | None = None,
        thread_shared_data: dict[str, Any] | None = None,
        *,
        n_checkpoints: int | None = None,
    ) -> None:
        fit_kwargs = dict(fit_kwargs or {})
        if fit_budget is None:
            fit_budget = fit_kwargs.pop("fit_budget", None)
        if fit_budget is None:
            raise ConfigError("[ExperimentManager] fit_budget missing in __init__(). Pass fit_budget=... "
                              "or fit_kwargs={'fit_budget': ...}")
        writer = dict(default_writer_kwargs or {})
        agent = _imported(agent_class)
        entry = {"agent": agent_class, "train_env": train_env, "eval_env": eval_env, "init_kwargs": dict(init_kwargs or {}),
                 "fit_budget": _integral(fit_budget), "fit_kwargs": fit_kwargs,
                 "eval_kwargs": dict(eval_kwargs or {}), "n_fit": n_fit,
                 "writer": {key: writer[key] for key in _SPEC_WRITER_KEYS if key in writer},
                 "allow_pickle": _pickles_checkpoints(agent)}
        if init_kwargs_per_instance is not None:
            entry["init_kwargs_per_instance"] = [dict(kw) for kw in init_kwargs_per_instance]
        if n_checkpoints is not None:
            entry["n_checkpoints"] = n_checkpoints
        name = agent_name or (getattr(agent, "name", "") or getattr(agent, "__name__", str(agent)))
        try:
            self.spec: ExperimentSpec = experiment_spec(name, entry)
        except ConfigError as error:
            raise ConfigError.listing(f"invalid ExperimentManager arguments (experiment '{name}')", error.problems) from None
        check_choice("parallelization", parallelization, ("thread", "process"))
        check_choice("mp_context", mp_context, ("spawn", "fork", "forkserver"))
        check_choice("outdir_id_style", outdir_id_style, (None, "unique", "timestamp"))
        self.parallelization, self.max_workers, self.mp_context = parallelization, max_workers, mp_context
        self.worker_logging_level = worker_logging_level if worker_logging_level is not None else default_level()
        self.seeder = Seeder(seed)
        self.enable_tensorboard = enable_tensorboard
        if enable_tensorboard:
            summary_writer_class()  # fail now, with the install hint, rather than in every worker
        self.outdir_id_style = outdir_id_style
        self.default_writer_kwargs = writer
        self.thread_shared_data = thread_shared_data
        if thread_shared_data is not None and parallelization == "process":
            warnings.warn("thread_shared_data is copied into each process (parallelization='process'), not shared", stacklevel=2)
        self.unique_id = uuid.uuid4().hex
        self.timestamp_id = f"{_dt.datetime.now():%Y-%m-%d_%H-%M-%S}_{self.unique_id[:8]}"
        self.output_dir = _output_folder(output_dir, outdir_id_style, self.agent_name, self.unique_id, self.timestamp_id)
        if (self.output_dir / MANAGER_FILE).is_file():
            _LOGGER.warning("This output directory already exists, the save may overwrite the previous Experiment.")
        self.writers: list[tuple[Any, dict[str, Any] | None]] = [("default", None)] * self.n_fit
        self.rlpipe_version = rlpipe.__version__
        self.rlberry_version = RLBERRY_API_VERSION
        # Whether this manager's reads may unpickle (its run settings say so). It reads back the checkpoints it wrote
        # itself; load() says whether the files it reads are trusted. spec.allow_pickle is the config's key instead:
        # what a pipeline run of this experiment must allow (its agent's checkpoints are pickles).
        self.allow_pickle = True
        self.best_hyperparams: dict[str, Any] | None = None
        self.confirmation: dict[str, Any] | None = None  # the selection of the last optimize_hyperparams (selection.json)
        self._tuned: tasks.OptimizeTask | None = None  # the task of the last optimize_hyperparams
        self._agents: dict[int, Agent] = {}
        self._eval_rng = np.random.default_rng(self._stream(Stream.MANAGER, 0))  # which instances eval_agents picks
        self._env_rng = np.random.default_rng(self._stream(Stream.MANAGER, 1))  # seeds of build_eval_env

    # ------------------------------------------------------------------ rlberry names
    agent_class = property(lambda self: self.spec.agent, doc="The agent class.")
    agent_name = property(lambda self: self.spec.name, doc="The experiment's name: folder names and seeds derive from it.")
    train_env = property(lambda self: self.spec.train_env, doc="The training environment, as given.")
    _eval_env = property(lambda self: self.spec.evaluation_env, doc="The evaluation environment: eval_env, else train_env.")
    fit_budget = property(lambda self: self.spec.fit_budget)
    n_fit = property(lambda self: self.spec.n_fit)
    init_kwargs = property(lambda self: _read_only(self.spec.init_kwargs), doc="Shared init kwargs (read-only).")
    fit_kwargs = property(lambda self: _read_only(self.spec.fit_kwargs))
    eval_kwargs = property(lambda self: _read_only(self.spec.eval_kwargs))

    @property
    def init_kwargs_per_instance(self) -> list[dict[str, Any]] | None:
        per_instance = self.spec.init_kwargs_per_instance
        return None if per_instance is None else [dict(kw) for kw in per_instance]

    @property
    def output_dir_(self) -> Path:
        """The folder this manager writes to (rlberry's name for it)."""
        return self.output_dir

    @property
    def paths(self) -> ExperimentPaths:
        return ExperimentPaths(self.output_dir)

    @property
    def optuna_study(self) -> Any:
        """The Optuna study of the last :meth:`optimize_hyperparams` (None before), read from its storage."""
        from rlpipe.tuning import study

        return None if self._tuned is None else study.stored_study(self._tuned, self.paths.optimize)

    @property
    def agent_handlers(self) -> list[AgentHandler]:
        """rlberry's handles on the instances: ``manager.agent_handlers[i].some_attribute`` loads instance ``i``."""
        return [AgentHandler(self, i) for i in range(self.n_fit)]

    def __eq__(self, other: object) -> bool:
        """Same experiment as rlberry compares it: agent class, per-instance init kwargs, fit and eval settings."""
        if not isinstance(other, ExperimentManager):
            return NotImplemented
        mine, theirs = self.spec, other.spec
        return (mine.agent is theirs.agent and mine.fit_budget == theirs.fit_budget
                and mine.fit_kwargs == theirs.fit_kwargs and mine.eval_kwargs == theirs.eval_kwargs
                and [mine.instance_init_kwargs(i) for i in range(mine.n_fit)]
                == [theirs.instance_init_kwargs(i) for i in range(theirs.n_fit)])

    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as rlberry's

    # ------------------------------------------------------------------ fitting
    def fit(self, budget: int | None = None, **kwargs: Any) -> None:
        """Fit every instance for ``budget`` (None or 0: ``fit_budget``, as rlberry); a second call continues them.

        ``kwargs`` are added to ``fit_kwargs`` for this call.
        """
        budget = self._budget(budget)
        self._claim_output_dir()
        jobs = [self._fit_job(i, budget, kwargs, self.paths.instance(i), continue_fit=self._is_fitted(i))
                for i in range(self.n_fit)]
        self._agents.clear()
        self._run(_run_fit_job, jobs)
        self.save()

    def set_writer(self, idx: int, writer_fn: Callable[..., Any] | str | None, writer_kwargs: dict[str, Any] | None = None) -> None:
        """Writer of instance ``idx`` for later fits: ``"default"``, None (disabled) or ``writer_fn(**writer_kwargs)``."""
        if not 0 <= idx < self.n_fit:
            raise IndexError(f"idx must be in [0, {self.n_fit}), got {idx}")
        if not (writer_fn is None or writer_fn == "default" or callable(writer_fn)):
            raise TypeError("writer_fn must be 'default', None or a callable returning a writer")
        self.writers[idx] = (writer_fn, writer_kwargs)

    def generate_profile(self, budget: int | None = None, fname: str | Path | None = None) -> Path:
        """Fit instance 0 in this process under cProfile; print the 20 costliest calls and save the profile.

        The fit is :meth:`fit`'s for instance 0 (``budget`` as there: None or 0 is ``fit_budget``; its writer,
        ``thread_shared_data`` and checkpoints), from scratch, into ``<output_dir>/profile/`` rather than the
        instance's folder.
        """
        paths = InstancePaths(self.output_dir / "profile")
        shutil.rmtree(paths.folder, ignore_errors=True)  # an earlier profile's progress must not be resumed
        job = self._fit_job(0, self._budget(budget), {}, paths, continue_fit=False)
        profiler = cProfile.Profile()
        profiler.runcall(_run_fit_job, job)
        path = Path(fname) if fname is not None else self.output_dir / f"{self.agent_name}_profile.prof"
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
        report = io.StringIO()
        pstats.Stats(profiler, stream=report).sort_stats("cumulative").print_stats(20)
        print(report.getvalue())
        return path

    # ------------------------------------------------------------------ evaluating and reading
    def eval_agents(self, n_simulations: int | None = None, eval_kwargs: dict[str, Any] | None = None,
                    agent_id: int | None = None, verbose: bool = True) -> list[float]:
        """``n_simulations`` (default ``2 * n_fit``) calls of ``agent.eval(**eval_kwargs)``, as rlberry makes them.

        Each call uses instance ``agent_id``, or one drawn at random (with replacement) from the
        manager's evaluation stream. ``eval`` receives the eval kwargs as written, plus
        ``n_simulations=1`` (one episode per call) only if its signature accepts it.
        """
        n = 2 * self.n_fit if n_simulations is None else int(n_simulations)
        kwargs = eval_kwargs or self.eval_kwargs
        if agent_id is not None and not 0 <= agent_id < self.n_fit:
            raise IndexError(f"agent_id must be in [0, {self.n_fit}), got {agent_id}")
        chosen = [agent_id] * n if agent_id is not None else self._eval_rng.integers(self.n_fit, size=n).tolist()
        if verbose:
            from tqdm import tqdm

            chosen = tqdm(chosen, desc=f"[{self.agent_name}] evaluating", leave=False)
        return [call_eval(self._agent(i), kwargs, n_simulations=1) for i in chosen]

    def instance_scores(self, n_simulations: int | None = None) -> np.ndarray:
        """The mean evaluation score of each instance, as the evaluate stage and hyperparameter trials score.

        Each instance's agent is loaded afresh from its checkpoint and scored by
        :func:`~rlpipe.core.evaluation.score_agent` on the first ``n_simulations`` seeds (default: the eval
        kwargs' ``n_simulations``) of the instance's evaluation stream, the seeds of the first rows of its
        ``evaluation.parquet``. Nothing is left advanced, so the same call always gives the same scores.
        """
        scores = []
        for i in range(self.n_fit):
            task = self._eval_task(i)
            seeds = (task.episode_seeds if n_simulations is None
                     else tasks.episode_seeds(task.stream(Stream.EVAL, i), int(n_simulations)))
            agent = load_instance_agent(task, self._checkpoint(i), self.allow_pickle)
            scores.append(np.mean(score_agent(agent, task.eval_kwargs, seeds)["score"]))
        return np.array(scores, dtype=float)

    def evaluate(self) -> Any:
        """The pipeline's evaluate stage: ``n_simulations`` rows per instance (episodes of the policy, or calls of the
        agent's own eval), seeded by the instance's evaluation stream, written to
        ``instances/<i>/evaluation.parquet``; returns all rows."""
        for i in range(self.n_fit):
            paths = self.paths.instance(i)
            evaluate_instance(self._eval_task(i), paths.checkpoint, paths.evaluation, self._run_settings(i))
        return read_instance_tables(range(self.n_fit), [self.paths.instance(i) for i in range(self.n_fit)], "evaluation")

    def aggregate(self, learning_curve: dict[str, Any] | None = None, report: dict[str, Any] | None = None) -> dict[str, Any]:
        """The pipeline's aggregate stage (after :meth:`evaluate`): tables, ``summary.json`` and plots in ``output_dir``.

        ``learning_curve`` and ``report`` take the config keys of the same names, checked as a config's are (a
        :class:`~rlpipe.errors.ConfigError` before anything is written); returns the summary.
        """
        learning_curve = _merged(self.spec.learning_curve, learning_curve)
        report = _merged(schema_defaults("report"), report)
        problems = (section_problems("learning_curve", copy.deepcopy(learning_curve), "experiment/properties/learning_curve")
                    + section_problems("report", copy.deepcopy(report), "report"))
        if problems:
            raise ConfigError.listing("invalid aggregate arguments", problems)
        spec = dataclasses.replace(self.spec, learning_curve=learning_curve)
        task = tasks.aggregate_task(spec, self.seeder.seed_seq, report)
        return aggregate_experiment(task, [self.paths.instance(i) for i in range(self.n_fit)], self.paths)

    def get_agent_instances(self) -> list[Agent]:
        """The ``n_fit`` fitted agents, loaded from their checkpoints (kept in memory afterwards)."""
        return [self._agent(i) for i in range(self.n_fit)]

    def _agent(self, instance: int) -> Agent:
        """Instance ``instance``'s agent, loaded from its checkpoint on first use."""
        if instance not in self._agents:
            self._agents[instance] = load_instance_agent(self._eval_task(instance), self._checkpoint(instance),
                                                         self.allow_pickle)
        return self._agents[instance]

    def _is_fitted(self, instance: int) -> bool:
        return storage.is_fitted(self.paths.instance(instance))

    def _checkpoint(self, instance: int) -> Path:
        """The checkpoint of a fitted instance (a RuntimeError before its fit)."""
        if not self._is_fitted(instance):
            raise RuntimeError(f"instance {instance} of '{self.agent_name}' is not fitted yet: call fit() first")
        return self.paths.instance(instance).checkpoint

    def get_writer_data(self) -> dict[int, Any] | None:
        """Writer data of each fitted instance, as rlberry gives it: ``{instance: DataFrame}`` with columns
        ``name, tag, value, dw_time_elapsed, global_step``; None before any fit.

        ``read_writer_data(manager)`` gives the same rows as one DataFrame with an ``instance`` column.
        """
        fitted = storage.fitted_instances(self.paths, self.n_fit)
        if not fitted:
            return None
        data = read_instance_tables(fitted, [self.paths.instance(i) for i in fitted], "writer")
        return {i: data[data["instance"] == i].drop(columns="instance").reset_index(drop=True) for i in fitted}

    def build_eval_env(self) -> Any:
        """A new evaluation environment (None without one), seeded from the manager's evaluation stream as an
        agent's environments are."""
        env = make_env(self.spec.evaluation_env)
        if env is not None:
            seed_env(env, np.random.SeedSequence(int(self._env_rng.integers(2**63))))
        return env

    # ------------------------------------------------------------------ files
    def save(self) -> Path:
        """Write ``manager.json`` (a JSON spec; the instances' checkpoints are already on disk); return its path."""
        self._claim_output_dir()
        record = {
            "format": "rlpipe-manager/1",
            "rlpipe_version": self.rlpipe_version,
            "unique_id": self.unique_id,
            "timestamp_id": self.timestamp_id,
            "seed": seed_record(self.seeder.seed_seq),
            "best_hyperparams": self.best_hyperparams,
            "parameters": encode(self._parameters(), self.output_dir),
        }
        path = self.output_dir / MANAGER_FILE
        write_json(path, record)
        _LOGGER.info("The ExperimentManager was saved in : '%s'", path)
        return path

    @classmethod
    def load(cls, filename: str | Path, allow_pickle: bool = False) -> "ExperimentManager":
        """Load a manager saved by :meth:`save`, or build one from a pipeline experiment folder.

        ``filename`` is a ``manager.json``, the folder that holds it, or a pipeline ``results/<experiment>``
        folder. Objects that had to be pickled (callables without an import path) are only read with
        ``allow_pickle=True``. Warns when the folder was written by another rlpipe version.
        """
        record, folder = read_manager_file(Path(filename))
        parameters = decode(record["parameters"], folder, allow_pickle)
        if record["rlpipe_version"] != rlpipe.__version__:
            warnings.warn(f"{folder} was written by rlpipe {record['rlpipe_version']}; this is rlpipe {rlpipe.__version__}",
                          stacklevel=2)
        manager = cls(**parameters, seed=seed_from_record(record["seed"]), outdir_id_style=None, output_dir=folder)
        manager.output_dir = folder
        manager.unique_id, manager.timestamp_id = record["unique_id"], record["timestamp_id"]
        manager.best_hyperparams = record.get("best_hyperparams")
        manager.rlpipe_version = record["rlpipe_version"]
        manager.allow_pickle = allow_pickle
        if not allow_pickle and not has_array_state(manager.agent_class) and manager.paths.instance(0).checkpoint.is_file():
            warnings.warn(f"the instances of {folder} are pickled ({manager.agent_class.__name__} has no get_state/"
                          "set_state): their writer data can be read, but their agents only with allow_pickle=True "
                          "(unpickling runs code: trusted files only)", stacklevel=2)
        return manager

    def clear_handlers(self) -> None:
        """Delete the instances' checkpoints and fit records (the next fit starts from scratch). The instances are then
        not fitted: no agent, no writer data (their files stay until the next fit replaces them)."""
        self._agents.clear()
        for i in range(self.n_fit):
            self.paths.instance(i).fit_record.unlink(missing_ok=True)  # first: the record is what "fitted" means
            self.paths.instance(i).checkpoint.unlink(missing_ok=True)

    def clear_output_dir(self) -> None:
        """Delete the manager's folder and everything in it."""
        self._agents.clear()
        if self.output_dir.exists():
            shutil.rmtree(self.output_dir)
        else:
            warnings.warn(f"{self.output_dir} does not exist: nothing to clear", stacklevel=2)

    # ------------------------------------------------------------------ pipeline bridge
    def to_config(self) -> dict[str, Any]:
        """The pipeline config (``seed`` and one experiment named ``agent_name``) that reproduces this manager."""
        root = self.seeder.seed_seq
        if root.spawn_key:
            raise ConfigError("a manager seeded with a spawned SeedSequence has no integer root seed for a config")
        config = {"seed": int(root.entropy), "experiments": {self.agent_name: self.spec.to_config()}}
        validate_study(config)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any] | str | Path, experiment: str, **kwargs: Any) -> "ExperimentManager":
        """A manager for one experiment of a pipeline config (a dict or a YAML file); ``kwargs`` override."""
        study = validate_study(load_config_file(config) if isinstance(config, (str, Path)) else config)
        return cls(**{**spec_arguments(study.experiment(experiment)), "seed": study.seed, **kwargs})

    def optimize_hyperparams(self, n_trials: int = 256, timeout: float | None = 60, n_fit: int = 2,
                             n_optuna_workers: int = 2, optuna_parallelization: str = "thread",
                             sampler_method: str = "optuna_default", pruner_method: str = "halving",
                             continue_previous: bool = False, fit_fraction: float = 1.0,
                             sampler_kwargs: dict[str, Any] | None = None, disable_evaluation_writers: bool = True,
                             custom_eval_function: Callable[[list[Agent]], float] | None = None,
                             search_space: dict[str, Any] | None = None, storage: str | None = None,
                             confirm: dict[str, Any] | None = None) -> dict[str, Any]:
        """Tune ``init_kwargs`` with Optuna, on the same code as the pipeline's ``optimize`` target.

        Runs ``n_trials`` trials (more, on top of the stored ones, with ``continue_previous``; else the
        study starts over) on ``n_optuna_workers`` threads or processes (``optuna_parallelization``),
        each worker starting no new trial after ``timeout`` seconds. Each trial fits ``n_fit`` instances
        seeded from the trial number and scores them with their mean evaluation score (``eval_kwargs``: the
        return of rolled-out episodes, or the agent's own eval) or ``custom_eval_function(agents)``. The search space is ``search_space`` (the config's
        declarative form) or the agent's ``sample_parameters``. The study is stored in
        ``<output_dir>/optimize/journal.log`` or ``storage`` (an Optuna storage URL), beside
        ``best_init_kwargs.yaml``, ``trials.parquet`` and the history and importance plots.

        Returns the best init kwargs and merges them into ``init_kwargs``. The fitted instances are
        deleted (they were fitted with other parameters): call :meth:`fit` next. Raises
        :class:`rlpipe.errors.OptimizationError` naming the first error if no trial completed.

        ``confirm`` (rlpipe; the keys of a config's ``optimize.confirm``, e.g. ``{}`` for their defaults ``top_k=3,
        n_fit=8, alpha=0.05``) confirms the study's result as the pipeline does, on the same code: the ``top_k`` best
        trials and the current ``init_kwargs`` are refitted on fresh seeds shared by all of them, and the best
        confirmed one replaces the current values only if a paired test shows it better. Then the return value is the
        selected values (the current values of the tuned keys when none was shown better: ``init_kwargs`` and the
        fitted instances are then kept), and :attr:`confirmation` the selection (also in ``selection.json`` and
        ``confirmation.csv`` beside the trials). ``None`` (the default, rlberry's behaviour) takes the best trial. With
        ``custom_eval_function``, each confirmed instance is scored alone: ``custom_eval_function([agent])``.
        """
        from rlpipe.tuning import confirmation, study

        check_choice("optuna_parallelization", optuna_parallelization, ("thread", "process"))
        settings = {"n_fit": n_fit, "sampler_method": sampler_method, "sampler_kwargs": dict(sampler_kwargs or {}),
                    "pruner_method": pruner_method, "fit_fraction": fit_fraction, "search_space": search_space,
                    "confirm": {"enabled": False} if confirm is None else dict(confirm)}
        section = _optimize_section(settings, {"n_trials": n_trials, "timeout": timeout,
                                               "n_optuna_workers": n_optuna_workers, "storage": storage},
                                    self.agent_class, self.init_kwargs_per_instance)
        tuned_spec = dataclasses.replace(self.spec, optimize=section)
        task = tasks.optimize_task(tuned_spec, self.seeder.seed_seq, custom_eval_function=custom_eval_function,
                                   writer_kwargs=None if disable_evaluation_writers else self._run_settings().writer)
        self._claim_output_dir()
        paths = self.paths.optimize
        if not continue_previous:
            study.delete_study(task, paths)
        target = study.stored_trial_count(task, paths) + n_trials
        jobs = [_OptimizeJob(task, paths, worker, target, self.thread_shared_data, self.worker_logging_level)
                for worker in range(n_optuna_workers)]
        self._run(_run_optimize_job, jobs, optuna_parallelization, max_workers=n_optuna_workers)  # all at once: one timeout
        confirm_jobs = [_ConfirmJob(task, confirm_task, paths, self.thread_shared_data, self.worker_logging_level)
                        for confirm_task in tasks.confirm_tasks(tuned_spec)]
        records = self._run(_run_confirm_job, confirm_jobs, optuna_parallelization,
                            max_workers=n_optuna_workers) if confirm_jobs else []
        selection = confirmation.select_setting(task, section["confirm"], paths, records)
        study.summarize_study(task, paths, selection=confirmation.selection_summary(selection))
        self._tuned, self.confirmation = task, selection
        self.best_hyperparams = dict(selection["chosen"]["init_kwargs"])
        if selection["written"]:
            self.spec = dataclasses.replace(self.spec, init_kwargs={**self.spec.init_kwargs, **self.best_hyperparams})
            self.clear_handlers()
        self.save()
        return dict(self.best_hyperparams)

    # ------------------------------------------------------------------ internals
    def _stream(self, stream: Stream, index: int) -> np.random.SeedSequence:
        return experiment_stream(self.seeder.seed_seq, self.agent_name, stream, index)

    def _budget(self, budget: int | None) -> int:
        """The budget of a fit call: ``fit_budget`` when None or 0 (as rlberry), else a checked budget."""
        return self.fit_budget if not budget else _as_budget(budget, "budget")

    def _fit_job(self, instance: int, budget: int, fit_kwargs: dict[str, Any], paths: InstancePaths,
                 continue_fit: bool) -> _FitJob:
        """What fitting ``instance`` for ``budget`` (with ``fit_kwargs`` added) into ``paths`` takes."""
        return _FitJob(task=tasks.fit_task(self.spec, self.seeder.seed_seq, instance, budget, fit_kwargs),
                       run=self._run_settings(instance), paths=paths, continue_fit=continue_fit,
                       writer=self.writers[instance], shared_data=self.thread_shared_data,
                       logging_level=self.worker_logging_level)

    def _run_settings(self, instance: int | None = None) -> tasks.RunSettings:
        """How this manager's fits and evaluations run: the pipeline's run settings, except that an additive agent's
        ``fit()`` is one call unless ``n_checkpoints`` says otherwise (the others are fitted in their task's chunks),
        reads unpickle as ``allow_pickle`` says, and TensorBoard writes per instance when enabled."""
        extra = {k: v for k, v in self.default_writer_kwargs.items() if k not in _SPEC_WRITER_KEYS}
        if self.enable_tensorboard and instance is not None:
            extra["tensorboard_kwargs"] = {"log_dir": str(self.paths.tensorboard / str(instance))}
        run = dataclasses.replace(tasks.run_settings(self.spec, **extra), allow_pickle=self.allow_pickle)
        return run if self.spec.n_checkpoints is not None else dataclasses.replace(run, n_checkpoints=1)

    def _eval_task(self, instance: int) -> tasks.EvalTask:
        return tasks.eval_task(self.spec, self.seeder.seed_seq, instance)

    def _parameters(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this manager (seed and folder are stored beside them)."""
        return {**spec_arguments(self.spec),
                "parallelization": self.parallelization, "max_workers": self.max_workers, "mp_context": self.mp_context,
                "worker_logging_level": self.worker_logging_level, "enable_tensorboard": self.enable_tensorboard,
                "default_writer_kwargs": self.default_writer_kwargs}

    def _claim_output_dir(self) -> None:
        """Take the output folder: another manager's data in it (a fixed ``output_dir`` with
        ``outdir_id_style=None``, run again) is replaced as a whole, as rlberry overwrites it, so that
        no instance of the old run is ever continued or read as one of this manager's."""
        manager_file = self.output_dir / MANAGER_FILE
        if manager_file.is_file() and json.loads(manager_file.read_text()).get("unique_id") != self.unique_id:
            _LOGGER.warning("%s held the data of another manager: replacing it with this manager's", self.output_dir)
            for path in [*self.paths.written(), manager_file, self.output_dir / OBJECTS_FILE]:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            self._agents.clear()
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def _run(self, function: Callable[[Any], Any], jobs: list[Any], parallelization: str | None = None,
             max_workers: int | None = None) -> list[Any]:
        """Run ``function`` on every job with :func:`run_jobs` (``parallelization`` and ``max_workers``, default the
        manager's)."""
        return run_jobs(function, jobs, parallelization or self.parallelization, max_workers or self.max_workers,
                        self.mp_context, f" of '{self.agent_name}'")


AgentManager = ExperimentManager  # rlberry's former name, kept by rlberry for backward compatibility


def preset_manager(*args: Any, **kwargs: Any) -> type[ExperimentManager]:
    """An ExperimentManager class with some constructor arguments fixed, as rlberry's ``preset_manager``:
    ``preset_manager(train_env=env, n_fit=4)(AgentClass, fit_budget=100)``."""

    class PresetManager(ExperimentManager):
        __init__ = functools.partialmethod(ExperimentManager.__init__, *args, **kwargs)  # type: ignore[assignment]

    return PresetManager


class AgentHandler:
    """rlberry's lazy handle on one instance: attributes are read from the instance's agent, loaded on first use.

    ``is_empty()`` says whether the instance is not fitted (yet, or since ``clear_handlers``); ``get_instance()``
    returns the agent.
    """

    def __init__(self, manager: ExperimentManager, index: int) -> None:
        self._manager, self.id = manager, index

    def is_empty(self) -> bool:
        return not self._manager._is_fitted(self.id)

    def is_loaded(self) -> bool:
        return self.id in self._manager._agents

    def get_instance(self) -> Agent:
        return self._manager._agent(self.id)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get_instance(), name)

    def __repr__(self) -> str:
        return f"AgentHandler({self._manager.agent_name!r}, instance {self.id})"


class _FitJob:
    """Everything one worker needs to fit one instance (picklable)."""

    def __init__(self, task: tasks.FitTask, run: tasks.RunSettings, paths: Any, continue_fit: bool,
                 writer: tuple[Any, Any], shared_data: dict[str, Any] | None, logging_level: int | str) -> None:
        self.task, self.run, self.paths, self.continue_fit = task, run, paths, continue_fit
        self.writer, self.shared_data, self.logging_level = writer, shared_data, logging_level

    def prepare(self, agent: Agent) -> None:
        writer_fn, writer_kwargs = self.writer
        if writer_fn is None:
            agent.set_writer(None)
        elif writer_fn != "default":
            agent.set_writer(writer_fn(**(writer_kwargs or {})))


def _run_fit_job(job: _FitJob) -> dict[str, Any]:
    """Fit one instance; an error keeps its type (through thread and process pools) and gains a note naming it."""
    configure_logging(job.logging_level)
    try:
        return fit_instance(job.task, job.paths, job.run, continue_fit=job.continue_fit, prepare_agent=job.prepare,
                            shared_data=job.shared_data)
    except Exception as error:
        if hasattr(error, "add_note"):  # Python >= 3.11
            error.add_note(f"(while fitting instance {job.task.instance} of '{job.task.experiment}')")
        raise


class _OptimizeJob:
    """What one optimisation worker needs (picklable with cloudpickle, custom_eval_function included)."""

    def __init__(self, task: tasks.OptimizeTask, paths: Any, worker: int, n_trials: int,
                 shared_data: dict[str, Any] | None, logging_level: int | str) -> None:
        self.task, self.paths, self.worker, self.n_trials = task, paths, worker, n_trials
        self.shared_data, self.logging_level = shared_data, logging_level


def _run_optimize_job(job: _OptimizeJob) -> dict[str, Any]:
    from rlpipe.tuning.study import run_worker

    configure_logging(job.logging_level)
    return run_worker(job.task, job.paths, job.worker, job.n_trials, job.shared_data)


class _ConfirmJob:
    """What one confirmation of a study's candidate needs (picklable with cloudpickle, as an optimize job)."""

    def __init__(self, task: tasks.OptimizeTask, confirm: tasks.ConfirmTask, paths: Any,
                 shared_data: dict[str, Any] | None, logging_level: int | str) -> None:
        self.task, self.confirm, self.paths = task, confirm, paths
        self.shared_data, self.logging_level = shared_data, logging_level


def _run_confirm_job(job: _ConfirmJob) -> dict[str, Any]:
    from rlpipe.tuning.confirmation import measure_candidate

    configure_logging(job.logging_level)
    return measure_candidate(job.task, job.confirm, job.paths, job.shared_data)


def _optimize_section(settings: dict[str, Any], run: dict[str, Any], agent_class: type[Agent],
                      init_kwargs_per_instance: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The config's ``optimize`` section these arguments make, checked as a config's is (one ConfigError)."""
    section = {**{k: v for k, v in settings.items() if v is not None}, **run}
    problems = optimize_problems(section, agent_class, init_kwargs_per_instance, check_sampler_kwargs=True)
    if problems:
        raise ConfigError.listing("invalid optimize_hyperparams arguments", problems)
    return section


def run_jobs(function: Callable[[Any], Any], jobs: Sequence[Any], parallelization: str, max_workers: int | None,
             mp_context: str, of: str = "") -> list[Any]:
    """``[function(job) for job in jobs]``, in the order of the jobs: inline for a single job, else on a pool of
    ``max_workers`` threads or processes (``parallelization``; ``mp_context`` starts the processes). A process
    gets ``(function, job)`` by value with cloudpickle, so classes and functions of ``__main__`` work too. ``of``
    names what runs in the error raised when a worker process dies (e.g. " of 'agent'")."""
    if len(jobs) == 1:
        return [function(jobs[0])]
    if parallelization == "thread":
        with ThreadPoolExecutor(max_workers) as pool:
            return list(pool.map(function, jobs))  # list() re-raises the first failure
    _check_spawn_safe(mp_context)
    import cloudpickle

    context = multiprocessing.get_context(mp_context)
    payloads = [cloudpickle.dumps((function, job)) for job in jobs]
    try:
        with ProcessPoolExecutor(max_workers, mp_context=context) as pool:
            return list(pool.map(_run_pickled, payloads))
    except BrokenProcessPool as error:
        raise RuntimeError(
            f"a worker process{of} died before finishing. With mp_context='{mp_context}', a script must run its "
            "experiments under `if __name__ == '__main__':`; in a notebook use mp_context='fork' or "
            "parallelization='thread'"
        ) from error


def _run_pickled(payload: bytes) -> Any:
    import cloudpickle

    function, job = cloudpickle.loads(payload)
    return function(job)


def _check_spawn_safe(mp_context: str) -> None:
    """In a spawned child that is still importing the parent's main module, fail instead of spawning again."""
    if mp_context in ("spawn", "forkserver"):
        try:
            multiprocessing.spawn._check_not_importing_main()
        except RuntimeError:
            raise RuntimeError(
                f"worker processes (parallelization='process', mp_context='{mp_context}') were started while a "
                "worker process was importing your script: put the code that runs experiments under "
                "`if __name__ == '__main__':` (or use mp_context='fork' / parallelization='thread')"
            ) from None


def _as_budget(value: Any, name: str) -> int:
    """An integer budget: positive, or 0 / -1 for agents that need none (rlberry documents -1)."""
    value = _integral(value)
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < -1:
        raise ConfigError(f"{name} must be a positive integer, or 0 or -1 for an agent that needs no budget, got {value!r}")
    return int(value)


def spec_arguments(spec: ExperimentSpec) -> dict[str, Any]:
    """The constructor arguments of a manager of ``spec`` (its seed and folder aside)."""
    return {"agent_class": spec.agent, "train_env": spec.train_env, "eval_env": spec.eval_env,
            "init_kwargs": dict(spec.init_kwargs), "init_kwargs_per_instance": None if spec.init_kwargs_per_instance
            is None else [dict(kw) for kw in spec.init_kwargs_per_instance], "fit_budget": spec.fit_budget,
            "fit_kwargs": dict(spec.fit_kwargs), "eval_kwargs": dict(spec.eval_kwargs), "n_fit": spec.n_fit,
            "agent_name": spec.name, "default_writer_kwargs": {k: v for k, v in spec.writer.items() if v is not None},
            "n_checkpoints": spec.n_checkpoints}


def _read_only(mapping: dict[str, Any]) -> Any:
    """A read-only view: the experiment is the frozen spec, so its dicts cannot be changed through the manager."""
    return types.MappingProxyType(mapping)


def _pickles_checkpoints(agent: Any) -> bool:
    """The spec's ``allow_pickle``: True for an agent without array state, whose checkpoints are pickles that the
    manager trusts since it writes them (and for anything that is no Agent class, which the spec's checks name)."""
    return not (isinstance(agent, type) and issubclass(agent, Agent) and has_array_state(agent))


def _merged(current: dict[str, Any], given: Any) -> Any:
    """``given`` (a config section, e.g. ``learning_curve``) over ``current``; anything but a mapping as given, for
    the schema to name it."""
    if given is None:
        return dict(current)
    return {**current, **given} if isinstance(given, dict) else given


def _imported(agent_class: Any) -> Any:
    """The class an import path names (the path itself if it names none: the spec's checks say why)."""
    if not isinstance(agent_class, str):
        return agent_class
    try:
        return import_object(agent_class)
    except ImportError:
        return agent_class


def _integral(value: Any) -> Any:
    """``1e4`` (a common way to write a budget) as the integer it is; anything else as given, for the checks."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}")


def _output_folder(output_dir: str | Path | None, style: str | None, name: str, unique_id: str, timestamp_id: str) -> Path:
    """``<output_dir>/manager_data/<name>_<timestamp>`` (default), ``.../<name>_<unique id>``, or ``.../manager_data``."""
    base = Path(output_dir) if output_dir is not None else DEFAULT_OUTPUT_DIR
    if style is None:
        return base / "manager_data"
    return base / "manager_data" / f"{name}_{timestamp_id if style == 'timestamp' else unique_id}"
