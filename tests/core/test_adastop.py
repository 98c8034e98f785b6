"""The AdaStop flow's core: its replay decides as adastop's comparator fed interim by interim, its jobs' instances,
tasks and seeds, and the tables of a finished comparison."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from adastop import MultipleAgentsComparator

from rlpipe.core import adastop as flow
from rlpipe.core import tasks
from rlpipe.core.adastop_report import decisions_table, figure, scores_table, seeds_table
from rlpipe.runtime.seeding import seed_record
from rlpipe.spec.adastop import AdastopSpec, can_reject, permutation_count
from rlpipe.spec.experiment import validate_study

ROOT = np.random.SeedSequence(11)


def task(experiments: list[str], n: int = 5, K: int = 4, B: int = 2000, alpha: float = 0.05, beta: float = 0.0,
         comparisons: list[list[int]] | None = None, seed: int = 7) -> flow.AdastopTask:
    pairs = comparisons or [[i, j] for i in range(len(experiments)) for j in range(i + 1, len(experiments))]
    return flow.AdastopTask(comparison="c", root_seed=seed_record(ROOT), seed=seed, experiments=experiments,
                            comparisons=pairs, n=n, K=K, alpha=alpha, beta=beta, B=B)


def stateful(t: flow.AdastopTask, table: dict[str, np.ndarray]) -> list[MultipleAgentsComparator]:
    """adastop's documented loop: one comparator, fed interim by interim the n next scores of every agent still in an
    undecided comparison; a snapshot of its decisions after each interim."""
    comparator = MultipleAgentsComparator(n=t.n, K=t.K, B=t.B, comparisons=np.array(t.comparisons), alpha=t.alpha,
                                          beta=t.beta, seed=t.seed)
    values = {name: np.empty(0) for name in t.experiments}
    snapshots = []
    for k in range(t.K):
        active = range(len(t.experiments)) if k == 0 else np.unique(comparator.current_comparisons)
        for i in active:
            name = t.experiments[i]
            values[name] = np.concatenate([values[name], table[name][k * t.n:(k + 1) * t.n]])
        comparator.partial_compare(values, verbose=False)
        snapshots.append({"decisions": dict(comparator.decisions), "n_iters": dict(comparator.n_iters),
                          "finished": comparator.is_finished})
        if comparator.is_finished:
            break
    return snapshots


def tables(means: list[float | None], n_max: int, scale: float = 1.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Normal scores of each mean; None: the same scores as the experiment before."""
    rng = np.random.default_rng(seed)
    table: dict[str, np.ndarray] = {}
    for i, mean in enumerate(means):
        table[f"e{i}"] = table[f"e{i - 1}"].copy() if mean is None else rng.normal(mean, scale, n_max)
    return table


CASES = {
    "2 clearly different": (["e0", "e1"], [0.0, 5.0], None),
    "2 equal": (["e0", "e1"], [0.0, 0.0], None),
    "2 identical": (["e0", "e1"], [0.0, None], None),
    "2 close": (["e0", "e1"], [0.0, 0.9], None),
    "3 mixed": (["e0", "e1", "e2"], [0.0, 0.0, 4.0], None),
    "3 mixed, two pairs": (["e0", "e1", "e2"], [0.0, 0.6, 4.0], [[2, 0], [2, 1]]),
    "3 all different": (["e0", "e1", "e2"], [0.0, 1.5, 3.0], None),
}


@pytest.mark.parametrize("case", CASES)
def test_the_replay_decides_as_one_comparator_fed_interim_by_interim(case):
    names, means, pairs = CASES[case]
    t = task(names, n=4, K=4, B=1000, comparisons=pairs)
    table = tables(means, t.n * t.K, seed=len(case))
    expected = stateful(t, table)
    for k, snapshot in enumerate(expected):  # each interim's job replays from scratch, up to its interim
        result = flow.replay(t, table, k + 1)
        assert result.comparator.decisions == snapshot["decisions"], (case, k)
        assert result.comparator.n_iters == snapshot["n_iters"]
        assert result.comparator.is_finished == snapshot["finished"]
        assert [step["interim"] for step in result.history] == list(range(k + 1))
    final = expected[-1]["decisions"]
    if case == "2 clearly different":
        assert final == {"[0 1]": "smaller"} and len(expected) < t.K
    if case == "2 identical":
        assert final == {"[0 1]": "equal"} and len(expected) == t.K


