"""The provenance page: the config as run, its hash, the seed, the code and the machine; stale commits flagged."""
from __future__ import annotations

import json
from pathlib import Path

from rlpipe.core.provenance_page import study_provenance, write_provenance
from rlpipe.io.paths import StudyPaths
from rlpipe.io.provenance import code_version, library_versions, stable_hash

CONFIG = {"seed": 3, "experiments": {"ql": {"agent": "rlpipe.agents.QLearningAgent", "fit_budget": 10}}}


def summary(folder: Path, experiment: str, commit: str | None) -> Path:
    path = folder / experiment / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"experiment": experiment, "n_fit": 2, "task_hash": "0123456789abcdef",
                                "root_seed": {"entropy": 3, "spawn_key": []}, "versions": library_versions(),
                                "git": {"commit": commit, "dirty": False}}))
    return path


def test_the_page_records_config_hash_seed_code_and_each_experiment(tmp_path: Path) -> None:
    current = code_version()["commit"]
    files = [summary(tmp_path, "ql", current)]
    record = study_provenance(CONFIG, ["config.yaml"], files)
    assert record["config"] == CONFIG and record["config_hash"] == stable_hash(CONFIG)
    assert record["root_seed"] == 3 and record["config_files"] == ["config.yaml"]
    assert record["git"] == code_version() and record["versions"] == library_versions()
    assert record["machine"]["cpus"] >= 1 and record["machine"]["host"]
    assert record["experiments"] == [{"experiment": "ql", "n_fit": 2, "task_hash": "0123456789abcdef", "root_seed": 3,
                                      "git_commit": current, "git_dirty": False, "rlpipe": library_versions()["rlpipe"]}]
    assert record["other_commits"] == []

    paths = StudyPaths(tmp_path / "results")
    write_provenance(record, paths)
    assert json.loads(paths.provenance_json.read_text())["config_hash"] == stable_hash(CONFIG)
    page = paths.provenance_html.read_text()
    for shown in (stable_hash(CONFIG), "QLearningAgent", "0123456789abcdef", library_versions()["numpy"]):
        assert shown in page
    assert "other commits" not in page


def test_results_made_at_another_commit_are_flagged(tmp_path: Path) -> None:
    old = "0" * 40
    record = study_provenance(CONFIG, [], [summary(tmp_path, "ql", old)])
    assert record["other_commits"] == [old]
    paths = StudyPaths(tmp_path / "results")
    write_provenance(record, paths)
    assert f"made at other commits</strong> ({old})" in paths.provenance_html.read_text()


def test_config_text_is_escaped_in_the_page(tmp_path: Path) -> None:
    config = {**CONFIG, "note": "<script>alert(1)</script>"}
    paths = StudyPaths(tmp_path / "results")
    write_provenance(study_provenance(config, [], []), paths)
    assert "<script>" not in paths.provenance_html.read_text()
