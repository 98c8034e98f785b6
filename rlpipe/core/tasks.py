"""Tasks: what one job computes, built from an experiment spec, and, kept apart, how it runs.

A task holds exactly what determines a job's numbers: agent, environments, kwargs, budget, seeds, how
much writer data is kept. Its JSON is the Snakemake rule's params, so Snakemake reruns a job exactly
when one of these changes, and its hash is the key under which an interrupted fit resumes. How a job
runs (progress output, how many checkpoints it writes when that does not change the numbers, whether
pickled checkpoints may be read) is a :class:`RunSettings`: changing it reruns nothing and keeps
resume progress. Both drivers build their tasks here, from an :class:`~rlpipe.spec.experiment.ExperimentSpec`.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from typing import Any

import numpy as np

from rlpipe.agents.capabilities import eval_settings, fits_additively
from rlpipe.errors import ConfigError
from rlpipe.io.imports import import_object
from rlpipe.io.provenance import canonical_json, json_data, stable_hash
from rlpipe.runtime.envs import describe_env
from rlpipe.runtime.seeding import Stream, experiment_stream, keyed_child, name_key, seed_from_record, seed_record
from rlpipe.spec.experiment import ExperimentSpec, Study
from rlpipe.spec.schema import experiment_schema
from rlpipe.spec.search_space import tuned_keys

# The optimize keys that only say how much of a study to run and where it is stored: not part of its identity.
STUDY_EXTENT_KEYS = ("n_trials", "timeout", "n_optuna_workers", "storage")
# The optimize keys that say how a finished study's best trials are confirmed before the write-back: not part of the
# study either (its trials do not depend on them); the confirmation jobs have their own task (ConfirmTask).
SELECTION_KEYS = ("confirm",)
# The chunks an additive agent is fitted in when the experiment does not say.
DEFAULT_CHUNKS = 10
# At most this many fit (and evaluate) jobs per experiment when its instances_per_job is "auto".
AUTO_JOBS_PER_EXPERIMENT = 16
# The writer keys that decide which rows are kept, so what a fit computes (FitTask fields of the same names).
IDENTITY_WRITER_KEYS = ("maxlen", "maxlen_by_tag")


@cache
def study_setting_keys() -> tuple[str, ...]:
    """The optimize keys that define a study (what a trial computes): the schema's, but :data:`STUDY_EXTENT_KEYS` and
    :data:`SELECTION_KEYS`. Read from the schema on first use, so that a fit job, which only reads its task, does not
    parse it."""
    keys = experiment_schema()["properties"]["optimize"]["properties"]
    return tuple(key for key in keys if key not in (*STUDY_EXTENT_KEYS, *SELECTION_KEYS))


@cache
def display_writer_keys() -> tuple[str, ...]:
    """The writer keys that only change how progress is shown: the schema's, but :data:`IDENTITY_WRITER_KEYS`."""
    keys = experiment_schema()["properties"]["writer"]["properties"]
    return tuple(key for key in keys if key not in IDENTITY_WRITER_KEYS)


@dataclass(frozen=True)
class _Task:
    experiment: str
    root_seed: dict[str, Any]  # seed_record of the study's root SeedSequence

    def to_json(self) -> str:
        return canonical_json(self.record())

    @classmethod
    def from_json(cls, text: str) -> "_Task":
        return cls(**json.loads(text))

    def record(self) -> dict[str, Any]:
        """The task as JSON data; any Python value the API allows is recorded by what it is (see ``json_data``)."""
        return json_data({f.name: getattr(self, f.name) for f in fields(self)})

    def task_hash(self) -> str:
        return stable_hash(self.record())

    def stream(self, stream: Stream, index: int) -> np.random.SeedSequence:
        return experiment_stream(seed_from_record(self.root_seed), self.experiment, stream, index)


@dataclass(frozen=True)
class AgentTask(_Task):
    """What it takes to build one instance's agent."""

    instance: int
    agent: Any  # import path, or an Agent class (Python API)
    train_env: Any
    eval_env: Any
    init_kwargs: dict[str, Any]

    @property
    def instance_seed(self) -> np.random.SeedSequence:
        return self.stream(Stream.FIT, self.instance)


@dataclass(frozen=True)
class FitTask(AgentTask):
    """One instance's fit. ``chunks`` is the number of ``fit`` calls when it changes the training (an agent whose
    fit is not additive), else None: then how many chunks a fit is checkpointed in is a run setting."""

    fit_budget: int
    fit_kwargs: dict[str, Any]
    maxlen: int | None = None
    maxlen_by_tag: dict[str, int] = field(default_factory=dict)
    chunks: int | None = None


