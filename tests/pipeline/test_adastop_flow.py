"""rlpipe.pipeline.adastop: the inputs of the AdaStop rules, walked interim by interim (without Snakemake)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlpipe.errors import ConfigError
from rlpipe.pipeline import adastop as ra
from rlpipe.pipeline.workflow import all_outputs
from rlpipe.spec.experiment import validate_study

LAKE = {"id": "FrozenLake-v1", "kwargs": {"is_slippery": True}}
RANDOM = {"agent": "rlpipe.agents.RandomAgent", "train_env": LAKE, "fit_budget": 10, "n_fit": 2}
STUDY = validate_study({"seed": 5, "experiments": {"a": RANDOM, "b": {**RANDOM, "n_fit": 4}, "c": RANDOM},
                        "adastop": {"ab": {"experiments": ["a", "b", "c"], "n": 3, "K": 3}}})


def records(experiment: str, *names: str) -> list[str]:
    return [f"results/{experiment}/batches/{name}.json" for name in names]


def test_adastop_is_not_part_of_the_default_target():
    assert [path for path in all_outputs(STUDY) if "adastop" in path] == ["results/adastop.html"]  # the report's page
    assert ra.adastop_outputs(STUDY) == [f"results/adastop/ab/{name}" for name in
                                         ("decisions.csv", "decisions.md", "scores.csv", "seeds.csv", "adastop.png")]


def test_an_interim_reads_the_plain_runs_evaluations_below_n_fit_and_the_flows_beyond():
    assert ra.interim_records(STUDY, "ab", 0, ["a", "b"]) == [
        *records("a", "evaluate-0", "evaluate-1", "adastop-evaluate-0"), *records("b", "evaluate-0", "evaluate-1", "evaluate-2")]
    assert ra.interim_records(STUDY, "ab", 1, ["b"]) == records("b", "evaluate-3", "adastop-evaluate-1")


def test_interim_inputs_follow_the_experiments_still_compared(tmp_path: Path):
    states = {0: {"finished": False, "still_compared": ["a", "b"]}, 1: {"finished": True, "still_compared": [], "interim": 1,
                                                                  "n_scores": {"a": 6, "b": 6, "c": 3}}}
    for k, state in states.items():
        (tmp_path / f"interim-{k}.json").write_text(json.dumps(state))

    def interim_file(k: int) -> str:
        return str(tmp_path / f"interim-{k}.json")

    first = ra.interim_inputs(STUDY, "ab", "0", interim_file)
    assert first["previous"] == [] and records("c", "adastop-evaluate-0")[0] in first["records"]
    second = ra.interim_inputs(STUDY, "ab", "1", interim_file)
    assert second["previous"] == [interim_file(0)]
    assert set(second["records"]) == set(first["records"]) | set(records("a", "adastop-evaluate-1")) | set(
        records("b", "evaluate-3", "adastop-evaluate-1"))  # c was decided at interim 0: none of its instances 3-5
    with pytest.raises(ConfigError, match="finished at interim 1: there is no interim 2"):
        ra.interim_inputs(STUDY, "ab", "2", interim_file)
    assert ra.final_interim(STUDY, "ab", interim_file) == interim_file(1)
    facts = ra.caption_facts(STUDY, "ab", interim_file(1))
    assert facts["max_seeds"] == 9 and facts["interims"] == 2 and facts["seeds"] == "a: 6, b: 6, c: 3"


def test_a_comparison_not_in_the_config_is_named():
    with pytest.raises(ConfigError, match="no AdaStop comparison named 'ba' .*: ab"):
        ra.decide_task_json(STUDY, "ba")