def test_the_replay_reads_only_the_scores_of_experiments_still_compared():
    t = task(["e0", "e1", "e2"], n=4, K=3, B=1000)
    table = tables([0.0, None, 6.0], 12, scale=0.3)
    asked: list[tuple[str, range]] = []

    def scores(name: str, instances: range) -> np.ndarray:
        asked.append((name, instances))
        return table[name][instances.start:instances.stop]

    result = flow.replay(t, scores, 3)
    assert asked[:3] == [(name, range(0, 4)) for name in t.experiments]
    assert ("e2", range(4, 8)) not in asked  # e2 decided against both others at interim 0
    assert result.history[0]["decided"] == [1, 2] and result.history[1]["compared"] == ["e0", "e1"]
    state = flow.interim_state(t, result, {name: dict(enumerate(v)) for name, v in table.items()})
    assert state["finished"] and state["still_compared"] == [] and state["n_scores"] == {"e0": 12, "e1": 12, "e2": 4}
    assert [p["decided_at"] for p in state["pairs"]] == [2, 0, 0]
    assert [row["interim"] for row in state["scores"]["e0"]] == [0] * 4 + [1] * 4 + [2] * 4


def test_the_replay_refuses_too_few_scores():
    t = task(["e0", "e1"], n=3, K=2)
    with pytest.raises(Exception, match="3 scores of 'e1' needed"):
        flow.replay(t, {"e0": [1.0, 2.0, 3.0], "e1": [1.0]}, 1)


def test_compared_agents_before_and_during_a_comparison():
    comparator = flow.new_comparator(2, 2, 100, [[0, 2]], 0.05, 0.0, 1)
    assert flow.compared_agents(comparator, 3) == [0, 2]
    assert flow.compared_agents(MultipleAgentsComparator(), 3) == [0, 1, 2]


# ---------------------------------------------------------------------------------------------- can the test decide?
@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("alpha", [0.02, 0.1, 0.3])
@pytest.mark.parametrize("B", [10, 1000])
def test_can_reject_says_whether_adastop_can_decide_perfectly_separated_scores(n, K, alpha, B):
    """Integer scores and n a power of 2: every mean is exact, so no rounding makes the observed statistic exceed
    itself among the permutations' (adastop then rejects where no level allows it)."""
    t = task(["low", "high"], n=n, K=K, B=B, alpha=alpha)
    ramp = np.arange(n * K, dtype=float)  # distinct values: no ties among permutations
    result = flow.replay(t, {"low": ramp, "high": 1000 + ramp}, K)
    decided = result.comparator.decisions["[0 1]"]
    exhaustive = B > math.comb(2 * n, n) ** K  # every split enumerated: no random duplicate of the observed one
    if not can_reject(n, K, alpha, B):
        assert decided == "equal"
    elif exhaustive:
        assert decided == "smaller"


def test_permutation_count_follows_adastop():
    assert permutation_count(5, 0, 10000) == 252 and permutation_count(5, 0, 100) == 100
    assert permutation_count(2, 1, 10000) == 36 and permutation_count(5, 1, 10000) == 252


# ---------------------------------------------------------------------------------------------- jobs and tasks
LAKE = {"id": "FrozenLake-v1", "kwargs": {"is_slippery": True}}


def study(n_fit: int = 4, instances_per_job: int | str = "auto", **comparisons: dict):
    experiment = {"agent": "rlpipe.agents.RandomAgent", "train_env": LAKE, "fit_budget": 10, "n_fit": n_fit,
                  "instances_per_job": instances_per_job}
    return validate_study({"seed": 3, "experiments": {"a": experiment, "b": dict(experiment)},
                           "adastop": comparisons or {"c": {"experiments": ["a", "b"], "n": 5}}})


def test_batches_are_cells_of_the_comparisons_n_from_n_fit_on():
    s = study(n_fit=4)
    spec = s.experiment("a")
    assert flow.batch_size(s.adastop.values(), spec) == 5
    assert flow.batch_instances(spec, 5, 0) == range(4, 5) and flow.batch_instances(spec, 5, 1) == range(5, 10)
    assert flow.adastop_batches(spec, 5, range(0, 5)) == [0] and flow.adastop_batches(spec, 5, range(5, 10)) == [1]
    assert flow.plain_batches(spec, range(0, 4)) == [0, 1, 2, 3] and flow.plain_batches(spec, range(2, 3)) == [2]
    assert flow.adastop_batches(study(n_fit=10).experiment("a"), 5, range(5, 10)) == []
    two = study(c={"experiments": ["a", "b"], "n": 6}, d={"experiments": ["a", "b"], "n": 4})
    assert flow.batch_size(two.adastop.values(), two.experiment("a")) == 2  # each interim of both: whole jobs
    capped = study(instances_per_job=1)
    assert flow.batch_size(capped.adastop.values(), capped.experiment("a")) == 1