@dataclass(frozen=True)
class EvalTask(AgentTask):
    eval_kwargs: dict[str, Any]

    @property
    def episode_seeds(self) -> np.ndarray:
        """Seed of each evaluation row (episode or eval call); a prefix is stable when n_simulations grows."""
        return episode_seeds(self.stream(Stream.EVAL, self.instance), eval_settings(self.eval_kwargs)["n_simulations"])


@dataclass(frozen=True)
class AggregateTask(_Task):
    agent: str
    env: str
    fit_budget: int
    learning_curve: dict[str, Any]
    report: dict[str, Any]
    instances: list[int] = field(default_factory=list)

    @property
    def statistics_seed(self) -> np.random.SeedSequence:
        return self.stream(Stream.STATISTICS, 0)


@dataclass(frozen=True)
class OptimizeTask(_Task):
    """What the workers of one hyperparameter study share.

    ``init_kwargs`` are the shared init kwargs minus the tuned ones, so writing the best values back
    into the config leaves the task unchanged. ``settings`` holds the optimize keys that define the study
    (:func:`study_setting_keys`: n_fit, sampler, pruner, fit_fraction, search_space); ``n_trials``, ``timeout``,
    ``n_optuna_workers`` and ``storage`` (:data:`STUDY_EXTENT_KEYS`) only say how much of it to run and where it is
    stored, and ``writer_kwargs`` how trials log, so they are left out of :meth:`identity`. The Python API may
    score trials with ``custom_eval_function``, which is part of it.
    """

    agent: Any
    train_env: Any
    eval_env: Any
    init_kwargs: dict[str, Any]
    init_kwargs_per_instance: list[dict[str, Any]] | None
    fit_budget: int
    fit_kwargs: dict[str, Any]
    eval_kwargs: dict[str, Any]
    settings: dict[str, Any]
    n_trials: int
    timeout: float | None
    n_optuna_workers: int
    storage: str | None
    # Python API only: scoring by a callable, and trial writers
    custom_eval_function: Any = None
    writer_kwargs: dict[str, Any] | None = None

    def study_record(self) -> dict[str, Any]:
        """The fields that change what a trial computes (not how much to run, nor how trials log)."""
        return {k: v for k, v in self.record().items() if k not in (*STUDY_EXTENT_KEYS, "writer_kwargs")}

    def identity(self) -> str:
        """Hash of :meth:`study_record`: a different identity is a different study."""
        return stable_hash(self.study_record())

    @property
    def study_name(self) -> str:
        return f"{self.experiment}-{self.identity()[:12]}"

    def trial_seed(self, trial: int, instance: int, purpose: int) -> np.random.SeedSequence:
        """Seed of instance ``instance`` of trial ``trial``: purpose 0 fits it, 1 seeds its evaluation episodes."""
        return keyed_child(self.stream(Stream.OPTIMIZE, 0), int(trial), int(instance), int(purpose))

    @property
    def sampler_seed(self) -> np.random.SeedSequence:
        return self.stream(Stream.OPTIMIZE, 1)

    def confirmation_seed(self, study_size: int, instance: int, purpose: int) -> np.random.SeedSequence:
        """Seed of instance ``instance`` of every candidate confirmed once the study holds ``study_size`` trials:
        purpose 0 fits it, 1 seeds its evaluation episodes. A stream of its own, never a trial's seed; the same for
        every candidate (common random numbers: instance ``j`` of each candidate shares its seeds, so their score
        differences are paired), and fresh when more trials make a new selection."""
        return keyed_child(self.stream(Stream.OPTIMIZE, 2), int(study_size), int(instance), int(purpose))

    def confirmation_statistics_seed(self, study_size: int) -> np.random.SeedSequence:
        """Seed of the confirmation's test and intervals (Monte-Carlo flips, bootstrap) at ``study_size`` trials."""
        return keyed_child(self.stream(Stream.OPTIMIZE, 3), int(study_size))


# The candidate of a confirmation job that is the experiment's own init_kwargs (the others are trial ranks 0, 1, ...).
CURRENT_CANDIDATE = "current"


