"""End-to-end: the opt-in ``adastop`` target on a tiny study, after a plain run whose instances it reuses.

Value iteration against a random agent on slippery FrozenLake is decided ("larger") before the last interim; two
experiments of one config under two names (different seeds) run every interim and end "equal". The plain run's
instances are read, never rewritten; the instances the flow adds are kept by the plain run when ``n_fit`` grows.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from adastop import MultipleAgentsComparator

from result_tables import read_results_csv
from snakemake_runner import PNG_MAGIC, ok, run_snakemake, snapshot

pytestmark = pytest.mark.e2e

LAKE = {"id": "FrozenLake-v1", "kwargs": {"is_slippery": True}}
EVAL = {"eval_horizon": 100, "n_simulations": 20, "gamma": 1.0}
# instances_per_job 3: one plain job per experiment and stage (fewer, faster jobs); the flow's hold n = 3 instances
RANDOM = {"agent": "rlpipe.agents.RandomAgent", "train_env": LAKE, "fit_budget": 10, "n_fit": 2, "eval_kwargs": EVAL,
          "writer": {"print_log": False}, "instances_per_job": 3}
STUDY = {
    "seed": 5,
    "report": {"bootstrap_samples": 200},
    "experiments": {
        "vi": {"agent": "rlpipe.agents.ValueIterationAgent", "train_env": LAKE, "init_kwargs": {"gamma": 0.99},
               "fit_budget": 50, "n_fit": 2, "eval_kwargs": EVAL, "writer": {"print_log": False}, "instances_per_job": 3},
        "rand": RANDOM,
        "rand_twin": RANDOM,  # the same config under another name: other seeds, the same distribution of scores
    },
    "adastop": {
        # n = 3: 1/C(6, 3) = 1/20 is above alpha/K, so interim 0 cannot decide; interim 1 can (1/400)
        "vi_vs_random": {"experiments": ["vi", "rand"], "n": 3, "K": 3},
        "twins": {"experiments": ["rand", "rand_twin"], "n": 3, "K": 2},
    },
}
N_FIT = 2


def comparison(workdir: Path, name: str) -> Path:
    return workdir / "results" / "adastop" / name


def instance_files(workdir: Path, experiment: str, instances: range, names: tuple[str, ...] | None = None) -> dict:
    """mtime and bytes of the instances' files (``names`` only, if given)."""
    files = {}
    for i in instances:
        folder = workdir / "results" / experiment / "instances" / str(i)
        files.update({f"{i}/{k}": v for k, v in snapshot(folder).items() if names is None or k in names})
    return files


