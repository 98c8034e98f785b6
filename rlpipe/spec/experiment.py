"""The experiment spec: one validated, immutable description of an experiment, built in one place.

A config entry (``experiments.<name>`` of a YAML file) and the arguments of ``ExperimentManager`` both
become an :class:`ExperimentSpec` through :func:`experiment_spec`, which checks them the same way (the
schema, then what the schema cannot say: the agent class and the keywords it accepts, the envs, what
the experiment asks of the agent, the optimize section) and reports every problem at once, one line
per problem naming the key. The experiments a config's sweeps expand into (``rlpipe.spec.sweeps``) are checked
the same way. The Python API may put classes and callables where a config has import
paths. Every task of both drivers is built from a spec (``rlpipe.core.tasks``), and a spec converts
back to a config entry with :meth:`ExperimentSpec.to_config`.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlpipe.agents import capabilities
from rlpipe.agents.base import Agent
from rlpipe.errors import ConfigError, EnvSpecError
from rlpipe.io.imports import import_object, importable_path, object_path
from rlpipe.runtime.envs import check_env_spec, describe_env, env_to_config, is_no_env
from rlpipe.runtime.keywords import rejected_keywords
from rlpipe.spec.adastop import AdastopSpec, adastop_specs
from rlpipe.spec.init_kwargs import RESERVED_INIT_KWARGS, unaccepted_init_kwargs
from rlpipe.spec.metrics import algorithm_name, metrics_problems
from rlpipe.spec.optimize import optimize_problems, sampler_kwargs_problems
from rlpipe.spec.schema import check_schema, under
from rlpipe.spec.sweeps import SweepPoint, expand_sweeps

_PLACEHOLDER_ENV = "python-object"  # what the schema sees in place of an env given as a Python object


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment: an agent × environment × settings, fitted ``n_fit`` times. Every default is filled in.

    ``agent`` is the class itself; ``train_env``/``eval_env`` are env specs as given (a gymnasium id, a
    mapping, an rlberry ``(constructor, kwargs)`` tuple, an env instance, or None for no env).
    """

    name: str
    agent: type[Agent]
    fit_budget: int
    train_env: Any = None
    eval_env: Any = None
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    init_kwargs_per_instance: tuple[dict[str, Any], ...] | None = None
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_kwargs: dict[str, Any] = field(default_factory=dict)
    n_fit: int = 4
    n_checkpoints: int | None = None
    writer: dict[str, Any] = field(default_factory=dict)
    learning_curve: dict[str, Any] = field(default_factory=dict)
    allow_pickle: bool = False
    optimize: dict[str, Any] | None = None
    instances_per_job: int | str = "auto"
    resources: dict[str, Any] = field(default_factory=dict)
    algorithm: str | None = None  # its name in the metrics across environments (None: derived, see Study.algorithm)

    @property
    def agent_path(self) -> str:
        """The agent's import path, the same whichever driver built the spec."""
        return object_path(self.agent)

    @property
    def evaluation_env(self) -> Any:
        """The env the instances are evaluated on: ``eval_env``, else ``train_env``."""
        return self.train_env if self.eval_env is None else self.eval_env

    def instance_init_kwargs(self, instance: int) -> dict[str, Any]:
        """``init_kwargs`` with instance ``instance``'s entry of ``init_kwargs_per_instance`` merged over it."""
        own = self.init_kwargs_per_instance[instance] if self.init_kwargs_per_instance else {}
        return {**self.init_kwargs, **own}

    def to_config(self) -> dict[str, Any]:
        """The spec as a config entry: classes and functions by import path (a ConfigError names what has none)."""
        entry: dict[str, Any] = {"agent": _importable(self.agent, "agent")}
        if not is_no_env(self.train_env):
            entry["train_env"] = env_to_config(self.train_env, "train_env")
        if self.eval_env is not None:
            entry["eval_env"] = env_to_config(self.eval_env, "eval_env")
        entry.update(init_kwargs=self.init_kwargs, fit_budget=self.fit_budget, fit_kwargs=self.fit_kwargs,
                     eval_kwargs=self.eval_kwargs, n_fit=self.n_fit, writer=self.writer,
                     learning_curve=self.learning_curve, allow_pickle=self.allow_pickle,
                     instances_per_job=self.instances_per_job, resources=self.resources)
        if self.init_kwargs_per_instance is not None:
            entry["init_kwargs_per_instance"] = list(self.init_kwargs_per_instance)
        if self.n_checkpoints is not None:
            entry["n_checkpoints"] = self.n_checkpoints
        if self.optimize is not None:
            entry["optimize"] = self.optimize
        if self.algorithm is not None:
            entry["algorithm"] = self.algorithm
        return copy.deepcopy(entry)


