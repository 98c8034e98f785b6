"""The report's pages of the opt-in targets' results: what they left on disk, never recomputed, flagged when stale."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rlpipe.core.opt_in_pages import write_adastop_page, write_tuning_page
from rlpipe.io.paths import StudyPaths
from rlpipe.io.provenance import files_state

PNG = b"\x89PNG\r\n\x1a\nfake"


def selection(study: str) -> dict:
    row = {"candidate": "0", "trial": 3, "init_kwargs": {"learning_rate": 0.3}, "search_score": 0.75,
           "confirmed_score": 0.7, "ci_low": 0.6, "ci_high": 0.8, "p_value": 0.2, "p_adjusted": 0.6, "chosen": False,
           "written": False}
    current = {**row, "candidate": "current", "trial": None, "init_kwargs": {}, "p_value": None, "p_adjusted": None,
               "chosen": True, "search_score": None, "confirmed_score": 0.69}
    return {"study": study, "decision": "refused", "reason": "not shown better", "candidates": [row, current]}


def test_the_tuning_page_shows_the_decision_the_confirmed_scores_and_the_plots(tmp_path: Path) -> None:
    paths = StudyPaths(tmp_path)
    folder = paths.experiment("ql").optimize
    folder.folder.mkdir(parents=True)
    folder.selection.write_text(json.dumps(selection("ql-abc")))
    folder.best_init_kwargs.write_text("best_trial: 3\nbest_value: 0.75\ntrials: {complete: 8, pruned: 2}\n")
    folder.history_plot.write_bytes(PNG)
    output = tmp_path / "tuning.html"
    write_tuning_page({"ql": "ql-abc", "pg": "pg-def"}, paths, output)
    page = output.read_text()
    assert "<strong>refused</strong>: not shown better." in page
    assert "Trials: 8 complete, 2 pruned; best search score 0.75 (trial 3)" in page
    assert '{"learning_rate": 0.3}' in page and ">0.69<" in page  # the current settings' confirmed score
    assert page.count("data:image/png;base64,") == 1  # the history plot; the importance plot is missing
    assert "pg</h3><p class='note'>Not tuned yet" in page  # an experiment the optimize target has not run
    assert "config now defines study" not in page

    write_tuning_page({"ql": "ql-new"}, paths, output)  # the optimize section changed since
    assert "These results are of study ql-abc; the config now defines study ql-new" in output.read_text()


def test_the_adastop_page_shows_decisions_and_seeds_and_flags_other_settings(tmp_path: Path) -> None:
    paths = StudyPaths(tmp_path)
    folder = paths.adastop("fl")
    folder.folder.mkdir(parents=True)
    pd.DataFrame({"pair": ["a vs b"], "decision": ["larger"], "git_commit": ["x"]}).to_csv(folder.decisions_csv, index=False)
    pd.DataFrame({"experiment": ["a", "b"], "seeds": [4, 4]}).to_csv(folder.seeds_csv, index=False)
    (folder.folder / "interim-0.json").write_text(json.dumps({"task_hash": "h0"}))
    (folder.folder / "interim-1.json").write_text(json.dumps({"task_hash": "h1"}))
    output = tmp_path / "adastop.html"
    write_adastop_page({"fl": "h1", "other": "h2"}, paths, output)
    page = output.read_text()
    assert "<td>a vs b</td>" in page and "<td>larger</td>" in page and "git_commit" not in page
    assert "Seeds each experiment needed" in page
    assert "other settings" not in page.split("other</h3>")[0]  # the last interim is the config's
    assert "other</h3><p class='note'>Not run yet" in page
    write_adastop_page({"fl": "changed"}, paths, output)
    assert "made with other settings than the config's" in output.read_text()


def test_the_pages_state_changes_when_a_file_they_read_does(tmp_path: Path) -> None:
    paths = StudyPaths(tmp_path)
    files = paths.tuning_page_inputs(["ql"])
    before = files_state(files)
    assert files_state(files) == before
    files[0].parent.mkdir(parents=True)
    files[0].write_text("{}")
    assert files_state(files) != before
