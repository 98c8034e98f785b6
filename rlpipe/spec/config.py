"""Load and validate a study config: JSON schema (defaults filled in), then checks the schema cannot express.

Both drivers use :func:`validate_study`, so a bad config fails the same way before any job starts,
with one message per problem naming the experiment and the key.
"""
from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rlpipe.errors import ConfigError, EnvSpecError
from rlpipe.io.imports import import_object
from rlpipe.runtime.envs import check_env_spec
from rlpipe.runtime.keywords import accepted_keywords, rejected_keywords, suggestion
from rlpipe.spec.optimize import settings_problems

# Set by rlpipe for every instance; a config must not set them in init_kwargs.
RESERVED_INIT_KWARGS = ("env", "eval_env", "copy_env", "seeder", "output_dir")
_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


@dataclass(frozen=True)
class Study:
    """A validated config: the root seed, report settings, and experiments with every default filled in."""

    seed: int
    report: dict[str, Any]
    experiments: dict[str, dict[str, Any]]

    def experiment(self, name: str) -> dict[str, Any]:
        try:
            return self.experiments[name]
        except KeyError:
            raise ConfigError(f"no experiment named '{name}' (experiments: {', '.join(self.experiments)})") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file, reporting syntax errors with their line."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping with an 'experiments' key")
    return data


def validate_study(config: Mapping[str, Any]) -> Study:
    """Validate ``config`` (not modified) and return the :class:`Study` with defaults filled in.

    Beyond the schema, each agent class is imported and each env spec resolved, so that a typo fails
    here rather than in a job. Raises :class:`ConfigError` listing every problem found.
    """
    filled = copy.deepcopy(dict(config))
    errors = sorted(_validator().iter_errors(filled), key=_error_sort_key)
    problems = [_format_schema_error(e) for e in errors]
    experiments = filled.get("experiments")
    if isinstance(experiments, dict):
        invalid = {str(e.absolute_path[1]) for e in errors if len(e.absolute_path) > 1 and e.absolute_path[0] == "experiments"}
        for name, experiment in experiments.items():
            if name not in invalid and isinstance(experiment, dict):
                problems += [f"experiments.{name}.{p}" for p in _check_experiment(experiment)]
    if problems:
        raise ConfigError("\n".join(problems))
    return Study(seed=filled["seed"], report=filled["report"], experiments=filled["experiments"])


def optimize_section_problems(section: dict[str, Any], agent_class: type,
                              init_kwargs_per_instance: list[dict[str, Any]] | None) -> list[str]:
    """Problems of an ``optimize`` section on its own (the Python API's arguments): schema, then semantics.
    ``section`` gets its defaults filled in."""
    schema = {"$ref": "#/$defs/experiment/properties/optimize", "$defs": _schema()["$defs"]}
    errors = sorted(_validator_class()(schema).iter_errors(section), key=_error_sort_key)
    if errors:
        return [_format_schema_error(e) for e in errors]
    return settings_problems(section, agent_class, init_kwargs_per_instance, RESERVED_INIT_KWARGS)


def config_schema() -> dict[str, Any]:
    """The whole config schema (ExperimentManager takes its defaults from it)."""
    return _schema()


def experiment_schema() -> dict[str, Any]:
    """The schema of one experiment entry."""
    return _schema()["$defs"]["experiment"]