@dataclass(frozen=True)
class Study:
    """A validated config: the root seed, report settings, and its experiments' specs: those written out, then those
    of its sweeps, whose points are in ``sweep_points`` by experiment name (what ``rlpipe validate`` shows; no task
    holds them, so an experiment of a sweep computes what the same experiment written out does)."""

    seed: int
    report: dict[str, Any]
    experiments: dict[str, ExperimentSpec]
    sweep_points: dict[str, SweepPoint] = field(default_factory=dict)
    adastop: dict[str, AdastopSpec] = field(default_factory=dict)  # the AdaStop comparisons, by name
    metrics: dict[str, Any] | None = None  # the metrics section (defaults filled in), None without one

    @property
    def root(self) -> np.random.SeedSequence:
        """The root of every seed of the study."""
        return np.random.SeedSequence(self.seed)

    def experiment(self, name: str) -> ExperimentSpec:
        try:
            return self.experiments[name]
        except KeyError:
            raise ConfigError(f"no experiment named '{name}' (experiments: {', '.join(self.experiments)})") from None

    def algorithm(self, name: str) -> str:
        """The experiment's algorithm in the metrics across environments (``rlpipe.spec.metrics.algorithm_name``)."""
        spec = self.experiment(name)
        return algorithm_name(name, spec.agent, spec.algorithm, self.sweep_points.get(name))


def validate_study(config: Mapping[str, Any], *, tuning: bool = False, source: str | None = None) -> Study:
    """Validate a config (not modified) and return its :class:`Study`, defaults filled in.

    Raises :class:`ConfigError` listing every problem, one line each naming its key (``experiments.<name>.<key>``,
    ``sweeps.<sweep>.<key>``, or ``sweeps.<sweep> (<name>).<key>`` for one experiment of a sweep), under "invalid
    config (``source``)". The keywords of Optuna samplers are only checked with ``tuning``
    (``rlpipe validate``; the Snakefile checks them with :func:`check_tuning` when it plans optimize jobs), so
    that validating a config (in every job of a cluster run) does not import Optuna.
    """
    filled = copy.deepcopy(dict(config))
    _merge_study_resources(filled)
    experiments = filled.get("experiments")
    entries = experiments if isinstance(experiments, dict) else {}
    # Each optimize section is checked by optimize_problems, as ExperimentManager.optimize_hyperparams checks its own.
    sections = {name: entry.pop("optimize") for name, entry in entries.items()
                if isinstance(entry, dict) and isinstance(entry.get("optimize"), dict)}
    check = check_schema(filled)
    rejected = check.rejected_experiments
    problems = list(check.problems)
    specs: dict[str, ExperimentSpec] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict):
            continue
        bad = {str(path[2]) for path in check.rejected if path[:2] == ("experiments", name) and len(path) > 2}
        spec, lines = _checked_spec(name, entry, sections.get(name), bad if name in rejected else None)
        problems += under(f"experiments.{name}", lines)
        if spec is not None:
            specs[name] = spec
    expansion = expand_sweeps(filled.get("sweeps"), check.rejected, entries)
    problems += expansion.problems
    for name, entry in expansion.entries.items():
        spec, lines = _checked_spec(name, entry, None)
        problems += under(f"sweeps.{expansion.points[name].sweep} ({name})", lines)
        if spec is not None:
            specs[name] = spec
    comparisons, adastop_lines = adastop_specs(filled.get("adastop"), specs, [*entries, *expansion.points], check.rejected)
    problems += adastop_lines
    problems += _metrics_lines(filled, specs, expansion.points, check.rejected)
    if tuning:
        problems += _tuning_lines(specs.values())
    if problems:
        # A float YAML read as a string in a sweep is found by the config's check and by its key's: listed once.
        raise ConfigError.listing(_invalid_config(source), list(dict.fromkeys(problems)))
    return Study(seed=filled["seed"], report=filled["report"], experiments=specs, sweep_points=expansion.points,
                 adastop=comparisons, metrics=filled.get("metrics"))


def check_tuning(study: Study, experiments: Sequence[str] | None = None, *, source: str | None = None) -> None:
    """What :func:`validate_study` leaves out unless ``tuning``, because checking it imports Optuna: the
    ``sampler_kwargs`` of every experiment (or of ``experiments``) with an ``optimize`` section. Raises
    :class:`ConfigError` as :func:`validate_study` does."""
    problems = _tuning_lines(spec for name, spec in study.experiments.items() if experiments is None or name in experiments)
    if problems:
        raise ConfigError.listing(_invalid_config(source), problems)


