"""Tasks: everything one job needs, resolved from the study, and nothing else.

A Snakemake rule passes its task as a JSON param, so Snakemake's params trigger reruns a job exactly
when something that job depends on changes (eval_kwargs do not touch fit tasks; n_fit is in no
instance task, so raising it leaves existing instances alone). ExperimentManager builds the same
tasks from its arguments, and may put classes and callables where the config has import paths.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rlpipe.config import Study
from rlpipe.envs import describe_env
from rlpipe.provenance import canonical_json, stable_hash
from rlpipe.seeding import Stream, experiment_stream, seed_from_record, seed_record


@dataclass(frozen=True)
class _Task:
    experiment: str
    root_seed: dict[str, Any]  # seed_record of the study's root SeedSequence

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "_Task":
        return cls(**json.loads(text))

    def task_hash(self) -> str:
        return stable_hash(asdict(self))

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
        """Reset seed of each evaluation episode; a prefix is stable when n_simulations grows."""
        words = self.stream(Stream.EVAL, self.instance).generate_state(self.eval_kwargs["n_simulations"])
        return (words >> 1).astype(np.int64)


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


# ---------------------------------------------------------------------------------------------- from a study
def fit_task(study: Study, experiment: str, instance: int) -> FitTask:
    spec = study.experiment(experiment)
    return FitTask(
        **_agent_fields(study, experiment, instance),
        fit_budget=spec["fit_budget"],
        fit_kwargs=spec["fit_kwargs"],
        n_checkpoints=spec["n_checkpoints"],
        writer_kwargs=spec["writer"],
    )


def eval_task(study: Study, experiment: str, instance: int) -> EvalTask:
    return EvalTask(**_agent_fields(study, experiment, instance), eval_kwargs=study.experiment(experiment)["eval_kwargs"])


def aggregate_task(study: Study, experiment: str) -> AggregateTask:
    spec = study.experiment(experiment)
    return AggregateTask(
        experiment=experiment,
        root_seed=_root(study),
        agent=spec["agent"],
        env=describe_env(spec.get("eval_env", spec["train_env"])),
        fit_budget=spec["fit_budget"],
        learning_curve=spec["learning_curve"],
        report=study.report,
        instances=list(range(spec["n_fit"])),
    )


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
        "train_env": spec["train_env"],
        "eval_env": spec.get("eval_env", spec["train_env"]),
        "init_kwargs": instance_init_kwargs(spec, instance),
        "allow_pickle": spec["allow_pickle"],
    }