# ---------------------------------------------------------------------------------------------- schema
@cache
def _schema() -> dict[str, Any]:
    text = resources.files("rlpipe.spec").joinpath("config.schema.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def _validator_class() -> type:
    """A Draft 2020-12 validator that fills in ``default`` values while it validates."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Iterator[Any]:
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema and key not in instance:
                    instance[key] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    # JSON Schema counts 2.0 as an integer; a budget or a count of 2.0 would break range() later.
    strict_integers = base.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(base, {"properties": properties_with_defaults}, type_checker=strict_integers)


def _validator() -> Any:
    return _validator_class()(_schema())


def _error_sort_key(error: Any) -> tuple:
    return tuple(str(p) for p in error.absolute_path), error.message


def _format_schema_error(error: Any) -> str:
    """One line: the dotted key path, then what is wrong with it."""
    from jsonschema.exceptions import best_match

    if error.context:  # anyOf: report the branch meant for this kind of value (a mapping, a string…)
        same_kind = [e for e in error.context if e.validator != "type"] or list(error.context)
        error = best_match(same_kind)
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        return "\n".join(f"{where}: unknown key '{key}'{suggestion(key, allowed)}" for key in unknown)
    if error.validator == "required":
        missing = re.search(r"'(.+?)' is a required property", error.message)
        return f"{where}: missing required key '{missing.group(1) if missing else error.message}'"
    if "propertyNames" in error.relative_schema_path:
        return f"{where}: '{error.instance}' is not a valid name (use letters, digits, '_', '-', '.')"
    return f"{where}: {error.message}"


# ---------------------------------------------------------------------------------------------- semantics
def _check_experiment(experiment: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    n_fit = experiment["n_fit"]
    per_instance = experiment.get("init_kwargs_per_instance")
    if per_instance is not None and len(per_instance) != n_fit:
        problems.append(f"init_kwargs_per_instance: has {len(per_instance)} entries but n_fit is {n_fit}")
    all_kwargs = [("init_kwargs", experiment["init_kwargs"])]
    all_kwargs += [(f"init_kwargs_per_instance[{i}]", kw) for i, kw in enumerate(per_instance or [])]
    for where, kwargs in all_kwargs:
        problems += [f"{where}.{p}" for p in _check_init_kwargs_values(kwargs)]
    agent_class, problem = _import_agent_class(experiment["agent"])
    if problem:
        problems.append(f"agent: {problem}")
    else:
        for where, kwargs in all_kwargs:
            problems += [f"{where}: {p}" for p in _check_accepted_kwargs(agent_class, kwargs)]
        has_env = experiment.get("train_env") is not None or experiment.get("eval_env") is not None
        problems += agent_capability_problems(agent_class, experiment["eval_kwargs"], has_env,
                                              experiment["allow_pickle"])
        if "optimize" in experiment:
            problems += [f"optimize.{p}" for p in settings_problems(experiment["optimize"], agent_class, per_instance,
                                                                    RESERVED_INIT_KWARGS)]
            for name, dimension in (experiment["optimize"].get("search_space") or {}).items():
                choices = {f"choices[{i}]": choice for i, choice in enumerate(dimension.get("choices", []))}
                problems += [f"optimize.search_space.{name}.{p}" for p in _check_init_kwargs_values(choices)]
    for key in ("train_env", "eval_env"):
        if key in experiment:
            try:
                check_env_spec(experiment[key])
            except EnvSpecError as error:
                problems.append(f"{key}: {error}")
    return problems


def agent_capability_problems(agent_class: type, eval_kwargs: Mapping[str, Any], has_env: bool,
                              allow_pickle: bool) -> list[str]:
    """What the experiment asks of its agent that the agent cannot do, found before any job runs.

    Problems are prefixed with the experiment key they concern (``eval_kwargs``, ``allow_pickle``...).
    """
    from rlpipe.agents import capabilities

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


def _import_agent_class(path: str) -> tuple[type | None, str | None]:
    from rlpipe.agents.base import Agent

    try:
        agent_class = import_object(path)
    except ImportError as error:
        return None, str(error)
    if not (inspect.isclass(agent_class) and issubclass(agent_class, Agent)):
        return None, f"'{path}' is not a subclass of rlpipe.agents.Agent"
    return agent_class, None


def _check_init_kwargs_values(kwargs: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, value in kwargs.items():
        if key in RESERVED_INIT_KWARGS:
            problems.append(f"{key}: is set by rlpipe for each instance (use train_env/eval_env/seed instead)")
        elif isinstance(value, str) and _SCIENTIFIC.match(value):
            problems.append(
                f"{key}: '{value}' was read as a string (YAML 1.1 floats need a dot and a signed exponent: "
                f"write {yaml11_float_text(value)})"
            )
    return problems


def yaml11_float_text(text: str) -> str:
    """A decimal number ``text`` spelt so that YAML 1.1 (PyYAML, Snakemake) reads a float: a dot in the
    mantissa and a signed exponent, e.g. '5e4' -> '5.0e+4', '1e-05' -> '1.0e-05', '0.5' unchanged."""
    mantissa, e, exponent = text.lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if e and exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}{e}{exponent}"


def _check_accepted_kwargs(agent_class: type, kwargs: Mapping[str, Any]) -> list[str]:
    return rejected_keywords(agent_class.__name__, kwargs, accepted_keywords(agent_class))
