"""Statistical comparisons of fitted agents, as rlberry 0.7.3's ``compare_agents`` and ``AdastopComparator``.

An agent's sample is one score per fitted instance: its mean evaluation score, computed as the evaluate
stage computes it (:meth:`ExperimentManager.instance_scores`), or by a user's ``eval_function``. The
statistics themselves live in :mod:`rlpipe.core.hypothesis_tests`; this module turns managers into scores.
It imports scipy and adastop, so nothing that ``import rlpipe`` or a pipeline job loads imports it.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from adastop import MultipleAgentsComparator

from rlpipe.core.adastop import compared_agents
from rlpipe.core.hypothesis_tests import check_method, compare_scores
from rlpipe.manager.experiment_manager import DEFAULT_OUTPUT_DIR, ExperimentManager
from rlpipe.runtime.seeding import keyed_child

EvalFunction = Callable[..., Any]
# Manager arguments that AdaStop chooses itself: a user's value would silently break the sequential design.
_ADASTOP_SETS = ("seed", "n_fit")


def compare_agents(
    agent_source: Sequence[ExperimentManager | str | os.PathLike] | pd.DataFrame,
    method: str = "tukey_hsd",
    eval_function: EvalFunction | None = None,
    n_simulations: int = 50,
    alpha: float = 0.05,
    B: int = 10_000,
    seed: int | np.random.SeedSequence | None = None,
    *,
    allow_pickle: bool = False,
) -> pd.DataFrame:
    """Test every pair of agents for a difference in mean score, controlling the family-wise error at ``alpha``.

    Parameters
    ----------
    agent_source:
        Fitted ExperimentManagers; paths that ``ExperimentManager.load`` accepts (a ``manager.json``, its
        folder, a pipeline experiment folder); or a DataFrame of scores with columns ``agent`` and ``mean_eval``.
    method:
        ``"tukey_hsd"`` (scipy's Tukey HSD: assumes Gaussian scores with equal variances) or
        ``"permutation"`` (step-down max-T permutation test: no distributional assumption, the safe choice
        for heavy-tailed or multimodal returns). See :func:`rlpipe.core.hypothesis_tests.compare_scores`.
    eval_function:
        ``eval_function(manager, eval_budget=n_simulations, agent_id=i)`` returning the evaluations (or one
        score) of instance ``i``; an instance's score is the mean of what it returns. Default:
        ``manager.instance_scores(n_simulations)``, the mean of ``n_simulations`` evaluations (episodes, or
        calls of the agent's own ``eval``) of the instance freshly loaded from its checkpoint, seeded from
        its evaluation stream as the evaluate stage seeds them.
    n_simulations:
        Evaluations per instance (rlberry 0.7.3 ignores it and uses 100).
    alpha:
        Level of the test.
    B:
        Random permutations of the permutation test.
    seed:
        Seed of the permutations. The scores do not depend on it (nor on earlier calls): the same agents and
        the same seed give the same table.
    allow_pickle:
        For paths: read pickled agents (agents without ``get_state``), as ``ExperimentManager.load`` does.
        Unpickling runs code from the files: only for results you trust.

    Returns
    -------
    One row per pair: ``Agent1 vs Agent2, mean Agent1, mean Agent2, mean diff, std diff, decisions``
    (``"accept"``: no significant difference, ``"reject"``: different), plus ``p-val, significance`` for
    ``"tukey_hsd"``.
    """
    check_method(method)
    if isinstance(agent_source, pd.DataFrame):
        scores = agent_source
    else:
        managers = [source if isinstance(source, ExperimentManager) else ExperimentManager.load(source, allow_pickle)
                    for source in agent_source]
        check_unique_names([manager.agent_name for manager in managers])
        scores = pd.DataFrame(
            [(manager.agent_name, score) for manager in managers
             for score in instance_scores(manager, n_simulations, eval_function)],
            columns=["agent", "mean_eval"],
        )
    return compare_scores(scores, method=method, alpha=alpha, B=B, seed=seed)


def instance_scores(manager: ExperimentManager, n_simulations: int,
                    eval_function: EvalFunction | None = None) -> np.ndarray:
    """One score per fitted instance of ``manager``: the mean of its ``n_simulations`` evaluations."""
    if eval_function is None:
        return manager.instance_scores(n_simulations)
    return np.array([np.mean(eval_function(manager, eval_budget=n_simulations, agent_id=i))
                     for i in range(manager.n_fit)], dtype=float)


def check_unique_names(names: Sequence[str]) -> None:
    """Scores are grouped by agent name, so two agents with one name would be silently merged."""
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"agent names must be unique, but {repeated} name more than one agent: set agent_name")


class AdastopComparator(MultipleAgentsComparator):
    """Compare agents sequentially with AdaStop (adastop's ``MultipleAgentsComparator``), fitting as it goes.

    At each of at most ``K`` interims, every agent still in an undecided comparison gets ``n`` more fitted
    instances, each contributing one score; the test stops early once every comparison is decided.

    Parameters
    ----------
    n:
        Instances fitted per agent and interim (an int, or one int per agent).
    K:
        Maximum number of interims.
    B:
        Random permutations approximating the permutation distribution.
    comparisons:
        Pairs of agent indices to compare, e.g. ``[(0, 1), (0, 2)]``; None compares all pairs.
    alpha:
        Level of the test (family-wise error).
    beta:
        Power spent on early "equal" decisions.
    seed:
        Seeds adastop's permutations and, through the keyed child ``k`` of ``SeedSequence(seed)``, the managers
        of interim ``k`` (each manager's streams are keyed by its agent's name, so agents never share seeds and
        their order does not matter): the same seed gives the same scores and decisions. None draws one, kept
        in ``self.seed`` so that the run can be repeated.

    Attributes
    ----------
    agent_names: the agents' names, in the order of ``manager_list``.
    managers_paths: ``{agent name: [manager.json of each interim's manager]}``, for ``ExperimentManager.load``.
    decisions: ``{str(comparison): "equal" | "larger" | "smaller"}`` (``"continue"`` while undecided).
    n_iters: ``{agent name: number of scores used}``.
    eval_values: ``{agent name: its scores}``.
    """

    def __init__(self, n: int | Sequence[int] = 5, K: int = 5, B: int = 10000,
                 comparisons: Sequence[tuple[int, int]] | None = None, alpha: float = 0.01, beta: float = 0,
                 seed: int | None = None) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0])  # fits adastop's RandomState
        # adastop indexes the comparisons with boolean masks, which needs an array
        super().__init__(n, K, B, None if comparisons is None else np.asarray(comparisons), alpha, beta, seed)
        self.managers_paths: dict[str, list[Path]] = {}

    def compare(self, manager_list: Sequence[dict[str, Any]], n_evaluations: int = 50,
                verbose: bool = True) -> dict[str, str]:
        """Run AdaStop on agents given as ExperimentManager keyword arguments (the dicts are not modified).

        Each manager's scores are its instances' ``instance_scores(n_evaluations)``. Each
        (agent, interim) manager writes to its own folder under the dict's ``output_dir`` (default
        ``rlpipe_data/temp``). Returns ``self.decisions``.
        """
        if self.k > 0:
            raise RuntimeError("this AdastopComparator has already run; create a new one for another comparison")
        kwargs_list = list(map(_without_adastop_keys, manager_list, range(len(manager_list))))
        self.n = np.broadcast_to(np.asarray(self.n, dtype=int), (len(kwargs_list),)).copy()
        # A manager per agent checks every agent's arguments (and gives its name) before anything is fitted.
        names = [ExperimentManager(**kwargs).agent_name for kwargs in kwargs_list]
        check_unique_names(names)
        self.managers_paths = {name: [] for name in names}
        eval_values = {name: np.empty(0) for name in names}
        for k in range(self.K):
            for i in self._agents_in_comparisons():
                manager = self._interim_manager(kwargs_list[i], names[i], int(self.n[i]), k)
                manager.fit()
                self.managers_paths[names[i]].append(manager.save())
                eval_values[names[i]] = np.concatenate([eval_values[names[i]], instance_scores(manager, n_evaluations)])
            self.partial_compare(eval_values, verbose)
            if self.is_finished:
                break
        if verbose:
            print(self.get_results())
        return self.decisions

    def print_results(self) -> None:
        """Print the number of scores and the mean score of each agent, then the decision of each comparison."""
        print("Number of scores used for each agent:")
        for name, count in self.n_iters.items():
            print(f"{name}: {count}")
        print("\nMean score of each agent:")
        for name, values in self.eval_values.items():
            print(f"{name}: {np.mean(values)}")
        print("\nDecision for each comparison:")
        for pair in self.comparisons:
            first, second = self.agent_names[pair[0]], self.agent_names[pair[1]]
            print(f"{first} vs {second}: {self.decisions[str(pair)]}")

    def _agents_in_comparisons(self) -> list[int]:
        """Indices of the agents that still appear in an undecided comparison (all of them before the start): the
        pipeline's AdaStop flow asks the same of its comparator."""
        return compared_agents(self, len(self.n))

    def _interim_manager(self, kwargs: dict[str, Any], name: str, n_fit: int, interim: int) -> ExperimentManager:
        """Manager of agent ``name`` at ``interim``: ``n_fit`` fresh instances, the interim's seed (the manager keys
        its streams by ``name``), a folder of its own."""
        parent = Path(kwargs.get("output_dir") or DEFAULT_OUTPUT_DIR)
        return ExperimentManager(**{
            **kwargs,
            "n_fit": n_fit,
            "seed": keyed_child(np.random.SeedSequence(self.seed), interim),
            "output_dir": parent / f"adastop_{name}" / f"interim_{interim}",
        })


def _without_adastop_keys(kwargs: dict[str, Any], agent: int) -> dict[str, Any]:
    """A copy of a manager's kwargs without what AdaStop sets itself, with a warning if the user set it."""
    given = [key for key in _ADASTOP_SETS if key in kwargs]
    if given:
        warnings.warn(f"AdastopComparator sets the managers' seeds and n_fit itself: ignoring {given} of agent {agent}",
                      UserWarning, stacklevel=3)
    return {key: value for key, value in kwargs.items() if key not in _ADASTOP_SETS}