@dataclass(frozen=True)
class ConfirmTask:
    """What one confirmation job of a study measures, beside the study's :class:`OptimizeTask`: ``n_fit`` instances of
    one candidate fitted on the confirmation's seeds (``OptimizeTask.confirmation_seed``) and scored.

    ``candidate`` is a rank, ``"0"`` for the best distinct completed trial by search score, ``"1"`` the next…, or
    :data:`CURRENT_CANDIDATE`: the experiment's own ``init_kwargs``, which are then part of the task (they are what it
    measures), with ``top_k``, the ranks whose trial it may equal (then it is not fitted twice). A rank's task holds
    neither, so writing the chosen values back into the config reruns only the current candidate's job.
    """

    candidate: str
    n_fit: int
    top_k: int | None = None
    init_kwargs: dict[str, Any] | None = None

    @property
    def is_current(self) -> bool:
        return self.candidate == CURRENT_CANDIDATE

    @property
    def rank(self) -> int:
        """The trial rank of a candidate that is not the current one."""
        return int(self.candidate)

    def record(self) -> dict[str, Any]:
        return json_data({f.name: getattr(self, f.name) for f in fields(self)})

    def to_json(self) -> str:
        return canonical_json(self.record())

    @classmethod
    def from_json(cls, text: str) -> "ConfirmTask":
        return cls(**json.loads(text))


@dataclass(frozen=True)
class TaskBatch:
    """The tasks of one Snakemake job that fits (``stage`` "fit") or evaluates ("evaluate") several instances.

    Kept compact, since it is the job's params (its rerun trigger) and planning a sweep of many instances builds
    one per job: the first instance's task record, the instances, and each one's init kwargs only when they differ
    (``init_kwargs_per_instance``). :meth:`tasks` gives exactly the tasks :func:`fit_task`/:func:`eval_task` give.
    """

    stage: str
    first: dict[str, Any]
    instances: list[int]
    init_kwargs: list[dict[str, Any]] | None = None

    def tasks(self) -> list[FitTask] | list[EvalTask]:
        cls = {"fit": FitTask, "evaluate": EvalTask}[self.stage]
        own = self.init_kwargs or [self.first["init_kwargs"]] * len(self.instances)
        return [cls(**{**self.first, "instance": i, "init_kwargs": kw}) for i, kw in zip(self.instances, own)]

    @property
    def experiment(self) -> str:
        return self.first["experiment"]

    def to_json(self) -> str:
        return canonical_json(self._fields())

    @classmethod
    def from_json(cls, text: str) -> "TaskBatch":
        return cls(**json.loads(text))

    def task_hash(self) -> str:
        return stable_hash(self._fields())

    def _fields(self) -> dict[str, Any]:
        """``asdict`` without its deep copy (a third of planning a large sweep): the fields are JSON data already."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class RunSettings:
    """How a fit or an evaluation runs, not what it computes: never a rerun trigger, never a resume key.

    ``writer`` holds the writer's display settings (and, from the Python API, TensorBoard's). A rule
    passes it as a param of a type Snakemake does not record, so changing it reruns no job.
    """

    n_checkpoints: int = 1
    writer: dict[str, Any] = field(default_factory=dict)
    allow_pickle: bool = False

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RunSettings":
        return cls(**json.loads(text))

    def __str__(self) -> str:  # what a rule's shell command receives
        return self.to_json()


def episode_seeds(seed: np.random.SeedSequence, n: int) -> np.ndarray:
    """``n`` non-negative int64 reset seeds drawn from ``seed``; a prefix is stable when ``n`` grows."""
    return (seed.generate_state(n) >> 1).astype(np.int64)


# ---------------------------------------------------------------------------------------------- from a spec
def fit_task(spec: ExperimentSpec, root: np.random.SeedSequence, instance: int, fit_budget: int | None = None,
             fit_kwargs: dict[str, Any] | None = None) -> FitTask:
    """Instance ``instance``'s fit (the Python API may fit another budget, with more fit kwargs)."""
    chunks = None if fits_additively(spec.agent) else checkpoint_chunks(spec.n_checkpoints, spec.agent)
    kept = {key: copy.deepcopy(spec.writer[key]) for key in IDENTITY_WRITER_KEYS if spec.writer.get(key) is not None}
    return FitTask(**_agent_fields(spec, root, instance), fit_budget=spec.fit_budget if fit_budget is None else fit_budget,
                   fit_kwargs={**spec.fit_kwargs, **(fit_kwargs or {})}, chunks=chunks, **kept)


def run_settings(spec: ExperimentSpec, **writer: Any) -> RunSettings:
    """How the spec's fits and evaluations run; ``writer`` adds display settings (e.g. TensorBoard's)."""
    display = {key: spec.writer[key] for key in display_writer_keys() if key in spec.writer}
    return RunSettings(n_checkpoints=checkpoint_chunks(spec.n_checkpoints, spec.agent), writer={**display, **writer},
                       allow_pickle=spec.allow_pickle)


