"""What the AdaStop rules (``workflow/rules/adastop.smk``) call: their tasks, and input functions that walk the interims.

The interims are Snakemake checkpoints: interim ``k``'s inputs are the evaluations of the instances it adds, for the
experiments that interim ``k - 1`` left undecided (read from its JSON), so ``interim_file(j)`` (a checkpoint's
``get``) raises until interim ``j`` has run, and Snakemake re-plans then. Nothing here imports the adastop package.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlpipe.core import adastop as flow
from rlpipe.errors import ConfigError
from rlpipe.io.paths import StudyPaths
from rlpipe.spec.adastop import AdastopSpec
from rlpipe.spec.experiment import Study

PATHS = StudyPaths()
PREFIX = flow.PREFIX  # the record names of the flow's fit and evaluate jobs: batches/adastop-fit-<b>.json
InterimFile = Callable[[int], str]  # the JSON of interim k of the comparison: a checkpoint's output


def interim_files(checkpoints: Any, name: str) -> InterimFile:
    """The JSON of interim ``k`` of comparison ``name``, once its checkpoint (``adastop_interim``, from the Snakefile's
    ``checkpoints``) has run; until then ``get`` raises, and Snakemake re-plans after running it."""
    return lambda k: str(checkpoints.adastop_interim.get(comparison=name, interim=k).output.state)


def comparison(study: Study, name: str) -> AdastopSpec:
    try:
        return study.adastop[name]
    except KeyError:
        raise ConfigError(f"no AdaStop comparison named '{name}' (the config's adastop section has: "
                          f"{', '.join(study.adastop) or 'none'})") from None


def batch_task_json(study: Study, experiment: str, stage: str, batch: str | int) -> str:
    """The tasks of the experiment's AdaStop job ``batch`` of ``stage``: the rule's params, so the rerun trigger."""
    spec = study.experiment(experiment)
    size = flow.batch_size(study.adastop.values(), spec)
    return flow.task_batch(stage, spec, study.root, size, int(batch)).to_json()


def decide_task_json(study: Study, name: str) -> str:
    """What an interim's decision job computes (the comparison's settings and seed), as JSON."""
    return flow.adastop_task(comparison(study, name), study.root).to_json()


def interim_records(study: Study, name: str, interim: int, compared: list[str]) -> list[str]:
    """The records of the evaluate jobs that hold the instances interim ``interim`` adds to each experiment of
    ``compared``: the plain run's below its ``n_fit``, the flow's own from there on."""
    instances = comparison(study, name).interim_instances(interim)
    records = []
    for experiment in compared:
        spec = study.experiment(experiment)
        paths = PATHS.experiment(experiment)
        plain = range(instances.start, min(instances.stop, spec.n_fit))
        records += [str(paths.batch("evaluate", b).record) for b in (flow.plain_batches(spec, plain) if plain else [])]
        size = flow.batch_size(study.adastop.values(), spec)
        records += [str(paths.batch(f"{PREFIX}evaluate", b).record) for b in flow.adastop_batches(spec, size, instances)]
    return records


def interim_inputs(study: Study, name: str, interim: int | str, interim_file: InterimFile) -> dict[str, list[str]]:
    """Inputs of interim ``interim``'s decision job: the evaluate records of every instance it replays (interims 0 to
    ``interim``) and the previous interim's JSON, which says which experiments are still compared."""
    spec, interim = comparison(study, name), int(interim)
    if interim >= spec.K:
        raise ConfigError(f"AdaStop comparison '{name}' has interims 0 to {spec.K - 1} (K = {spec.K}), not {interim}")
    earlier = [interim_file(j) for j in range(interim)]
    states = [_read(path) for path in earlier]
    if states and states[-1]["finished"]:
        raise ConfigError(f"AdaStop comparison '{name}' finished at interim {interim - 1}: there is no interim {interim}")
    compared = [list(spec.experiments)] + [state["still_compared"] for state in states]
    records = [r for j in range(interim + 1) for r in interim_records(study, name, j, compared[j])]
    return {"records": list(dict.fromkeys(records)), "previous": earlier[-1:]}


def final_interim(study: Study, name: str, interim_file: InterimFile) -> str:
    """The JSON of the comparison's last interim: the first that finished it (at the latest, interim K - 1)."""
    spec = comparison(study, name)
    for k in range(spec.K):
        path = interim_file(k)
        if _read(path)["finished"]:
            return path
    raise ConfigError(f"AdaStop comparison '{name}' is not finished after its K = {spec.K} interims ({path})")


def adastop_outputs(study: Study) -> list[str]:
    """What the ``adastop`` target builds: the tables and the figure of every comparison."""
    if not study.adastop:
        print("rlpipe: the config has no adastop section: no AdaStop comparison to run", file=sys.stderr)
    return [str(p) for name in study.adastop for p in report_files(name)]


def report_files(name: str) -> list[Path]:
    paths = PATHS.adastop(name)
    return [paths.decisions_csv, paths.decisions_md, paths.scores_csv, paths.seeds_csv, paths.plot]


def caption_facts(study: Study, name: str, final: str | None = None) -> dict[str, Any]:
    """What the report's captions of a comparison state: its settings, experiments and, once it has run, the seeds
    each experiment used and the interims run."""
    spec = comparison(study, name)
    facts: dict[str, Any] = {"name": name, "experiments": ", ".join(spec.experiments), "n": spec.n, "K": spec.K,
                             "alpha": spec.alpha, "beta": spec.beta, "B": spec.B, "max_seeds": spec.max_instances}
    if final and Path(final).is_file():
        state = _read(final)
        facts["interims"] = state["interim"] + 1
        facts["seeds"] = ", ".join(f"{e}: {state['n_scores'][e]}" for e in spec.experiments if e in state["n_scores"])
    return facts


def _read(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