def experiment_spec(name: str, entry: Mapping[str, Any]) -> ExperimentSpec:
    """The spec of one experiment from a config entry or from the Python API's values (classes and callables
    allowed where a config has import paths); ``entry`` is not modified. Raises :class:`ConfigError` listing
    every problem, one line each, under "invalid experiment '<name>'"."""
    view = _schema_view(entry)
    section = view.pop("optimize") if isinstance(view.get("optimize"), dict) else None
    check = check_schema(view, "experiment")
    filled = {**view, **({"agent": entry["agent"]} if "agent" in entry else {})}
    for key in ("train_env", "eval_env"):  # the schema saw a placeholder for an env given as a Python object
        if key in entry and not _is_config_env(entry[key]):
            filled[key] = entry[key]
    bad = {str(path[0]) for path in check.rejected if path} if check.rejected else None
    spec, lines = _checked_spec(name, filled, section, bad)
    if spec is not None and not check.problems:
        return spec
    raise ConfigError.listing(f"invalid experiment '{name}'", check.problems + lines)


def agent_capability_problems(agent_class: type, eval_kwargs: Mapping[str, Any], has_env: bool,
                              allow_pickle: bool) -> list[str]:
    """What the experiment asks of its agent that the agent cannot do, found before any job runs.

    Problems are prefixed with the experiment key they concern (``eval_kwargs``, ``allow_pickle``...).
    """
    name = agent_class.__name__
    problems = []
    if not capabilities.is_evaluable(agent_class):
        problems.append(f"agent: {name} defines neither eval nor policy, so its instances cannot be evaluated")
    elif capabilities.rolls_out_policy(agent_class) and not has_env:
        problems.append(f"train_env: {name} is evaluated by rolling out its policy, which needs an environment "
                        "(set train_env or eval_env, or give the agent an eval of its own)")
    accepted = capabilities.valid_eval_keywords(agent_class)
    owner = f"{name}.eval" if not capabilities.rolls_out_policy(agent_class) else f"the policy rollout of {name}"
    problems += [f"eval_kwargs: {p}" for p in rejected_keywords(owner, eval_kwargs, accepted)]
    if not capabilities.has_array_state(agent_class) and not allow_pickle:
        problems.append(f"allow_pickle: {name} has no get_state/set_state, so its checkpoints are pickles, which are "
                        "only read when you trust them: set allow_pickle: true for this experiment")
    return problems


# ---------------------------------------------------------------------------------------------- checks
def _checked_spec(name: str, entry: dict[str, Any], section: dict[str, Any] | None,
                  rejected_keys: set[str] | None = None) -> tuple[ExperimentSpec | None, list[str]]:
    """The spec of an entry (its ``optimize`` section apart) and the problems the schema cannot see.

    ``rejected_keys``: when the schema rejected the entry, the keys it rejected (maybe none: an unknown or a
    missing key is the entry's error). The keys it accepted are still checked, so that one pass lists every problem
    of the experiment; there is no spec then.
    """
    if rejected_keys is not None:
        usable = {key: value for key, value in entry.items() if key not in rejected_keys}
        return None, _semantic_problems(usable, section)[1]
    agent_class, problems = _semantic_problems(entry, section)
    if problems:
        return None, problems
    per_instance, n_fit = entry.get("init_kwargs_per_instance"), entry["n_fit"]
    return ExperimentSpec(
        name=name, agent=agent_class, fit_budget=entry["fit_budget"], train_env=entry.get("train_env"),
        eval_env=entry.get("eval_env"), init_kwargs=dict(entry["init_kwargs"]),
        init_kwargs_per_instance=None if per_instance is None else tuple(dict(kw) for kw in per_instance),
        fit_kwargs=dict(entry["fit_kwargs"]), eval_kwargs=dict(entry["eval_kwargs"]), n_fit=n_fit,
        n_checkpoints=entry.get("n_checkpoints"), writer=dict(entry["writer"]),
        learning_curve=dict(entry["learning_curve"]), allow_pickle=entry["allow_pickle"],
        optimize=None if section is None else dict(section), instances_per_job=entry["instances_per_job"],
        resources=dict(entry["resources"]), algorithm=entry.get("algorithm"),
    ), []