def checkpoint_chunks(n_checkpoints: int | None, agent_class: type) -> int:
    """How many chunks a fit is split into: as the experiment says, else :data:`DEFAULT_CHUNKS` for an agent
    whose fit is additive and one call for any other (chunks would change its training)."""
    if n_checkpoints is not None:
        return n_checkpoints
    return DEFAULT_CHUNKS if fits_additively(agent_class) else 1


def eval_task(spec: ExperimentSpec, root: np.random.SeedSequence, instance: int) -> EvalTask:
    return EvalTask(**_agent_fields(spec, root, instance), eval_kwargs=spec.eval_kwargs)


def instances_per_job(spec: ExperimentSpec) -> int:
    """The spec's ``instances_per_job``, "auto" resolved to at most :data:`AUTO_JOBS_PER_EXPERIMENT` jobs."""
    if spec.instances_per_job == "auto":
        return -(-spec.n_fit // AUTO_JOBS_PER_EXPERIMENT)
    return int(spec.instances_per_job)


def job_batches(spec: ExperimentSpec) -> list[range]:
    """The instances of each of the spec's fit (and evaluate) jobs, in order."""
    size = instances_per_job(spec)
    return [range(start, min(start + size, spec.n_fit)) for start in range(0, spec.n_fit, size)]


def task_batch(stage: str, spec: ExperimentSpec, root: np.random.SeedSequence, batch: int) -> TaskBatch:
    """The tasks of the spec's ``batch``-th job of ``stage`` ("fit" or "evaluate")."""
    batches = job_batches(spec)
    if not 0 <= batch < len(batches):
        raise IndexError(f"experiment '{spec.name}' has batches 0..{len(batches) - 1}, not {batch}")
    instances = batches[batch]
    build = {"fit": fit_task, "evaluate": eval_task}[stage]
    first = build(spec, root, instances.start).record()
    own = [spec.instance_init_kwargs(i) for i in instances] if spec.init_kwargs_per_instance else None
    return TaskBatch(stage=stage, first=first, instances=list(instances), init_kwargs=copy.deepcopy(own))


def aggregate_task(spec: ExperimentSpec, root: np.random.SeedSequence, report: dict[str, Any]) -> AggregateTask:
    return AggregateTask(experiment=spec.name, root_seed=seed_record(root), agent=spec.agent_path,
                         env=describe_env(spec.evaluation_env), fit_budget=spec.fit_budget,
                         learning_curve=spec.learning_curve, report=report, instances=list(range(spec.n_fit)))


def optimize_task(spec: ExperimentSpec, root: np.random.SeedSequence, custom_eval_function: Any = None,
                  writer_kwargs: dict[str, Any] | None = None) -> OptimizeTask:
    """The task of the spec's ``optimize`` section (a ConfigError if it has none); the Python API may score
    trials with ``custom_eval_function`` and give their agents writers (``writer_kwargs``)."""
    if spec.optimize is None:
        raise ConfigError(f"experiment '{spec.name}' has no 'optimize' section: add one to tune it")
    settings = spec.optimize
    per_instance = spec.init_kwargs_per_instance
    return OptimizeTask(
        experiment=spec.name, root_seed=seed_record(root), agent=spec.agent, train_env=spec.train_env,
        eval_env=spec.evaluation_env,
        init_kwargs=untuned_init_kwargs(spec.init_kwargs, spec.agent, settings.get("search_space")),
        init_kwargs_per_instance=None if per_instance is None else [dict(kw) for kw in per_instance],
        fit_budget=spec.fit_budget, fit_kwargs=spec.fit_kwargs, eval_kwargs=spec.eval_kwargs,
        settings={k: settings.get(k) for k in study_setting_keys()}, **{k: settings[k] for k in STUDY_EXTENT_KEYS},
        custom_eval_function=custom_eval_function, writer_kwargs=writer_kwargs,
    )


def confirm_tasks(spec: ExperimentSpec) -> list[ConfirmTask]:
    """The confirmation jobs of the spec's study: the trial ranks ``0 .. top_k - 1``, then the current init_kwargs
    (none when its ``optimize.confirm`` is disabled)."""
    confirm = spec.optimize["confirm"] if spec.optimize is not None else None
    if not confirm or not confirm["enabled"]:
        return []
    ranks = [ConfirmTask(candidate=str(rank), n_fit=confirm["n_fit"]) for rank in range(confirm["top_k"])]
    current = ConfirmTask(candidate=CURRENT_CANDIDATE, n_fit=confirm["n_fit"], top_k=confirm["top_k"],
                          init_kwargs=dict(spec.init_kwargs))
    return [*ranks, current]


def untuned_init_kwargs(init_kwargs: dict[str, Any], agent_class: type, search_space: dict[str, Any] | None) -> dict[str, Any]:
    """The init kwargs a study shares: those it does not tune (so writing tuned values back changes nothing)."""
    tuned = set(tuned_keys(agent_class, search_space))
    return {key: value for key, value in init_kwargs.items() if key not in tuned}


def agent_class(task: AgentTask | OptimizeTask) -> type:
    """The task's agent class (JSON tasks name it by its import path)."""
    return task.agent if isinstance(task.agent, type) else import_object(task.agent)


def _agent_fields(spec: ExperimentSpec, root: np.random.SeedSequence, instance: int) -> dict[str, Any]:
    if not 0 <= instance < spec.n_fit:
        raise IndexError(f"experiment '{spec.name}' has instances 0..{spec.n_fit - 1}, not {instance}")
    return {"experiment": spec.name, "root_seed": seed_record(root), "instance": instance, "agent": spec.agent,
            "train_env": spec.train_env, "eval_env": spec.evaluation_env, "init_kwargs": spec.instance_init_kwargs(instance)}


# ---------------------------------------------------------------------------------------------- across environments
# Key of the study's cross-environment statistics among the root seed's keyed children. No experiment can have this
# name (names hold no parentheses), so these draws never coincide with an experiment's.
CROSS_ENV_KEY = "(cross_env)"
CROSS_ENV_PARTS = ("aggregates", "profiles", "improvement", "sample_efficiency")


@dataclass(frozen=True)
class CrossEnvTask:
    """What the cross_env job computes: the metrics across environments of the study's experiments.

    ``experiments`` lists, in the study's order, each experiment's ``name``, ``algorithm``, evaluation ``env`` and the
    ``smoothing_window`` of its sample-efficiency curve; ``reference_scores`` are those of the envs the study evaluates
    on. Its JSON is the rule's params: a change of a reference score, an algorithm or a metrics setting reruns this job
    alone.
    """

    root_seed: dict[str, Any]
    experiments: list[dict[str, Any]]
    reference_scores: dict[str, dict[str, float]]
    confidence: float
    bootstrap_samples: int
    profile_thresholds: list[float] | None
    sample_efficiency: dict[str, Any]  # tag, xtag, n_points

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "CrossEnvTask":
        return cls(**json.loads(text))

    def generator(self, part: str, *algorithms: str) -> np.random.Generator:
        """The generator of one part of the statistics (:data:`CROSS_ENV_PARTS`) for one algorithm (or pair of
        algorithms): a keyed child of the study's cross-env statistics stream. So a rerun draws the same numbers, and
        a change to one part (its thresholds, say) or a new algorithm leaves the other intervals as they were."""
        if part not in CROSS_ENV_PARTS:
            raise ValueError(f"unknown part {part!r}; parts: {', '.join(CROSS_ENV_PARTS)}")
        stream = keyed_child(seed_from_record(self.root_seed), name_key(CROSS_ENV_KEY), int(Stream.STATISTICS))
        return np.random.default_rng(keyed_child(stream, name_key(part), *(name_key(name) for name in algorithms)))


def cross_env_task(study: Study) -> CrossEnvTask:
    """The cross_env task of a study with a ``metrics`` section (a ConfigError names the section otherwise)."""
    if study.metrics is None:
        raise ConfigError("the config has no metrics section, so there are no metrics across environments to compute: "
                          "add one (see config/README.md)")
    metrics = study.metrics
    window = metrics["sample_efficiency"]["smoothing_window"]
    experiments = [{"name": name, "algorithm": study.algorithm(name), "env": describe_env(spec.evaluation_env),
                    "smoothing_window": window or spec.learning_curve["smoothing_window"]}
                   for name, spec in study.experiments.items()]
    envs = dict.fromkeys(experiment["env"] for experiment in experiments)
    return CrossEnvTask(
        root_seed=seed_record(study.root), experiments=experiments,
        reference_scores={env: dict(metrics["reference_scores"][env]) for env in envs},
        confidence=study.report["confidence"], bootstrap_samples=metrics["bootstrap_samples"],
        profile_thresholds=metrics["profile_thresholds"],
        sample_efficiency={key: metrics["sample_efficiency"][key] for key in ("tag", "xtag", "n_points")})
