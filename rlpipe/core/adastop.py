"""AdaStop as a pipeline flow: which instances each interim fits, and the decisions, replayed on their scores.

At interim ``k`` of a comparison, every experiment still in an undecided pair gets the instances
``[k*n, (k+1)*n)``. Instance ``i`` of an experiment is the same whatever the interim (its seeds are keyed by
(root seed, experiment, i) only), so an instance below the experiment's ``n_fit`` is the plain run's, fitted and
evaluated by its ``fit``/``evaluate`` jobs, and an instance from ``n_fit`` on is fitted by the AdaStop flow's own
jobs, into the experiment's folder as any instance, with records ``batches/adastop-fit-<b>.json``. Those jobs
hold the experiment's instances by fixed cells of :func:`batch_size` instances (a cell ``b`` is
``[b*size, (b+1)*size)`` from ``n_fit`` on), the same for every comparison, so two comparisons never fit one
instance twice.

Each interim's decision job replays the comparison from scratch: a new ``adastop.MultipleAgentsComparator`` with
the comparison's seed, fed interim 0, 1, …, k's scores, so its decisions are those of one comparator fed
interim by interim (adastop's permutations are drawn in the same order). The ``adastop`` package is imported
only by :func:`new_comparator`, so a plain run never loads it.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.core.tasks import TaskBatch, eval_task, fit_task, job_batches
from rlpipe.errors import RlpipeError
from rlpipe.io.atomic import write_json
from rlpipe.io.paths import StudyPaths
from rlpipe.io.provenance import canonical_json, software, stable_hash, utc_now
from rlpipe.runtime.seeding import keyed_child, name_key, seed_record
from rlpipe.spec.adastop import AdastopSpec
from rlpipe.spec.experiment import ExperimentSpec

PREFIX = "adastop-"  # the flow's job records: batches/adastop-fit-<b>.json, batches/adastop-evaluate-<b>.json
ADASTOP_KEY = name_key("adastop")  # the root seed's keyed child of AdaStop comparisons, then the comparison's name
CONTINUE = "continue"  # adastop's decision of a pair not decided yet


# ---------------------------------------------------------------------------------------------- which jobs
def batch_size(comparisons: Iterable[AdastopSpec], spec: ExperimentSpec) -> int:
    """Instances per AdaStop job of experiment ``spec``: the greatest common divisor of the ``n`` of the comparisons
    that compare it (so each interim's instances are whole jobs), and of its ``instances_per_job`` when it sets one
    (a job never holds more than it allows)."""
    sizes = [c.n for c in comparisons if spec.name in c.experiments]
    if spec.instances_per_job != "auto":
        sizes.append(int(spec.instances_per_job))
    return math.gcd(*sizes) if sizes else 1


def batch_instances(spec: ExperimentSpec, size: int, batch: int) -> range:
    """The instances of the experiment's AdaStop job ``batch``: its cell, but those of the plain run (< n_fit)."""
    return range(max(batch * size, spec.n_fit), (batch + 1) * size)


def adastop_batches(spec: ExperimentSpec, size: int, instances: range) -> list[int]:
    """The AdaStop jobs of the experiment that hold ``instances`` from its ``n_fit`` on."""
    start = max(instances.start, spec.n_fit)
    if start >= instances.stop:
        return []
    return list(range(start // size, (instances.stop - 1) // size + 1))


def plain_batches(spec: ExperimentSpec, instances: range) -> list[int]:
    """The plain run's jobs (``batches/fit-<b>.json``) that hold some of ``instances`` (those below ``n_fit``)."""
    return [b for b, held in enumerate(job_batches(spec)) if held.start < instances.stop and instances.start < held.stop]


def task_batch(stage: str, spec: ExperimentSpec, root: np.random.SeedSequence, size: int, batch: int) -> TaskBatch:
    """The tasks of the experiment's AdaStop job ``batch`` of ``stage`` ("fit" or "evaluate"): exactly those the plain
    run would give these instances with a larger ``n_fit`` (an instance's task does not depend on ``n_fit``), so
    either flow keeps the other's files of an instance."""
    instances = batch_instances(spec, size, batch)
    if not instances:
        raise IndexError(f"AdaStop job {batch} of '{spec.name}' would hold no instance: instances below "
                         f"{spec.n_fit} (n_fit) are the plain run's")
    wider = dataclasses.replace(spec, n_fit=instances.stop)  # instances beyond n_fit are built as n_fit were larger
    first = {"fit": fit_task, "evaluate": eval_task}[stage](wider, root, instances.start).record()
    return TaskBatch(stage=stage, first=first, instances=list(instances))


# ---------------------------------------------------------------------------------------------- what a decision job computes
@dataclass(frozen=True)
class AdastopTask:
    """What one interim's decision job computes: the comparison's settings and seed (its rerun trigger, with the
    records of the evaluations it reads)."""

    comparison: str
    root_seed: dict[str, Any]
    seed: int  # of adastop's permutations (its RandomState): from the root seed and the comparison's name
    experiments: list[str]
    comparisons: list[list[int]]
    n: int
    K: int
    alpha: float
    beta: float
    B: int

    def to_json(self) -> str:
        return canonical_json(self.record())

    @classmethod
    def from_json(cls, text: str) -> AdastopTask:
        return cls(**json.loads(text))

    def record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def task_hash(self) -> str:
        return stable_hash(self.record())

    def pair_names(self) -> list[tuple[str, str]]:
        return [(self.experiments[i], self.experiments[j]) for i, j in self.comparisons]


def adastop_seed(root: np.random.SeedSequence, comparison: str) -> int:
    """The seed of a comparison's permutations: the root's child keyed by ("adastop", the comparison's name), as an
    integer adastop's ``numpy.random.RandomState`` takes (32 bits). No other stream of rlpipe has this key."""
    return int(keyed_child(root, ADASTOP_KEY, name_key(comparison)).generate_state(1)[0])


def adastop_task(spec: AdastopSpec, root: np.random.SeedSequence) -> AdastopTask:
    return AdastopTask(comparison=spec.name, root_seed=seed_record(root), seed=adastop_seed(root, spec.name),
                       experiments=list(spec.experiments), comparisons=[list(pair) for pair in spec.comparisons],
                       n=spec.n, K=spec.K, alpha=spec.alpha, beta=spec.beta, B=spec.B)


# ---------------------------------------------------------------------------------------------- the replay
def new_comparator(n: int, K: int, B: int, comparisons: Sequence[Sequence[int]] | None, alpha: float, beta: float,
                   seed: int) -> Any:
    """A fresh ``adastop.MultipleAgentsComparator`` (adastop is imported here, and only here in the pipeline)."""
    from adastop import MultipleAgentsComparator

    # adastop indexes the comparisons with boolean masks (an array), and broadcasts n only if it is a Python int
    pairs = None if comparisons is None else np.asarray(comparisons, dtype=int).reshape(-1, 2)
    return MultipleAgentsComparator(n=int(n), K=int(K), B=int(B), comparisons=pairs, alpha=float(alpha),
                                    beta=float(beta), seed=int(seed))


def compared_agents(comparator: Any, n_agents: int) -> list[int]:
    """Indices of the agents still in an undecided pair of ``comparator`` (before its first interim: every agent of
    its comparisons, all of them if it compares every pair): those that get ``n`` more scores at its next interim."""
    if comparator.current_comparisons is None:
        return list(range(n_agents))
    return np.unique(np.asarray(comparator.current_comparisons, dtype=int)).tolist()


@dataclass
class Replay:
    """A comparator after its interims, with what each interim did (``history``: the agents it gave scores to, the
    pairs it decided, adastop's boundary and level spent)."""

    comparator: Any
    history: list[dict[str, Any]]


ScoreSource = Callable[[str, range], Sequence[float]]


def replay(task: AdastopTask, scores: ScoreSource | Mapping[str, Sequence[float]], interims: int) -> Replay:
    """Run the comparison's first ``interims`` interims (fewer if it finishes sooner) on ``scores``: for each
    experiment, its instances' scores in instance order (a mapping), or ``scores(experiment, instances)``."""
    source = scores if callable(scores) else (lambda e, instances: list(scores[e])[instances.start:instances.stop])
    comparator = new_comparator(task.n, task.K, task.B, task.comparisons, task.alpha, task.beta, task.seed)
    values = {name: np.empty(0) for name in task.experiments}
    history = []
    for k in range(min(interims, task.K)):
        compared = [task.experiments[i] for i in compared_agents(comparator, len(task.experiments))]
        for name in compared:
            new = np.asarray(source(name, range(k * task.n, (k + 1) * task.n)), dtype=float)
            if new.shape != (task.n,):
                raise RlpipeError(f"AdaStop '{task.comparison}', interim {k}: {task.n} scores of '{name}' needed "
                                  f"(instances {k * task.n}-{(k + 1) * task.n - 1}), got {new.size}")
            values[name] = np.concatenate([values[name], new])
        before = dict(comparator.decisions) if k else {}
        comparator.partial_compare(values, verbose=False)
        decided = [p for p, pair in enumerate(task.comparisons)
                   if before.get(str(np.asarray(pair)), CONTINUE) == CONTINUE != _decision(comparator, pair)]
        bk_inf, bk_sup = comparator.boundary[-1]
        history.append({"interim": k, "compared": compared, "decided": decided,
                        "boundary": [_finite(bk_inf), _finite(bk_sup)], "level_spent": float(comparator.level_spent)})
        if comparator.is_finished:
            break
    return Replay(comparator, history)


def _decision(comparator: Any, pair: Sequence[int]) -> str:
    return comparator.decisions[str(np.asarray(pair))]


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def interim_state(task: AdastopTask, result: Replay, scores: Mapping[str, Mapping[int, float]]) -> dict[str, Any]:
    """What an interim's JSON holds: decisions, the experiments still compared, every score used, provenance."""
    comparator, history = result.comparator, result.history
    decided_at = {p: step["interim"] for step in history for p in step["decided"]}
    finished = bool(comparator.is_finished)
    still = [] if finished else [task.experiments[i] for i in compared_agents(comparator, len(task.experiments))]
    first_interim = {name: {} for name in task.experiments}
    for step in history:
        for name in step["compared"]:
            for i in range(step["interim"] * task.n, (step["interim"] + 1) * task.n):
                first_interim[name][i] = step["interim"]
    return {
        "comparison": task.comparison,
        "interim": history[-1]["interim"],
        "finished": finished,
        "settings": {"n": task.n, "K": task.K, "alpha": task.alpha, "beta": task.beta, "B": task.B},
        "experiments": task.experiments,
        "pairs": [{"first": a, "second": b, "decision": _decision(comparator, pair),
                   "decided_at": decided_at.get(p)} for p, ((a, b), pair) in enumerate(zip(task.pair_names(), task.comparisons))],
        "compared": history[-1]["compared"],
        "still_compared": still,
        "n_scores": {name: int(count) for name, count in comparator.n_iters.items()},
        "scores": {name: [{"instance": i, "interim": first_interim[name][i], "score": float(scores[name][i])}
                          for i in sorted(first_interim[name])] for name in task.experiments},
        "history": history,
        "seed": task.seed,
        "root_seed": task.root_seed,
        "task_hash": task.task_hash(),
        **software(),  # the versions include adastop's
        "created": utc_now(),
    }


# ---------------------------------------------------------------------------------------------- the decision job
def decide_interim(task: AdastopTask, interim: int, results: StudyPaths, records: Sequence[Path],
                   output: Path) -> dict[str, Any]:
    """Interim ``interim``'s decisions, replayed from interim 0 on the scores of the instances that the evaluate
    jobs of ``records`` made (checked to be theirs first); written to ``output``."""
    from rlpipe.core.aggregation import per_instance_scores, read_instance_tables
    from rlpipe.core.batches import check_batch_outputs

    recorded: dict[str, set[int]] = {}
    by_experiment: dict[str, list[Path]] = {}
    for path in map(Path, records):
        record = json.loads(path.read_text())
        if record["stage"] != "evaluate":
            continue
        by_experiment.setdefault(record["experiment"], []).append(path)
        recorded.setdefault(record["experiment"], set()).update(int(i) for i in record["task_hashes"])
    for name, paths in by_experiment.items():
        check_batch_outputs(results.experiment(name), paths)
    read: dict[str, dict[int, float]] = {name: {} for name in task.experiments}

    def scores(name: str, instances: range) -> list[float]:
        missing = [i for i in instances if i not in recorded.get(name, ())]
        if missing:
            raise RlpipeError(f"AdaStop '{task.comparison}' needs the scores of instances {missing} of '{name}', whose "
                              "evaluate jobs are not among this job's inputs")
        paths = results.experiment(name)
        table = read_instance_tables(list(instances), [paths.instance(i) for i in instances], "evaluation")
        values = per_instance_scores(table)  # the score of an instance, as the aggregate stage computes it
        read[name].update({int(i): float(v) for i, v in values.items()})
        return [read[name][i] for i in instances]

    result = replay(task, scores, interim + 1)
    reached = result.history[-1]["interim"]
    if reached != interim:
        raise RlpipeError(f"AdaStop '{task.comparison}' finished at interim {reached}: there is no interim {interim}")
    state = interim_state(task, result, read)
    write_json(output, state)
    return state
