"""compare_agents and AdastopComparator on managers of toy agents whose scores are known.

``ConstantAgent.eval`` returns its ``value`` (so agents differ by a known amount and the scores can be
checked exactly); ``NoisyAgent.eval`` adds N(0, 1) noise from the agent's seeded rng (for equal agents
and for reproducibility). Budgets are tiny and AdaStop runs use small n, K and B.
"""
from __future__ import annotations

import copy
import inspect
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from adastop import MultipleAgentsComparator
from scipy.stats import tukey_hsd

from rlpipe.agents import Agent, AgentWithSimplePolicy
from rlpipe.manager.comparisons import AdastopComparator, compare_agents
from rlpipe.manager.experiment_manager import ExperimentManager

LAKE = ("FrozenLake-v1", {"is_slippery": False})
QUIET = {"print_log": False}
METHODS = ["tukey_hsd", "permutation"]


class ConstantAgent(AgentWithSimplePolicy):
    """``eval`` returns ``value`` and counts its calls, per agent and per (value, instance) over every copy."""

    name = "Constant"
    eval_calls: ClassVar[Counter] = Counter()

    def __init__(self, env: Any, value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.value = value
        self.n_evals = 0

    def fit(self, budget: int, **kwargs: Any) -> None:
        pass

    def policy(self, observation: Any) -> int:
        return 0

    def eval(self, eval_horizon: int | None = None, **kwargs: Any) -> float:
        self.n_evals += 1
        ConstantAgent.eval_calls[(self.value, self._execution_metadata)] += 1
        return self.value

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        pass


class NoisyAgent(ConstantAgent):
    """``eval`` returns ``value`` plus N(0, 1) noise from the agent's seeded rng."""

    name = "Noisy"

    def eval(self, eval_horizon: int | None = None, **kwargs: Any) -> float:
        self.n_evals += 1
        return self.value + float(self.rng.normal())


def manager_kwargs(tmp_path: Path, name: str, value: float, agent: type = ConstantAgent,
                   **kwargs: Any) -> dict[str, Any]:
    return {"agent_class": agent, "train_env": LAKE, "fit_budget": 1, "init_kwargs": {"value": value},
            "agent_name": name, "output_dir": tmp_path, "default_writer_kwargs": QUIET, **kwargs}


def fitted(tmp_path: Path, name: str, value: float, agent: type = ConstantAgent, n_fit: int = 4, seed: int = 1,
           fit: bool = True) -> ExperimentManager:
    manager = ExperimentManager(**manager_kwargs(tmp_path, name, value, agent), n_fit=n_fit, seed=seed)
    if fit:
        manager.fit()
    return manager


# ------------------------------------------------------------------------------------ compare_agents
def test_signatures_are_rlberrys():
    def defaults(function):
        return [(p.name, p.default) for p in inspect.signature(function).parameters.values()]

    assert defaults(compare_agents)[:7] == [
        ("agent_source", inspect.Parameter.empty), ("method", "tukey_hsd"), ("eval_function", None),
        ("n_simulations", 50), ("alpha", 0.05), ("B", 10_000), ("seed", None)]
    extras = list(inspect.signature(compare_agents).parameters.values())[7:]
    assert [(p.name, p.kind) for p in extras] == [("allow_pickle", inspect.Parameter.KEYWORD_ONLY)]
    assert defaults(AdastopComparator.__init__) == [
        ("self", inspect.Parameter.empty), ("n", 5), ("K", 5), ("B", 10000), ("comparisons", None), ("alpha", 0.01),
        ("beta", 0), ("seed", None)]
    assert defaults(AdastopComparator.compare) == [
        ("self", inspect.Parameter.empty), ("manager_list", inspect.Parameter.empty), ("n_evaluations", 50),
        ("verbose", True)]
    assert issubclass(AdastopComparator, MultipleAgentsComparator)


@pytest.mark.parametrize("method", METHODS)
def test_clearly_different_agents_are_rejected_with_the_agents_own_scores(tmp_path, method):
    managers = [fitted(tmp_path, "A", 0.0), fitted(tmp_path, "B", 10.0)]
    ConstantAgent.eval_calls.clear()
    table = compare_agents(managers, method=method, n_simulations=7, B=2000, seed=0)
    assert table[["Agent1 vs Agent2", "mean Agent1", "mean Agent2", "mean diff", "std diff", "decisions"]].to_dict(
        "records") == [{"Agent1 vs Agent2": "A vs B", "mean Agent1": 0.0, "mean Agent2": 10.0, "mean diff": -10.0,
                        "std diff": 0.0, "decisions": "reject"}]
    if method == "tukey_hsd":
        assert table["p-val"][0] < 0.05 and table["significance"][0] == "***"
    else:
        assert list(table.columns) == ["Agent1 vs Agent2", "mean Agent1", "mean Agent2", "mean diff", "std diff",
                                       "decisions"]
    # n_simulations evaluations per instance (rlberry 0.7.3 does 100 whatever n_simulations says), each of an agent
    # loaded afresh: the manager's own agents are left as they were
    assert ConstantAgent.eval_calls == {(value, i): 7 for value in (0.0, 10.0) for i in range(4)}
    assert [agent.n_evals for m in managers for agent in m.get_agent_instances()] == [0] * 8


@pytest.mark.parametrize("method", METHODS)
def test_identical_agents_are_accepted(tmp_path, method):
    managers = [fitted(tmp_path, "A", 0.0, NoisyAgent, n_fit=5, seed=1),
                fitted(tmp_path, "B", 0.0, NoisyAgent, n_fit=5, seed=2)]
    table = compare_agents(managers, method=method, n_simulations=5, B=2000, seed=0)
    assert table["decisions"].tolist() == ["accept"]
    assert table["mean Agent1"][0] != table["mean Agent2"][0]  # the noise is really there
    if method == "tukey_hsd":
        assert table["p-val"][0] >= 0.05


@pytest.mark.parametrize("method", METHODS)
def test_different_numbers_of_fits(tmp_path, method):
    managers = [fitted(tmp_path, "A", 0.0, NoisyAgent, n_fit=4), fitted(tmp_path, "B", 5.0, NoisyAgent, n_fit=7)]
    table = compare_agents(managers, method=method, n_simulations=5, B=2000, seed=0)
    assert table["decisions"].tolist() == ["reject"]
    assert abs(table["mean Agent1"][0]) < 1 and abs(table["mean Agent2"][0] - 5) < 1
    assert table["mean diff"][0] == pytest.approx(table["mean Agent1"][0] - table["mean Agent2"][0])


def test_permutation_with_the_same_seed_gives_the_same_table(tmp_path):
    paths = [fitted(tmp_path, name, value, NoisyAgent, n_fit=5).save() for name, value in [("A", 0.0), ("B", 0.3)]]
    first = compare_agents(paths, method="permutation", n_simulations=3, B=500, seed=3)
    pd.testing.assert_frame_equal(first, compare_agents(paths, method="permutation", n_simulations=3, B=500, seed=3))


def test_the_same_call_twice_gives_the_same_table(tmp_path):
    """Scores come from agents loaded afresh and seeded from their evaluation streams: an earlier call (or an earlier
    eval_agents) leaves nothing advanced that would change them."""
    managers = [fitted(tmp_path, name, value, NoisyAgent, n_fit=5) for name, value in [("A", 0.0), ("B", 0.3)]]
    first = compare_agents(managers, n_simulations=3, seed=3)
    managers[0].eval_agents(4, verbose=False)
    pd.testing.assert_frame_equal(first, compare_agents(managers, n_simulations=3, seed=3))


def test_default_scores_are_the_evaluate_stages(tmp_path):
    """An instance's default score is the mean of the first n_simulations rows of its evaluate stage."""
    manager = fitted(tmp_path, "A", 0.0, NoisyAgent, n_fit=3)
    manager.evaluate()  # eval_kwargs' default n_simulations rows per instance
    rows = manager.evaluate().groupby("instance")["score"]
    np.testing.assert_allclose(manager.instance_scores(4), rows.apply(lambda s: s.iloc[:4].mean()).to_numpy())
    np.testing.assert_allclose(manager.instance_scores(), rows.mean().to_numpy())


def test_dataframe_source(tmp_path):
    scores = pd.DataFrame({"agent": ["A"] * 4 + ["B"] * 4 + ["C"] * 5,
                           "mean_eval": [1.0, 2, 3, 4] + [1.5, 2.5, 3.5, 2.0] + [9.0, 8, 10, 9, 11]})
    table = compare_agents(scores)
    expected = tukey_hsd([1.0, 2, 3, 4], [1.5, 2.5, 3.5, 2.0], [9.0, 8, 10, 9, 11]).pvalue
    assert table["Agent1 vs Agent2"].tolist() == ["A vs B", "A vs C", "B vs C"]
    assert table["mean Agent1"].tolist() == [2.5, 2.5, 2.375]
    assert table["p-val"].tolist() == pytest.approx([expected[0, 1], expected[0, 2], expected[1, 2]])
    assert table["decisions"].tolist() == ["accept", "reject", "reject"]
    assert compare_agents(scores, method="permutation", B=2000, seed=0)["decisions"].tolist() == [
        "accept", "reject", "reject"]


def test_paths_and_folders_give_the_same_table_as_managers(tmp_path):
    managers = [fitted(tmp_path, "A", 0.0, NoisyAgent), fitted(tmp_path, "B", 1.0, NoisyAgent)]
    from_files = compare_agents([managers[0].save(), str(managers[1].save())], n_simulations=4)
    from_folders = compare_agents([m.output_dir for m in managers], n_simulations=4)
    from_managers = compare_agents(managers, n_simulations=4)
    pd.testing.assert_frame_equal(from_files, from_managers)
    pd.testing.assert_frame_equal(from_folders, from_managers)


class PickledConstantAgent(ConstantAgent):
    """No get_state/set_state, as most rlberry agents: its checkpoints are pickles."""

    get_state, set_state = Agent.get_state, Agent.set_state


def test_pickled_agents_from_paths_are_read_only_when_allowed(tmp_path):
    managers = [fitted(tmp_path, "A", 0.0, PickledConstantAgent), fitted(tmp_path, "B", 10.0, PickledConstantAgent)]
    paths = [manager.save() for manager in managers]
    with pytest.warns(UserWarning, match="pickled"), pytest.raises(Exception, match="allow_pickle=True"):
        compare_agents(paths, n_simulations=2)
    table = compare_agents(paths, n_simulations=2, allow_pickle=True)
    assert table["decisions"].tolist() == ["reject"] and table["mean diff"].tolist() == [-10.0]


def test_eval_function_is_called_with_the_budget_and_its_values_used(tmp_path):
    managers = [fitted(tmp_path, "A", 0.0), fitted(tmp_path, "B", 0.0, n_fit=5)]
    calls = []

    def eval_function(manager, eval_budget, agent_id):
        calls.append((manager.agent_name, eval_budget, agent_id))
        return [agent_id, agent_id + 2 + 10 * (manager.agent_name == "B")]  # mean: agent_id + 1 (+ 5 for B)

    table = compare_agents(managers, eval_function=eval_function, n_simulations=9)
    assert calls == [("A", 9, i) for i in range(4)] + [("B", 9, i) for i in range(5)]
    assert (table["mean Agent1"][0], table["mean Agent2"][0]) == (2.5, 8.0)
    assert [agent.n_evals for m in managers for agent in m.get_agent_instances()] == [0] * 9


def test_too_few_fits_for_alpha_raise(tmp_path):
    managers = [fitted(tmp_path, "A", 0.0, n_fit=3), fitted(tmp_path, "B", 10.0, n_fit=3)]
    with pytest.raises(ValueError, match="too few fits for alpha=0.05"):
        compare_agents(managers, method="permutation", n_simulations=1)
    table = compare_agents(managers, method="permutation", alpha=0.15, n_simulations=1, seed=0)
    assert table["decisions"].tolist() == ["reject"]


def test_bad_arguments_fail_before_evaluating(tmp_path):
    unfitted = [fitted(tmp_path, "A", 0.0, fit=False), fitted(tmp_path, "A", 1.0, fit=False),
                fitted(tmp_path, "B", 1.0, fit=False)]
    with pytest.raises(ValueError, match=r"\['A'\]"):
        compare_agents(unfitted)
    with pytest.raises(ValueError, match=r"'anova'.*\('tukey_hsd', 'permutation'\)"):
        compare_agents(unfitted, method="anova")


# ------------------------------------------------------------------------------ AdastopComparator
def run_adastop(tmp_path: Path, values: tuple[float, float], agent: type = ConstantAgent, seed: int | None = 0,
                n: int = 4, K: int = 3, B: int = 50, alpha: float = 0.1, **kwargs: Any) -> AdastopComparator:
    comparator = AdastopComparator(n=n, K=K, B=B, alpha=alpha, seed=seed)
    dicts = [manager_kwargs(tmp_path, name, value, agent, **kwargs) for name, value in zip("AB", values, strict=True)]
    comparator.compare(dicts, n_evaluations=3, verbose=False)
    return comparator


@pytest.mark.parametrize("values, decision", [((0.0, 10.0), "smaller"), ((10.0, 0.0), "larger")])
def test_adastop_decides_very_different_agents_at_the_first_interim(tmp_path, capsys, values, decision):
    # B > comb(8, 4) = 70: adastop enumerates every split, where only the observed one reaches |diff| = 10.
    comparator = run_adastop(tmp_path, values, B=100)
    assert comparator.is_finished and comparator.decisions == {"[0 1]": decision}
    assert comparator.n_iters == {"A": 4, "B": 4}
    assert comparator.agent_names == ["A", "B"]
    scores = {name: v.tolist() for name, v in comparator.eval_values.items()}
    assert scores == {"A": [values[0]] * 4, "B": [values[1]] * 4}  # the agents' own eval, one score per instance
    loaded = [ExperimentManager.load(path) for paths in comparator.managers_paths.values() for path in paths]
    assert [(m.agent_name, m.n_fit) for m in loaded] == [("A", 4), ("B", 4)]
    comparator.print_results()
    printed = capsys.readouterr().out
    assert "A: 4" in printed and f"A vs B: {decision}" in printed
    with pytest.raises(RuntimeError, match="already run"):
        comparator.compare([manager_kwargs(tmp_path, "A", 0.0)])


def test_adastop_on_identical_agents_runs_every_interim_in_its_own_folder(tmp_path):
    comparator = run_adastop(tmp_path, (0.0, 0.0), NoisyAgent, K=2, outdir_id_style=None)
    assert comparator.decisions == {"[0 1]": "equal"}
    assert comparator.n_iters == {"A": 8, "B": 8}
    assert comparator.managers_paths == {
        name: [tmp_path / f"adastop_{name}" / f"interim_{k}" / "manager_data" / "manager.json" for k in range(2)]
        for name in "AB"}
    scores = comparator.eval_values["A"]
    assert len(set(scores.tolist())) == 8  # every instance of every interim is a new seed


def test_adastop_is_reproducible_from_its_seed(tmp_path):
    first = run_adastop(tmp_path / "1", (0.0, 0.5), NoisyAgent, seed=None, n=3, K=2, B=15)
    again = run_adastop(tmp_path / "2", (0.0, 0.5), NoisyAgent, seed=first.seed, n=3, K=2, B=15)
    other = run_adastop(tmp_path / "3", (0.0, 0.5), NoisyAgent, seed=first.seed + 1, n=3, K=2, B=15)
    assert isinstance(first.seed, int)
    assert (again.decisions, again.n_iters) == (first.decisions, first.n_iters)
    for name in "AB":
        assert np.array_equal(again.eval_values[name], first.eval_values[name])
        assert not np.array_equal(other.eval_values[name][:3], first.eval_values[name][:3])


def test_adastop_scores_do_not_depend_on_the_order_of_the_agents(tmp_path):
    def scores(folder: str, order: str) -> AdastopComparator:
        comparator = AdastopComparator(n=3, K=2, B=15, alpha=0.2, seed=5)
        values = {"A": 0.0, "B": 0.5}
        comparator.compare([manager_kwargs(tmp_path / folder, name, values[name], NoisyAgent) for name in order],
                           n_evaluations=2, verbose=False)
        return comparator

    first, swapped = scores("1", "AB"), scores("2", "BA")
    assert swapped.agent_names == ["B", "A"]
    for name in "AB":
        np.testing.assert_array_equal(swapped.eval_values[name], first.eval_values[name])


def test_adastop_decides_as_adastop_on_the_same_scores(tmp_path):
    comparator = run_adastop(tmp_path, (0.0, 0.8), NoisyAgent, seed=4, n=3, K=3, B=15, alpha=0.2)
    plain = MultipleAgentsComparator(n=3, K=3, B=15, alpha=0.2, seed=4)
    for k in range(comparator.k):
        plain.partial_compare({name: v[: 3 * (k + 1)] for name, v in comparator.eval_values.items()}, verbose=False)
    assert plain.decisions == comparator.decisions and plain.n_iters == comparator.n_iters
    assert plain.is_finished


def test_adastop_leaves_the_users_dicts_alone_and_warns_about_their_seed(tmp_path):
    dicts = [manager_kwargs(tmp_path, "A", 0.0, seed=3, n_fit=9), manager_kwargs(tmp_path, "B", 10.0)]
    before = copy.deepcopy(dicts)
    with pytest.warns(UserWarning, match=r"ignoring \['seed', 'n_fit'\] of agent 0"):
        AdastopComparator(n=4, K=3, B=50, alpha=0.1, seed=0).compare(dicts, n_evaluations=2, verbose=False)
    assert dicts == before


def test_adastop_refuses_agents_with_the_same_name(tmp_path):
    dicts = [manager_kwargs(tmp_path, "A", 0.0), manager_kwargs(tmp_path, "A", 10.0)]
    with pytest.raises(ValueError, match=r"\['A'\]"):
        AdastopComparator(n=4, K=3, seed=0).compare(dicts, verbose=False)
    assert list(tmp_path.iterdir()) == []  # nothing was fitted
