"""What an experiment's ``optimize`` section may say, checked before any trial runs.

Both drivers check a section with :func:`optimize_problems` (config validation, ``ExperimentManager.
optimize_hyperparams``), so a bad setting fails at once instead of in every trial, with the same lines.
Checking ``sampler_kwargs`` against the sampler's signature needs Optuna, so config validation leaves it to
:func:`sampler_kwargs_problems`, run where Optuna is used.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlpipe.agents.base import Agent
from rlpipe.runtime.keywords import accepted_keywords, rejected_keywords
from rlpipe.spec.init_kwargs import RESERVED_INIT_KWARGS, unaccepted_init_kwargs
from rlpipe.spec.schema import check_schema
from rlpipe.spec.search_space import (
    check_dimension,
    defines_sample_parameters,
    grid_problems,
    suggested_names,
    tuned_keys,
)

SAMPLER_CLASSES = {"optuna_default": "TPESampler", "random": "RandomSampler", "grid": "GridSampler", "cmaes": "CmaEsSampler"}
PRUNER_METHODS = ("halving", "median", "none")
OPTIMIZE_DEFINITION = "experiment/properties/optimize"  # the section's place in the schema


def optimize_problems(section: dict[str, Any], agent_class: type[Agent] | None,
                      init_kwargs_per_instance: Sequence[Mapping[str, Any]] | None, *,
                      check_sampler_kwargs: bool) -> list[str]:
    """Every problem of an ``optimize`` section, as ``<key>: <problem>`` lines, its defaults filled in: the schema's;
    then, if the schema accepts it, a confirmation that could never pass (:func:`confirm_problems`); if the agent
    class is known too (None: it is not), its settings'; then, with
    ``check_sampler_kwargs`` (which imports Optuna), the sampler's keywords."""
    check = check_schema(section, OPTIMIZE_DEFINITION)
    if check.rejected:
        return check.problems
    problems = check.problems + confirm_problems(section["confirm"])
    if agent_class is None:
        return problems
    problems += settings_problems(section, agent_class, init_kwargs_per_instance)
    if check_sampler_kwargs:
        problems += sampler_kwargs_problems(section["sampler_method"], section["sampler_kwargs"])
    return problems


def smallest_confirmation_pvalue(n_fit: int) -> float:
    """The smallest p-value the confirmation's paired sign-flip test can give on ``n_fit`` seeds: ``2**-n_fit``, or
    1/(2**16 + 1) beyond 16 seeds (Monte-Carlo). The same as ``rlpipe.core.paired_tests.smallest_sign_flip_pvalue``
    (a test keeps them equal); written here because validation sits below the statistics."""
    return 0.5**n_fit if n_fit <= 16 else 1.0 / (2**16 + 1)


def confirm_problems(confirm: Mapping[str, Any]) -> list[str]:
    """A confirmation that could never let a candidate through: even with every paired difference positive, the
    test's p-value stays above ``alpha / top_k`` (the Bonferroni level when ``top_k`` trials are confirmed)."""
    if not confirm["enabled"]:
        return []
    n_fit, top_k, alpha = confirm["n_fit"], confirm["top_k"], confirm["alpha"]
    if smallest_confirmation_pvalue(n_fit) <= alpha / top_k:
        return []
    needed = next((n for n in range(1, 18) if smallest_confirmation_pvalue(n) <= alpha / top_k), None)
    remedy = (f"use n_fit >= {needed} (or a larger alpha, a smaller top_k)" if needed is not None
              else "no n_fit can reach it: use a larger alpha or a smaller top_k")
    return [f"confirm.n_fit: {n_fit} seeds are too few for the confirmation ever to pass: its paired test cannot give "
            f"a p-value below {smallest_confirmation_pvalue(n_fit):.3g}, above alpha / top_k = {alpha}/{top_k} = "
            f"{alpha / top_k:.3g}, so nothing would ever be written back; {remedy}"]


def sampler_problems(method: str, sampler_kwargs: Mapping[str, Any], search_space: Mapping[str, Any] | None) -> list[str]:
    """What is wrong with a sampler's settings (``method`` is one the schema allows), checked before any trial runs."""
    problems = []
    if "seed" in sampler_kwargs:
        problems.append("sampler_kwargs.seed: the sampler is seeded by rlpipe from the study's seed (set `seed` instead)")
    explicit_grid = method == "grid" and "search_space" in sampler_kwargs
    if method == "grid" and not explicit_grid:
        problems += grid_problems(search_space)
    if explicit_grid:
        grid = sampler_kwargs["search_space"]
        if not isinstance(grid, Mapping) or not grid:
            problems.append("sampler_kwargs.search_space: must map each suggested parameter to a list of values")
        else:
            problems += [f"sampler_kwargs.search_space.{name}: must be a non-empty list of values, got {values!r}"
                         for name, values in grid.items() if not isinstance(values, (list, tuple)) or not values]
    return problems


def sampler_kwargs_problems(method: str, sampler_kwargs: Mapping[str, Any]) -> list[str]:
    """``sampler_kwargs`` the Optuna sampler of ``method`` (one the schema allows) does not accept. It imports Optuna,
    so config validation leaves it to the optimize target, ``rlpipe validate`` and ``optimize_hyperparams`` (a plain
    run never loads Optuna)."""
    explicit_grid = method == "grid" and "search_space" in sampler_kwargs
    others = [key for key in sampler_kwargs if key != "seed" and not (explicit_grid and key == "search_space")]
    if not others:
        return []
    import optuna

    sampler = getattr(optuna.samplers, SAMPLER_CLASSES[method])
    return [f"sampler_kwargs: {p}" for p in rejected_keywords(sampler.__name__, others, accepted_keywords(sampler))]


def settings_problems(settings: Mapping[str, Any], agent_class: type[Agent],
                      init_kwargs_per_instance: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """What is wrong with an experiment's optimize settings, as ``<key>: <problem>`` lines (the schema
    has already checked types and ranges)."""
    search_space = settings.get("search_space")
    problems = []
    if search_space:
        for name, dimension in search_space.items():
            problems += [f"search_space.{name}: {p}" for p in check_dimension(dimension)]
            if name in RESERVED_INIT_KWARGS:
                problems.append(f"search_space.{name}: is set by rlpipe for each instance and cannot be tuned")
        problems += [f"search_space: {p}" for p in unaccepted_init_kwargs(agent_class, search_space)]
    elif not defines_sample_parameters(agent_class):
        problems.append(f"search_space: missing, and {agent_class.__name__} does not define sample_parameters(trial); "
                        "give the parameters to tune here")
        return problems + sampler_problems(settings["sampler_method"], settings["sampler_kwargs"], search_space)
    explicit_grid = settings["sampler_kwargs"].get("search_space") if settings["sampler_method"] == "grid" else None
    if isinstance(explicit_grid, Mapping) and set(explicit_grid) != set(suggested_names(agent_class, search_space)):
        problems.append(f"sampler_kwargs.search_space: the grid names {sorted(explicit_grid)} are not the parameters "
                        f"the trials suggest {sorted(suggested_names(agent_class, search_space))}")
    per_instance_keys = {key for kwargs in init_kwargs_per_instance or [] for key in kwargs}
    where = "search_space." if search_space else f"search_space: {agent_class.__name__}.sample_parameters tunes "
    problems += [f"{where}{name}: is set per instance in init_kwargs_per_instance, so it cannot be tuned"
                 for name in tuned_keys(agent_class, search_space) if name in per_instance_keys]
    return problems + sampler_problems(settings["sampler_method"], settings["sampler_kwargs"], search_space)
