"""Tasks: everything one job needs, resolved from the study, and nothing else.

A Snakemake rule passes its task as a JSON param, so Snakemake's params trigger reruns a job exactly
when something that job depends on changes (eval_kwargs do not touch fit tasks; n_fit is in no
instance task, so raising it leaves existing instances alone). ExperimentManager builds the same
tasks from its arguments, and may put classes and callables where the config has import paths.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from rlpipe.agents.capabilities import eval_settings, fits_additively
from rlpipe.errors import ConfigError
from rlpipe.io.imports import import_object
from rlpipe.io.provenance import canonical_json, json_data, stable_hash
from rlpipe.runtime.envs import describe_env
from rlpipe.runtime.seeding import Stream, experiment_stream, keyed_child, seed_from_record, seed_record
from rlpipe.spec.config import Study

# The optimize settings that define a study, and those that only say how much of it to run and where.
STUDY_SETTINGS = ("n_fit", "sampler_method", "sampler_kwargs", "pruner_method", "fit_fraction", "search_space")
RUN_SETTINGS = ("n_trials", "timeout", "n_optuna_workers", "storage")


@dataclass(frozen=True)
class _Task:
    experiment: str
    root_seed: dict[str, Any]  # seed_record of the study's root SeedSequence

    def to_json(self) -> str:
        return canonical_json(asdict(self))

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
    allow_pickle: bool

    @property
    def instance_seed(self) -> np.random.SeedSequence:
        return self.stream(Stream.FIT, self.instance)


@dataclass(frozen=True)
class FitTask(AgentTask):
    fit_budget: int
    fit_kwargs: dict[str, Any]
    n_checkpoints: int
    writer_kwargs: dict[str, Any]


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
    into the config leaves the task unchanged. ``settings`` holds what defines the study (n_fit,
    sampler, pruner, fit_fraction, search_space); ``n_trials``, ``timeout`` and the number of
    workers only say how much of it to run, so they are left out of :meth:`identity`.
    """

    agent: Any
    train_env: Any
    eval_env: Any
    init_kwargs: dict[str, Any]
    init_kwargs_per_instance: list[dict[str, Any]] | None
    fit_budget: int
    fit_kwargs: dict[str, Any]
    eval_kwargs: dict[str, Any]
    allow_pickle: bool
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
        return {k: v for k, v in self.record().items() if k not in (*RUN_SETTINGS, "writer_kwargs")}

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


def episode_seeds(seed: np.random.SeedSequence, n: int) -> np.ndarray:
    """``n`` non-negative int64 reset seeds drawn from ``seed``; a prefix is stable when ``n`` grows."""
    return (seed.generate_state(n) >> 1).astype(np.int64)


# The chunks an additive agent is fitted in when the experiment does not say.
DEFAULT_CHUNKS = 10


# ---------------------------------------------------------------------------------------------- from a study
def fit_task(study: Study, experiment: str, instance: int) -> FitTask:
    spec = study.experiment(experiment)
    return FitTask(
        **_agent_fields(study, experiment, instance),
        fit_budget=spec["fit_budget"],
        fit_kwargs=spec["fit_kwargs"],
        n_checkpoints=checkpoint_chunks(spec.get("n_checkpoints"), import_object(spec["agent"])),
        writer_kwargs=spec["writer"],
    )


def checkpoint_chunks(n_checkpoints: int | None, agent_class: type) -> int:
    """How many chunks a fit is split into: as the experiment says, else :data:`DEFAULT_CHUNKS` for an agent
    whose fit is additive and one call for any other (chunks would change its training)."""
    if n_checkpoints is not None:
        return n_checkpoints
    return DEFAULT_CHUNKS if fits_additively(agent_class) else 1


def eval_task(study: Study, experiment: str, instance: int) -> EvalTask:
    return EvalTask(**_agent_fields(study, experiment, instance), eval_kwargs=study.experiment(experiment)["eval_kwargs"])


def aggregate_task(study: Study, experiment: str) -> AggregateTask:
    spec = study.experiment(experiment)
    return AggregateTask(
        experiment=experiment,
        root_seed=_root(study),
        agent=spec["agent"],
        env=describe_env(spec.get("eval_env", spec.get("train_env"))),
        fit_budget=spec["fit_budget"],
        learning_curve=spec["learning_curve"],
        report=study.report,
        instances=list(range(spec["n_fit"])),
    )


def optimize_task(study: Study, experiment: str) -> OptimizeTask:
    """The task of an experiment's ``optimize`` section (a ConfigError if it has none)."""
    spec = study.experiment(experiment)
    if "optimize" not in spec:
        raise ConfigError(f"experiment '{experiment}' has no 'optimize' section: add one to tune it")
    settings = dict(spec["optimize"])
    return OptimizeTask(
        experiment=experiment,
        root_seed=_root(study),
        agent=spec["agent"],
        train_env=spec.get("train_env"),
        eval_env=spec.get("eval_env", spec.get("train_env")),
        init_kwargs=untuned_init_kwargs(spec["init_kwargs"], import_object(spec["agent"]), settings.get("search_space")),
        init_kwargs_per_instance=spec.get("init_kwargs_per_instance"),
        fit_budget=spec["fit_budget"],
        fit_kwargs=spec["fit_kwargs"],
        eval_kwargs=spec["eval_kwargs"],
        allow_pickle=spec["allow_pickle"],
        settings={k: settings.get(k) for k in STUDY_SETTINGS},
        **{k: settings[k] for k in RUN_SETTINGS},
    )


def untuned_init_kwargs(init_kwargs: dict[str, Any], agent_class: type, search_space: dict[str, Any] | None) -> dict[str, Any]:
    """The init kwargs a study shares: those it does not tune (so writing tuned values back changes nothing)."""
    from rlpipe.spec.search_space import tuned_keys

    tuned = set(tuned_keys(agent_class, search_space))
    return {key: value for key, value in init_kwargs.items() if key not in tuned}


def instance_init_kwargs(spec: dict[str, Any], instance: int) -> dict[str, Any]:
    """``init_kwargs`` with the instance's entry of ``init_kwargs_per_instance`` merged over it."""
    per_instance = spec.get("init_kwargs_per_instance") or [{}] * spec["n_fit"]
    return {**spec["init_kwargs"], **per_instance[instance]}


def _root(study: Study) -> dict[str, Any]:
    return seed_record(np.random.SeedSequence(study.seed))


def _agent_fields(study: Study, experiment: str, instance: int) -> dict[str, Any]:
    spec = study.experiment(experiment)
    if not 0 <= instance < spec["n_fit"]:
        raise IndexError(f"experiment '{experiment}' has instances 0..{spec['n_fit'] - 1}, not {instance}")
    return {
        "experiment": experiment,
        "root_seed": _root(study),
        "instance": instance,
        "agent": spec["agent"],
        "train_env": spec.get("train_env"),
        "eval_env": spec.get("eval_env", spec.get("train_env")),
        "init_kwargs": instance_init_kwargs(spec, instance),
        "allow_pickle": spec["allow_pickle"],
    }
