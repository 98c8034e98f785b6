"""What a config's ``adastop:`` section may say: AdaStop comparisons of experiments, checked before any job runs.

A comparison names experiments (written out or expanded from sweeps), optionally the pairs to compare, and AdaStop's
settings (``n``, ``K``, ``alpha``, ``beta``, ``B``). :func:`adastop_specs` turns the schema-checked section into
:class:`AdastopSpec` values and lists every problem the schema cannot see, one line each naming its key
(``adastop.<name>.<key>``). Nothing here imports the ``adastop`` package: a plain run never loads it.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rlpipe.agents.capabilities import eval_settings
from rlpipe.io.provenance import canonical_json

# The folder of every comparison's results (results/adastop/<name>/): no experiment may have this name.
ADASTOP_FOLDER = "adastop"
# eval_kwargs that change how precisely a score is measured, not what it measures.
PRECISION_EVAL_KWARGS = ("n_simulations",)
_MAX_LISTED = 8  # experiment names listed when an unknown name has no close match


class ExperimentLike(Protocol):
    """What the checks read of an experiment's spec (:class:`rlpipe.spec.experiment.ExperimentSpec`)."""

    init_kwargs_per_instance: Any
    eval_kwargs: dict[str, Any]

    @property
    def evaluation_env(self) -> Any: ...


@dataclass(frozen=True)
class AdastopSpec:
    """One comparison of a config's ``adastop`` section, defaults filled in.

    ``experiments`` are in the order written (adastop's agent order); ``comparisons`` are pairs of indices into them
    (every pair when the config lists none), the first of a pair being the one a "larger" decision says is larger.
    """

    name: str
    experiments: tuple[str, ...]
    comparisons: tuple[tuple[int, int], ...]
    n: int = 5
    K: int = 5
    alpha: float = 0.05
    beta: float = 0.0
    B: int = 10000

    @property
    def max_instances(self) -> int:
        """Instances an experiment uses at most: ``n`` at each of ``K`` interims."""
        return self.n * self.K

    def interim_instances(self, interim: int) -> range:
        """The instances an experiment still compared adds at ``interim``: its ``n`` next ones."""
        return range(interim * self.n, (interim + 1) * self.n)

    def pair_names(self) -> list[tuple[str, str]]:
        return [(self.experiments[i], self.experiments[j]) for i, j in self.comparisons]


def adastop_specs(section: Any, experiments: Mapping[str, ExperimentLike], known: Collection[str],
                  rejected: Collection[tuple]) -> tuple[dict[str, AdastopSpec], list[str]]:
    """The comparisons of a schema-checked ``adastop`` section (defaults filled in) and its problems, one line each.

    ``experiments`` are the valid experiments' specs by name, ``known`` every experiment name of the config (an
    invalid experiment is named in its own problems, not again here), ``rejected`` the key paths the schema rejected
    (those comparisons are not checked further)."""
    if not isinstance(section, Mapping):
        return {}, []
    specs: dict[str, AdastopSpec] = {}
    problems: list[str] = []
    if section and ADASTOP_FOLDER in known:
        problems.append(f"experiments.{ADASTOP_FOLDER}: the name '{ADASTOP_FOLDER}' is the folder of the AdaStop "
                        f"comparisons' results (results/{ADASTOP_FOLDER}/): rename the experiment")
    rejected_names = {str(path[1]) for path in rejected if len(path) > 1 and path[0] == "adastop"}
    for name, entry in section.items():
        if name in rejected_names or not isinstance(entry, Mapping):
            continue
        spec, lines = _checked(str(name), entry, experiments, known)
        problems += [f"adastop.{name}{line}" for line in lines]
        if spec is not None:
            specs[str(name)] = spec
    return specs, problems


def _checked(name: str, entry: Mapping[str, Any], experiments: Mapping[str, ExperimentLike],
             known: Collection[str]) -> tuple[AdastopSpec | None, list[str]]:
    """The spec of one comparison and its problems (each line starts with ``.<key>: `` or ``: ``)."""
    names = list(entry["experiments"])
    problems = [f".experiments: no experiment named '{e}'{_suggestion(e, known)}" for e in names if e not in known]
    problems += [f".experiments: '{e}' is listed {names.count(e)} times" for e in dict.fromkeys(names)
                 if names.count(e) > 1]
    if len(set(names)) < 2:
        problems.append(f".experiments: a comparison needs at least 2 experiments, got {len(set(names))}")
    pairs, pair_problems = _pairs(entry.get("comparisons"), names)
    problems += pair_problems
    if not pair_problems and len(set(names)) >= 2:
        compared = {i for pair in pairs for i in pair}
        problems += [f".experiments: '{e}' is in none of the comparisons: compare it or remove it"
                     for i, e in enumerate(names) if i not in compared]
    for e in names:
        spec = experiments.get(e)
        if spec is not None and spec.init_kwargs_per_instance is not None:
            problems.append(f".experiments: '{e}' sets init_kwargs_per_instance, but AdaStop needs instances that "
                            "differ only by their seed (exchangeable scores)")
    if not entry["allow_different_evaluations"] and not pair_problems:
        problems += _evaluation_problems(names, pairs, experiments)
    n, K, alpha, B = entry["n"], entry["K"], entry["alpha"], entry["B"]
    if not can_reject(n, K, alpha, B):
        better = next((m for m in range(n + 1, 200) if can_reject(m, K, alpha, B)), None)
        hint = f" (n = {better} could)" if better else ""
        problems.append(f": with n={n}, K={K}, alpha={alpha} and B={B} no interim can decide 'larger' or 'smaller' (at "
                        "every interim k, the smallest p-value of the permutation test, one over the splits of the "
                        f"scores, is above the level alpha*(k+1)/K allowed by then), so every pair would end 'equal': "
                        f"raise n or alpha{hint}")
    if problems:
        return None, problems
    return AdastopSpec(name=name, experiments=tuple(names), comparisons=tuple(pairs), n=n, K=K,
                       alpha=float(alpha), beta=float(entry["beta"]), B=B), []


