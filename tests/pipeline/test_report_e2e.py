"""End-to-end: the default target's report shows what the opt-in targets (optimize, adastop) left on disk."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from snakemake_runner import TINY, job_counts, ok, report_items, run_snakemake

pytestmark = pytest.mark.e2e


def study() -> dict:
    config = copy.deepcopy(TINY)
    ql, rand = config["experiments"]["ql"], config["experiments"]["rand"]
    ql["optimize"] = {"n_trials": 3, "n_fit": 1, "n_optuna_workers": 1, "confirm": {"top_k": 1, "n_fit": 5},
                      "search_space": {"learning_rate": {"type": "float", "low": 0.05, "high": 0.5}}}
    rand.update(train_env=ql["train_env"], eval_kwargs=ql["eval_kwargs"])  # evaluated alike: AdaStop may compare them
    config["adastop"] = {"ql_vs_random": {"experiments": ["ql", "rand"], "n": 2, "K": 2}}
    return config


def test_the_report_holds_the_tuning_and_adastop_results_once_their_targets_ran(tmp_path: Path) -> None:
    config = study()
    ok(run_snakemake(tmp_path, config))
    results = tmp_path / "results"
    assert "<h3>ql</h3><p class='note'>Not tuned yet" in (results / "tuning.html").read_text()
    assert "<h3>ql_vs_random</h3><p class='note'>Not run yet" in (results / "adastop.html").read_text()

    ok(run_snakemake(tmp_path, None, "optimize", "adastop"))
    assert job_counts(ok(run_snakemake(tmp_path, None, "-n")).stdout) == {"tuning_page": 1, "adastop_page": 1, "all": 1}
    ok(run_snakemake(tmp_path, None))
    ok(run_snakemake(tmp_path, None, "--report", str(tmp_path / "report.html")))
    items = report_items(tmp_path / "report.html")
    tuning, adastop = items["results/tuning.html"], items["results/adastop.html"]
    assert "confirmed score" in tuning["caption"] and "family-wise error" in adastop["caption"]

    page = (results / "tuning.html").read_text()
    assert "Not tuned yet" not in page and "best search score" in page and "data:image/png;base64," in page
    decision = (results / "ql" / "optimize" / "best_init_kwargs.yaml").read_text()
    assert any(word in page for word in ("<strong>written</strong>", "<strong>refused</strong>", "<strong>kept</strong>"))
    assert "selection" in decision
    page = (results / "adastop.html").read_text()
    assert "<td>ql vs rand</td>" in page and "Seeds each experiment needed" in page  # the deterministic lake: ql wins
    assert "<td>larger</td>" in page

    config = study()  # a comparison under other settings: the page says its decisions are not the config's
    config["adastop"]["ql_vs_random"]["B"] = 5000
    ok(run_snakemake(tmp_path, config))
    assert "made with other settings than the config's" in (results / "adastop.html").read_text()
