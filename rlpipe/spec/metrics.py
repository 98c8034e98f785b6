"""The ``metrics`` section of a config: which algorithm each experiment is across environments, and the reference
scores that put each environment's scores on one scale. Checked before any job runs, one line per problem naming
the key, so that a missing reference score never surfaces as a failed job at the end of a run.

An experiment's **algorithm** is, in this order: its ``algorithm`` key (written out, or set by its sweep); for a point
of a sweep, the sweep's name and the labels of the point's axes but the env axes (``train_env``, ``eval_env``), so a
grid over agents × envs × budgets gives one algorithm per agent × budget, each run on every env of the grid; else its
agent's class name. An algorithm has one set of runs per env, so two experiments with the same algorithm and
evaluation env are an error naming them (runs of different settings would be pooled silently).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlpipe.runtime.keywords import suggestion
from rlpipe.spec.sweeps import SweepPoint

ENV_KEYS = ("train_env", "eval_env")  # axes of a sweep that choose the env, not the algorithm
_SHOWN = 4  # experiments named in one problem line; the others are counted


def algorithm_name(experiment: str, agent: type, algorithm: str | None, point: SweepPoint | None) -> str:
    """The algorithm of an experiment (see the module's docstring)."""
    if algorithm is not None:
        return algorithm
    if point is not None:
        return "-".join([point.sweep, *(label for key, label in point.labels.items()
                                        if key.partition(".")[0] not in ENV_KEYS)])
    return agent.__name__


def metrics_problems(section: Mapping[str, Any], experiments: Mapping[str, tuple[str, str]]) -> list[str]:
    """The problems of a ``metrics`` section the schema accepted, for ``experiments``: ``{name: (algorithm, env)}``.

    Every env evaluated by an experiment needs reference scores; a reference's random and optimum must differ; no
    two experiments may be the same algorithm on the same env.
    """
    references = section["reference_scores"]
    by_env: dict[str, list[str]] = {}
    by_pair: dict[tuple[str, str], list[str]] = {}
    for name, (algorithm, env) in experiments.items():
        by_env.setdefault(env, []).append(name)
        by_pair.setdefault((algorithm, env), []).append(name)
    problems = [f"metrics.reference_scores: no reference scores for env '{env}' (evaluated by {_listed(names)}): add "
                f"'{env}: {{random: ..., optimum: ...}}'{_close(env, list(references))}"
                for env, names in by_env.items() if env not in references]
    problems += [f"metrics.reference_scores.{env}: random and optimum are both {scores['random']}, but a score is "
                 "normalised as (score - random) / (optimum - random): give the score of an optimal (or the best known) "
                 "policy as optimum"
                 for env, scores in references.items() if scores["random"] == scores["optimum"]]
    problems += [f"metrics: experiments {_listed(names)} would be one algorithm, '{algorithm}', on env '{env}', their "
                 "runs pooled: give each its own 'algorithm' key (in the experiment, or in its sweep)"
                 for (algorithm, env), names in by_pair.items() if len(names) > 1]
    return problems


def _listed(names: Sequence[str]) -> str:
    """'a', 'a' and 'b', 'a', 'b' and 'c', or the first few and a count of the others."""
    quoted = [f"'{name}'" for name in names[:_SHOWN]]
    if len(names) > _SHOWN:
        return f"{', '.join(quoted)} and {len(names) - _SHOWN} more"
    return " and ".join([", ".join(quoted[:-1]), quoted[-1]]) if len(quoted) > 1 else quoted[0]


def _close(env: str, references: list[str]) -> str:
    """A close env id among the reference scores (a typo such as CartPole-v0), else nothing."""
    hint = suggestion(env, references) if references else ""
    return hint if hint.startswith(" (did you mean") else ""