def _pairs(comparisons: Any, names: list[str]) -> tuple[list[tuple[int, int]], list[str]]:
    """The pairs as indices into ``names`` (every pair when ``comparisons`` is None), and their problems."""
    if comparisons is None:
        return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))], []
    pairs: list[tuple[int, int]] = []
    problems = []
    for index, pair in enumerate(comparisons):
        where = f".comparisons[{index}]"
        unknown = [e for e in pair if e not in names]
        if unknown:
            problems += [f"{where}: '{e}' is not one of the comparison's experiments ({', '.join(names)})" for e in unknown]
        elif pair[0] == pair[1]:
            problems.append(f"{where}: compares '{pair[0]}' with itself")
        elif {names.index(pair[0]), names.index(pair[1])} in [set(p) for p in pairs]:
            problems.append(f"{where}: compares '{pair[0]}' and '{pair[1]}' a second time")
        else:
            pairs.append((names.index(pair[0]), names.index(pair[1])))
    return pairs, problems


def _evaluation_problems(names: list[str], pairs: list[tuple[int, int]],
                         experiments: Mapping[str, ExperimentLike]) -> list[str]:
    """A line per compared pair whose scores are measured differently (eval env, or eval_kwargs but precision)."""
    problems = []
    for i, j in pairs:
        first, second = experiments.get(names[i]), experiments.get(names[j])
        if first is None or second is None:
            continue
        differences = _evaluation_differences(first, second)
        if differences:
            problems.append(f".experiments: '{names[i]}' and '{names[j]}' are not evaluated the same way "
                            f"({'; '.join(differences)}), so their scores measure different things; set "
                            "allow_different_evaluations: true to compare them anyway")
    return problems


def _evaluation_differences(first: ExperimentLike, second: ExperimentLike) -> list[str]:
    differences = []
    env_a, env_b = _env_identity(first.evaluation_env), _env_identity(second.evaluation_env)
    if env_a != env_b:
        differences.append(f"eval env {_short(first.evaluation_env)} vs {_short(second.evaluation_env)}")
    kwargs_a, kwargs_b = _evaluation_kwargs(first.eval_kwargs), _evaluation_kwargs(second.eval_kwargs)
    for key in sorted(set(kwargs_a) | set(kwargs_b)):
        if kwargs_a.get(key) != kwargs_b.get(key):  # 1 == 1.0: the same discount
            differences.append(f"eval_kwargs.{key} {kwargs_a.get(key)!r} vs {kwargs_b.get(key)!r}")
    return differences


def _evaluation_kwargs(eval_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What defines an experiment's score: its eval_kwargs, a rollout's defaults filled in, but precision."""
    return {k: v for k, v in {**eval_settings({}), **eval_kwargs}.items() if k not in PRECISION_EVAL_KWARGS}


def _env_identity(env: Any) -> str:
    """An env spec of a config as one string: ``FrozenLake-v1`` and ``{id: FrozenLake-v1, kwargs: {}}`` are one env."""
    if isinstance(env, str):
        env = {"id": env}
    if isinstance(env, Mapping):
        env = {"kwargs": {}, "wrappers": [], **env}
    return canonical_json(env)


def _short(env: Any) -> str:
    if isinstance(env, Mapping):
        kwargs = env.get("kwargs") or {}
        name = str(env.get("id") or env.get("constructor"))
        return name + (f" {canonical_json(kwargs)}" if kwargs else "")
    return str(env)


def _suggestion(name: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    listed = sorted(known)
    more = f", ... and {len(listed) - _MAX_LISTED} more" if len(listed) > _MAX_LISTED else ""
    return f" (experiments: {', '.join(listed[:_MAX_LISTED])}{more})"


# ---------------------------------------------------------------------------------------------- can the test decide?
def permutation_count(n: int, interim: int, B: int) -> int:
    """How many permutations adastop 0.1.3 divides by at ``interim`` (its ``normalization``) for two experiments of
    ``n`` scores per interim: all splits of the interim's scores when there are fewer than ``B``, else ``B`` at the
    first interim and, later, the largest power of the per-interim count that ``B`` exceeds (as adastop computes it)."""
    splits = math.comb(2 * n, n)
    if interim == 0:
        return splits if B > splits else B
    if B > splits ** (interim + 1):
        return splits ** (interim + 1)
    return splits ** int(math.floor(math.log(B) / math.log(splits)))


def can_reject(n: int, K: int, alpha: float, B: int) -> bool:
    """Whether some interim ``k`` can decide a difference. Where adastop enumerates every split of the scores
    (``B`` above their number), the observed split and its mirror are among them, so a difference is decided only if
    the smallest p-value, one over the splits, is within the level ``alpha * (k + 1) / K`` allowed by then. With
    random permutations instead, adastop's signed permutation statistics can miss the mirror, so a decision stays
    possible whatever the level. When no interim can decide, every pair ends "equal" after ``n * K`` instances each,
    whatever the scores."""
    splits = math.comb(2 * n, n)
    return any(B <= splits ** (k + 1) or alpha * (k + 1) / K >= 1 / permutation_count(n, k, B) for k in range(K))