def _semantic_problems(entry: Mapping[str, Any], section: dict[str, Any] | None) -> tuple[type[Agent] | None, list[str]]:
    """The agent class (None if it cannot be imported) and what is wrong with the entry beyond its schema. A check is
    made only if the keys it reads are in ``entry`` (a rejected key is left out of it)."""
    problems: list[str] = []
    per_instance = entry.get("init_kwargs_per_instance")
    if per_instance is not None and "n_fit" in entry and len(per_instance) != entry["n_fit"]:
        problems.append(f"init_kwargs_per_instance: has {len(per_instance)} entries but n_fit is {entry['n_fit']}")
    all_kwargs = [("init_kwargs", entry["init_kwargs"])] if "init_kwargs" in entry else []
    all_kwargs += [(f"init_kwargs_per_instance[{i}]", kw) for i, kw in enumerate(per_instance or [])]
    for where, kwargs in all_kwargs:
        problems += [f"{where}.{key}: is set by rlpipe for each instance (use train_env/eval_env/seed instead)"
                     for key in kwargs if key in RESERVED_INIT_KWARGS]
    agent_class, problem = _agent_class(entry["agent"]) if "agent" in entry else (None, None)
    if problem:
        problems.append(f"agent: {problem}")
    elif agent_class is not None:
        for where, kwargs in all_kwargs:
            problems += [f"{where}: {p}" for p in unaccepted_init_kwargs(agent_class, kwargs)]
        if {"eval_kwargs", "allow_pickle"} <= entry.keys():
            has_env = not (is_no_env(entry.get("train_env")) and is_no_env(entry.get("eval_env")))
            problems += agent_capability_problems(agent_class, entry["eval_kwargs"], has_env, entry["allow_pickle"])
    if section is not None:
        problems += under("optimize", optimize_problems(section, agent_class, per_instance, check_sampler_kwargs=False))
    for key in ("train_env", "eval_env"):
        try:
            check_env_spec(entry.get(key))
        except EnvSpecError as error:
            problems.append(f"{key}: {error}")
    return agent_class, problems


def _merge_study_resources(config: dict[str, Any]) -> None:
    """Put the study's ``resources`` under each experiment's and each sweep's own (theirs win key by key), in place.
    Study resources the schema rejects are left where they are, reported once under ``resources``."""
    study = config.get("resources")
    if not isinstance(study, dict) or check_schema(copy.deepcopy(study), "experiment/properties/resources").rejected:
        return
    for section in (config.get("experiments"), config.get("sweeps")):
        for entry in section.values() if isinstance(section, dict) else ():
            if isinstance(entry, dict) and isinstance(entry.get("resources", {}), dict):
                entry["resources"] = {**study, **entry.get("resources", {})}


def _metrics_lines(config: Mapping[str, Any], specs: Mapping[str, ExperimentSpec], points: Mapping[str, SweepPoint],
                   rejected: Iterable[tuple]) -> list[str]:
    """The problems of the config's metrics section that the schema cannot see, if it has one the schema accepts."""
    section = config.get("metrics")
    if section is None or any(path[:1] == ("metrics",) for path in rejected):
        return []
    return metrics_problems(section, {name: (algorithm_name(name, spec.agent, spec.algorithm, points.get(name)),
                                             describe_env(spec.evaluation_env)) for name, spec in specs.items()})


def _tuning_lines(specs: Iterable[ExperimentSpec]) -> list[str]:
    return [line for spec in specs if spec.optimize is not None for line in under(
        f"experiments.{spec.name}.optimize", sampler_kwargs_problems(spec.optimize["sampler_method"],
                                                                     spec.optimize["sampler_kwargs"]))]


def _invalid_config(source: str | None) -> str:
    return f"invalid config ({source})" if source else "invalid config"


def _schema_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``entry`` that the JSON schema can read (and fill defaults into): a class named by its import
    path, an env given as a Python object (a tuple with a callable, an env instance) by a placeholder the semantic
    checks look past."""
    view = {key: value for key, value in entry.items() if key != "agent" and not (
        key in ("train_env", "eval_env") and not _is_config_env(value))}
    view = copy.deepcopy(view)
    if "agent" in entry:
        agent = entry["agent"]
        view["agent"] = object_path(agent) if inspect.isclass(agent) else agent
    for key in ("train_env", "eval_env"):
        if key in entry and key not in view:
            view[key] = None if is_no_env(entry[key]) else _PLACEHOLDER_ENV
    if isinstance(view.get("init_kwargs_per_instance"), tuple):
        view["init_kwargs_per_instance"] = list(view["init_kwargs_per_instance"])
    return view


def _is_config_env(env: Any) -> bool:
    """An env spec a config can hold (None, an id, a mapping), validated by the schema as it is."""
    return env is None or (isinstance(env, (str, dict)) and not isinstance(env, gym.Env))


def _agent_class(agent: Any) -> tuple[type | None, str | None]:
    """The agent class of an import path or a class, or why there is none."""
    named = agent
    if isinstance(agent, str):
        try:
            agent = import_object(agent)
        except ImportError as error:
            return None, str(error)
        named = f"'{named}'"
    if not (inspect.isclass(agent) and issubclass(agent, Agent)):
        return None, f"{named!s} is not a subclass of rlpipe.agents.Agent"
    return agent, None


def _importable(obj: Any, what: str) -> str:
    path = importable_path(obj)
    if path is None:
        raise ConfigError(f"{what} {obj!r} cannot be named in a config: define it at the top level of an importable module")
    return path