def evaluation_mean(workdir: Path, experiment: str, instance: int) -> float:
    return float(pd.read_parquet(workdir / "results" / experiment / "instances" / str(instance) / "evaluation.parquet")
                 .score.mean())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A plain run (its fits and evaluations), then `snakemake adastop`: what each left on disk."""
    workdir = tmp_path_factory.mktemp("adastop")
    ok(run_snakemake(workdir, STUDY, "--until", "evaluate"))
    plain = {e: instance_files(workdir, e, range(N_FIT)) for e in STUDY["experiments"]}
    plain_records = {e: snapshot(workdir / "results" / e / "batches") for e in STUDY["experiments"]}
    adastop = ok(run_snakemake(workdir, None, "adastop"))
    return {"workdir": workdir, "plain": plain, "plain_records": plain_records, "adastop": adastop}


def test_a_clear_difference_is_decided_before_the_last_interim(runs):
    folder = comparison(runs["workdir"], "vi_vs_random")
    decisions = read_results_csv(folder / "decisions.csv")
    assert decisions[["pair", "decision", "decided_at_interim", "n_first", "n_second"]].values.tolist() == [
        ["vi vs rand", "larger", 1, 6, 6]]
    assert (folder / "interim-1.json").is_file() and not (folder / "interim-2.json").exists()  # 2 of K = 3 interims
    state = json.loads((folder / "interim-1.json").read_text())
    assert state["finished"] and state["still_compared"] == [] and state["n_scores"] == {"vi": 6, "rand": 6}
    assert state["root_seed"] == {"entropy": 5, "spawn_key": []} and state["versions"]["adastop"] == "0.1.3"
    interim0 = json.loads((folder / "interim-0.json").read_text())
    assert not interim0["finished"] and interim0["still_compared"] == ["vi", "rand"]
    seeds = read_results_csv(folder / "seeds.csv")
    assert seeds[["experiment", "seeds", "max_seeds", "interims"]].values.tolist() == [["vi", 6, 9, 2], ["rand", 6, 9, 2]]
    assert (folder / "adastop.png").read_bytes().startswith(PNG_MAGIC)
    assert "| vi vs rand | larger" in (folder / "decisions.md").read_text()


def test_one_config_under_two_names_runs_every_interim_and_ends_equal(runs):
    folder = comparison(runs["workdir"], "twins")
    decisions = read_results_csv(folder / "decisions.csv")
    assert decisions[["pair", "decision", "decided_at_interim", "n_first", "n_second"]].values.tolist() == [
        ["rand vs rand_twin", "equal", 1, 6, 6]]
    assert json.loads((folder / "interim-1.json").read_text())["finished"]
    scores = read_results_csv(folder / "scores.csv")
    rand, twin = (scores[scores.experiment == e].score.to_numpy() for e in ("rand", "rand_twin"))
    assert not np.array_equal(rand, twin)  # other seeds, other scores


@pytest.mark.parametrize("name", ["vi_vs_random", "twins"])
def test_the_scores_are_the_instances_evaluation_means_and_adastop_decides_the_same_on_them(runs, name):
    workdir = runs["workdir"]
    folder = comparison(workdir, name)
    scores = read_results_csv(folder / "scores.csv")
    for row in scores.itertuples():
        assert row.score == pytest.approx(evaluation_mean(workdir, row.experiment, row.instance), rel=1e-12, abs=1e-15)
    settings = STUDY["adastop"][name]
    state = json.loads(sorted(folder.glob("interim-*.json"))[-1].read_text())
    plain = MultipleAgentsComparator(n=settings["n"], K=settings["K"], B=10000, alpha=0.05,
                                     comparisons=np.array([[0, 1]]), seed=state["seed"])
    values = {e: np.empty(0) for e in settings["experiments"]}
    for k in range(state["interim"] + 1):
        for e in settings["experiments"]:
            values[e] = scores[(scores.experiment == e) & (scores.interim <= k)].sort_values("instance").score.to_numpy()
        plain.partial_compare(values, verbose=False)
    assert {str(pair): d for pair, d in plain.decisions.items()} == {"[0 1]": state["pairs"][0]["decision"]}
    assert plain.is_finished


def test_the_plain_runs_instances_are_reused_not_rewritten(runs):
    workdir = runs["workdir"]
    for experiment in STUDY["experiments"]:
        assert instance_files(workdir, experiment, range(N_FIT)) == runs["plain"][experiment], experiment
        plain_records = {k: v for k, v in snapshot(workdir / "results" / experiment / "batches").items()
                         if not k.startswith("adastop-")}
        assert plain_records == runs["plain_records"][experiment], experiment
        for record in (workdir / "results" / experiment / "batches").glob("adastop-*.json"):
            made = json.loads(record.read_text())
            assert min(made["instances"]) >= N_FIT and made["kept"] == [], record  # only instances beyond n_fit
    assert "rule fit:" not in runs["adastop"].stdout + runs["adastop"].stderr
    # rand, in both comparisons, had each of its instances 2..5 fitted once, by the flow's jobs in cells of n = 3
    made = sorted(json.loads(p.read_text())["instances"]
                  for p in (workdir / "results" / "rand" / "batches").glob("adastop-fit-*.json"))
    assert made == [[2], [3, 4, 5]]


def test_a_second_run_has_nothing_to_do_and_more_plain_seeds_keep_the_flows_instances(runs):
    workdir = runs["workdir"]
    again = ok(run_snakemake(workdir, None, "adastop"))
    assert "Nothing to be done" in again.stdout + again.stderr
    before = {name: {f: (comparison(workdir, name) / f).read_text() for f in ("decisions.csv", "scores.csv")}
              for name in STUDY["adastop"]}
    made_by_flow = instance_files(workdir, "rand", range(2, 6), ("agent.ckpt", "writer.parquet"))
    config = copy.deepcopy(STUDY)
    config["experiments"]["rand"]["n_fit"] = 5  # instances 2-4, the flow's, become the plain run's
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    ok(run_snakemake(workdir, None, "--until", "evaluate"))  # plain jobs of instances 0-2 and 3-4
    logs = "".join(p.read_text() for p in (workdir / "results" / "rand" / "batches").glob("fit-*.log"))
    for i in (2, 3, 4):
        assert f"rand[{i}]: kept: fitted for this task by another job" in logs
    ok(run_snakemake(workdir, None, "adastop"))
    assert "rand[5]: kept" in (workdir / "results" / "rand" / "batches" / "adastop-fit-1.log").read_text()
    assert instance_files(workdir, "rand", range(2, 6), ("agent.ckpt", "writer.parquet")) == made_by_flow
    for name in STUDY["adastop"]:  # the same instances, the same scores, the same decisions
        for f in ("decisions.csv", "scores.csv"):
            assert (comparison(workdir, name) / f).read_text() == before[name][f], (name, f)