@pytest.mark.parametrize("stage", ["fit", "evaluate"])
def test_an_instance_has_the_same_task_in_either_flow(stage):
    """So the plain run keeps an instance the AdaStop flow made (raising n_fit), and the other way round."""
    s = study(n_fit=4)
    batch = flow.task_batch(stage, s.experiment("a"), s.root, 5, 1)
    assert batch.instances == [5, 6, 7, 8, 9]
    wider = dataclasses.replace(s.experiment("a"), n_fit=10)
    build = {"fit": tasks.fit_task, "evaluate": tasks.eval_task}[stage]
    assert [t.task_hash() for t in batch.tasks()] == [build(wider, s.root, i).task_hash() for i in range(5, 10)]
    with pytest.raises(IndexError, match="plain run"):
        flow.task_batch(stage, study(n_fit=5).experiment("a"), s.root, 5, 0)


def test_the_seed_of_a_comparison_is_keyed_by_root_and_name():
    seed = flow.adastop_seed(ROOT, "c")
    assert seed == flow.adastop_seed(np.random.SeedSequence(11), "c") and 0 <= seed < 2**32
    assert seed != flow.adastop_seed(ROOT, "d") and seed != flow.adastop_seed(np.random.SeedSequence(12), "c")
    s = study()
    t = flow.adastop_task(s.adastop["c"], s.root)
    assert t.seed == flow.adastop_seed(s.root, "c") and flow.AdastopTask.from_json(t.to_json()) == t


def test_a_spec_names_its_interims_instances():
    spec = AdastopSpec(name="c", experiments=("a", "b"), comparisons=((0, 1),), n=3, K=4)
    assert spec.interim_instances(2) == range(6, 9) and spec.max_instances == 12 and spec.pair_names() == [("a", "b")]


# ---------------------------------------------------------------------------------------------- report tables
def test_the_tables_of_a_finished_comparison():
    t = task(["e0", "e1", "e2"], n=4, K=3, B=1000)
    table = tables([0.0, None, 6.0], 12, scale=0.3)
    state = flow.interim_state(t, flow.replay(t, table, 3), {name: dict(enumerate(v)) for name, v in table.items()})
    decisions = decisions_table(state)
    assert list(decisions.decision) == ["equal", "smaller", "smaller"]
    assert list(decisions.decided_at_interim) == [2, 0, 0]
    assert decisions.loc[1, "mean_second"] == pytest.approx(table["e2"][:4].mean())
    assert list(decisions.n_first) == [12, 12, 12] and list(decisions.n_second) == [12, 4, 4]
    scores = scores_table(state)
    assert len(scores) == 12 + 12 + 4 and list(scores.columns) == ["experiment", "instance", "interim", "score"]
    seeds = seeds_table(state).set_index("experiment")
    assert seeds.loc["e2", "seeds"] == 4 and seeds.loc["e0", "interims"] == 3 and seeds.loc["e0", "max_seeds"] == 12
    assert figure(state, scores).axes  # the figure draws


def test_rerun_table_adastop():
    """config/README.md's "What a change reruns": a comparison changes no job of the plain run; its settings change
    its interims' task, and its n how the flow's jobs hold instances, never an instance's task (so they are kept)."""
    experiment = {"agent": "rlpipe.agents.RandomAgent", "train_env": LAKE, "fit_budget": 10, "n_fit": 2}
    base = {"seed": 3, "experiments": {"a": experiment, "b": dict(experiment)}}
    without = validate_study(base)
    with_section = validate_study({**base, "adastop": {"c": {"experiments": ["a", "b"], "n": 3}}})
    other = validate_study({**base, "adastop": {"c": {"experiments": ["a", "b"], "n": 4, "alpha": 0.1}}})
    for name in ("a", "b"):
        for s in (with_section, other):
            for stage in ("fit", "evaluate"):
                assert tasks.task_batch(stage, s.experiment(name), s.root, 0).to_json() == tasks.task_batch(
                    stage, without.experiment(name), without.root, 0).to_json()
            assert (tasks.aggregate_task(s.experiment(name), s.root, s.report).task_hash()
                    == tasks.aggregate_task(without.experiment(name), without.root, without.report).task_hash())
    first, second = (flow.adastop_task(s.adastop["c"], s.root) for s in (with_section, other))
    assert first.task_hash() != second.task_hash() and first.seed == second.seed
    three = flow.task_batch("fit", with_section.experiment("a"), with_section.root, 3, 1).tasks()  # instances 3-5
    four = flow.task_batch("fit", other.experiment("a"), other.root, 4, 1).tasks()  # instances 4-7
    assert three[1].task_hash() == four[0].task_hash()  # instance 4, whichever job holds it
