"""rlpipe.tuning.writeback: tuned init_kwargs written back surgically, validated, backed up, atomically."""
from __future__ import annotations

import math
import os
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from rlpipe.errors import ConfigError
from rlpipe.tuning.writeback import (
    WritebackResult,
    format_diff,
    update_init_kwargs,
    yaml11_float,
)

NOW = datetime(2024, 1, 2, 3, 4, 5)
CONFIG = """\
# A study with comments everywhere: they must all survive a write-back.
# Second line of the top comment.

seed: 42   # root seed

experiments:
  ql_flow:
    agent: rlpipe.agents.QLearningAgent    # the agent under tuning
    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: true}}
    init_kwargs: {gamma: 0.99, learning_rate: 0.05, epsilon_decay_steps: 100000}
    # init_kwargs: {gamma: 0.9}   (an older setting, commented out)
    fit_budget: 3000                     # environment steps
    eval_kwargs: {eval_horizon: 100, n_simulations: 10, gamma: 1.0}
    n_fit: 2

  ql_block:
    agent: rlpipe.agents.QLearningAgent
    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: false}}
    init_kwargs:
      gamma: 0.95          # discount
      learning_rate: 1.0e-3  # kept spelling
    fit_budget: 2000
    n_fit: 2

  ql_bare:
    agent: rlpipe.agents.QLearningAgent
    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: true}}
    fit_budget: 1000   # no init_kwargs here
    eval_kwargs: {eval_horizon: 100, n_simulations: 10}
    n_fit: 2
"""
EXPERIMENTS = ("ql_flow", "ql_block", "ql_bare")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def experiment_block(text: str, name: str) -> str:
    """The lines of one experiment entry (from its name to the next entry at the same indent)."""
    match = re.search(rf"^  {re.escape(name)}:\n(?:(?:    .*|)\n)*", text, flags=re.MULTILINE)
    assert match, f"no block for {name}"
    return match.group(0)


def comment_lines(text: str) -> list[str]:
    return [line[line.index("#"):] for line in text.splitlines() if "#" in line]


def backups(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.bak.yaml"))


# ---------------------------------------------------------------------------------------------- surgical edit
def test_flow_init_kwargs_merged_and_everything_else_kept(config_path: Path):
    result = update_init_kwargs(config_path, "ql_flow", {"learning_rate": 0.0003, "epsilon_end": 0.01}, now=NOW)
    text = config_path.read_text(encoding="utf-8")
    assert result.changed and result.path == config_path
    assert comment_lines(text) == comment_lines(CONFIG)
    for other in ("ql_block", "ql_bare"):
        assert experiment_block(text, other) == experiment_block(CONFIG, other)
    old_lines, new_lines = CONFIG.splitlines(), text.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines) if a != b]
    assert len(old_lines) == len(new_lines) and len(changed) == 1
    assert changed[0][1] == ("    init_kwargs: {gamma: 0.99, learning_rate: 0.0003, epsilon_decay_steps: 100000, "
                             "epsilon_end: 0.01}")
    assert yaml.safe_load(text)["experiments"]["ql_flow"]["init_kwargs"] == {
        "gamma": 0.99, "learning_rate": 0.0003, "epsilon_decay_steps": 100000, "epsilon_end": 0.01}


def test_block_init_kwargs_keeps_inline_comments_and_spellings(config_path: Path):
    update_init_kwargs(config_path, "ql_block", {"gamma": 0.9, "epsilon_decay_steps": 500}, now=NOW)
    text = config_path.read_text(encoding="utf-8")
    block = experiment_block(text, "ql_block")
    assert "      gamma: 0.9           # discount\n" in block  # ruamel keeps the comment's column
    assert "      learning_rate: 1.0e-3  # kept spelling\n" in block
    assert "      epsilon_decay_steps: 500\n" in block
    assert comment_lines(text) == comment_lines(CONFIG)
    for other in ("ql_flow", "ql_bare"):
        assert experiment_block(text, other) == experiment_block(CONFIG, other)


def test_missing_init_kwargs_is_created_in_the_experiments_style(config_path: Path):
    update_init_kwargs(config_path, "ql_bare", {"gamma": 0.5}, now=NOW)
    text = config_path.read_text(encoding="utf-8")
    block = experiment_block(text, "ql_bare")
    assert "    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: true}}\n    init_kwargs: {gamma: 0.5}\n" in block
    assert "fit_budget: 1000   # no init_kwargs here" in block
    assert yaml.safe_load(text)["experiments"]["ql_bare"]["init_kwargs"] == {"gamma": 0.5}
    for other in ("ql_flow", "ql_block"):
        assert experiment_block(text, other) == experiment_block(CONFIG, other)


# ---------------------------------------------------------------------------------------------- YAML 1.1 values
@pytest.mark.parametrize("value", [0.0003, 1e-05, 1e-300, 1e10, 1e16, 2.5e20, 0.5, -1e-07, 100.0])
def test_floats_read_back_as_floats_by_pyyaml(config_path: Path, value: float):
    update_init_kwargs(config_path, "ql_flow", {"learning_rate": value}, now=NOW)
    loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))["experiments"]["ql_flow"]["init_kwargs"]
    assert type(loaded["learning_rate"]) is float and loaded["learning_rate"] == value


def test_small_float_spelled_with_dot_and_signed_exponent(config_path: Path):
    update_init_kwargs(config_path, "ql_flow", {"learning_rate": 1e-05, "epsilon_end": 1e16}, now=NOW)
    line = experiment_block(config_path.read_text(encoding="utf-8"), "ql_flow").splitlines()[3]
    assert "learning_rate: 1.0e-05" in line and "epsilon_end: 1.0e+16" in line


@pytest.mark.parametrize(("value", "spelling"), [
    (0.0003, "0.0003"), (1e-05, "1.0e-05"), (1.5e-07, "1.5e-07"), (1e10, "10000000000.0"), (1e16, "1.0e+16"),
    (float("inf"), ".inf"), (float("-inf"), "-.inf"), (float("nan"), ".nan")])
def test_yaml11_float_spelling(value: float, spelling: str):
    assert yaml11_float(value) == spelling
    if not math.isnan(value):
        assert yaml.safe_load(spelling) == value


def test_other_value_types_read_back_unchanged(config_path: Path):
    # Validation checks init_kwargs names, not types: these only exercise YAML 1.1 round trips.
    values = {"gamma": True, "learning_rate": "yes", "epsilon_start": "12:30", "epsilon_end": [1, 0.0001, "on"],
              "epsilon_decay_steps": 7}
    update_init_kwargs(config_path, "ql_block", values, now=NOW)
    loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))["experiments"]["ql_block"]["init_kwargs"]
    assert loaded == values
    assert type(loaded["epsilon_end"][1]) is float


def test_numpy_like_scalars_written_as_plain_numbers(config_path: Path):
    np = pytest.importorskip("numpy")
    update_init_kwargs(config_path, "ql_flow", {"learning_rate": np.float64(2e-5), "epsilon_decay_steps": np.int64(9)})
    loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))["experiments"]["ql_flow"]["init_kwargs"]
    assert loaded["learning_rate"] == 2e-5 and type(loaded["learning_rate"]) is float
    assert loaded["epsilon_decay_steps"] == 9 and type(loaded["epsilon_decay_steps"]) is int


# ---------------------------------------------------------------------------------------------- backup and diff
def test_backup_holds_the_original_under_a_timestamped_name(config_path: Path):
    result = update_init_kwargs(config_path, "ql_flow", {"gamma": 0.9}, now=NOW)
    assert result.backup == config_path.parent / "config.20240102-030405.bak.yaml"
    assert result.backup.read_bytes() == CONFIG.encode()


def test_backup_dir_is_honoured(config_path: Path, tmp_path: Path):
    result = update_init_kwargs(config_path, "ql_flow", {"gamma": 0.9}, backup_dir=tmp_path / "bak", now=NOW)
    assert result.backup == tmp_path / "bak" / "config.20240102-030405.bak.yaml"
    assert result.backup.read_text(encoding="utf-8") == CONFIG
    assert backups(config_path.parent) == []


def test_default_timestamp_is_now(config_path: Path):
    result = update_init_kwargs(config_path, "ql_flow", {"gamma": 0.9})
    assert re.fullmatch(r"config\.\d{8}-\d{6}\.bak\.yaml", result.backup.name)


def test_two_updates_in_the_same_second_keep_two_backups(config_path: Path):
    first = update_init_kwargs(config_path, "ql_flow", {"gamma": 0.9}, now=NOW)
    middle = config_path.read_text(encoding="utf-8")
    second = update_init_kwargs(config_path, "ql_flow", {"gamma": 0.8}, now=NOW)
    assert first.backup != second.backup
    assert backups(config_path.parent) == sorted([first.backup, second.backup])
    assert first.backup.read_text(encoding="utf-8") == CONFIG
    assert second.backup.read_text(encoding="utf-8") == middle
    assert second.backup.name == "config.20240102-030405-1.bak.yaml"


def test_diff_shows_the_change(config_path: Path):
    result = update_init_kwargs(config_path, "ql_flow", {"learning_rate": 0.0003}, now=NOW)
    lines = result.diff.splitlines()
    assert lines[:2] == ["--- a/config.yaml", "+++ b/config.yaml"]
    assert "-    init_kwargs: {gamma: 0.99, learning_rate: 0.05, epsilon_decay_steps: 100000}" in lines
    assert "+    init_kwargs: {gamma: 0.99, learning_rate: 0.0003, epsilon_decay_steps: 100000}" in lines
    assert sum(line.startswith(("-", "+")) for line in lines) == 4  # two headers, one line out, one in
    assert result.diff == format_diff(CONFIG, config_path.read_text(encoding="utf-8"), "config.yaml")


def test_format_diff():
    assert format_diff("a: 1\n", "a: 1\n", "c.yaml") == ""
    diff = format_diff("a: 1\nb: 2\n", "a: 1\nb: 3", "c.yaml")
    assert "-b: 2\n" in diff and "+b: 3\n\\ No newline at end of file\n" in diff


# ---------------------------------------------------------------------------------------------- no change
@pytest.mark.parametrize("kwargs", [{}, {"gamma": 0.99}, {"gamma": 0.99, "learning_rate": 0.05}])
def test_unchanged_update_writes_nothing(config_path: Path, kwargs: dict):
    before = config_path.stat().st_mtime_ns
    result = update_init_kwargs(config_path, "ql_flow", kwargs, now=NOW)
    assert result == WritebackResult(path=config_path, backup=None, diff="", changed=False)
    assert config_path.stat().st_mtime_ns == before
    assert config_path.read_text(encoding="utf-8") == CONFIG
    assert backups(config_path.parent) == []


def test_int_to_float_is_a_change(config_path: Path):
    result = update_init_kwargs(config_path, "ql_flow", {"epsilon_decay_steps": 100000.0}, now=NOW)
    assert result.changed  # 100000 and 100000.0 are different YAML (and different types for the agent)


# ---------------------------------------------------------------------------------------------- errors
def assert_untouched(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == CONFIG
    assert backups(path.parent) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]


def test_unknown_experiment_lists_the_experiments(config_path: Path):
    with pytest.raises(ConfigError, match="no experiment named 'nope'") as error:
        update_init_kwargs(config_path, "nope", {"gamma": 0.9}, now=NOW)
    assert all(name in str(error.value) for name in EXPERIMENTS)
    assert_untouched(config_path)


def test_missing_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        update_init_kwargs(tmp_path / "absent.yaml", "e", {"gamma": 0.9})
    assert list(tmp_path.iterdir()) == []


def test_config_without_experiments(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("seed: 1  # nothing else\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no 'experiments' mapping"):
        update_init_kwargs(path, "e", {"gamma": 0.9})
    assert path.read_text(encoding="utf-8") == "seed: 1  # nothing else\n"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"seeder": 1}, r"experiments\.ql_flow\.init_kwargs\.seeder: is set by rlpipe"),
    ({"learning_rat": 0.1}, r"does not accept 'learning_rat' \(did you mean 'learning_rate'\?\)"),
    ({"gamma": "3e-4"}, r"read as a string"),
])
def test_invalid_result_is_refused(config_path: Path, kwargs: dict, problem: str):
    with pytest.raises(ConfigError, match=problem) as error:
        update_init_kwargs(config_path, "ql_flow", kwargs, now=NOW)
    assert "would make the config invalid" in str(error.value)
    assert_untouched(config_path)


def test_layered_config_files_are_validated_merged(tmp_path: Path):
    """Snakemake merges --configfile base.yaml over.yaml: over.yaml alone lacks the agent, merged it is valid."""
    base, over = tmp_path / "base.yaml", tmp_path / "over.yaml"
    base.write_text(CONFIG, encoding="utf-8")
    over.write_text("experiments:\n  ql_flow:\n    fit_budget: 10   # shorter\n", encoding="utf-8")
    result = update_init_kwargs(over, "ql_flow", {"gamma": 0.5}, now=NOW, config_files=[base, over])
    assert result.changed
    assert over.read_text(encoding="utf-8") == (
        "experiments:\n  ql_flow:\n    fit_budget: 10   # shorter\n    init_kwargs:\n      gamma: 0.5\n")
    assert base.read_text(encoding="utf-8") == CONFIG
    # alone, the edited file is validated alone: the base's experiment is missing there
    over.write_text("experiments:\n  ql_flow:\n    fit_budget: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        update_init_kwargs(over, "ql_flow", {"gamma": 0.5}, now=NOW)
    assert error.value.problems == ("experiments.ql_flow: missing required key 'agent'",)
    # a problem of the merged config names the files it was merged with, one problem a line
    with pytest.raises(ConfigError) as error:
        update_init_kwargs(over, "ql_flow", {"gama": 0.5}, now=NOW, config_files=[base, over])
    assert str(error.value) == (
        f"{over}: writing these init_kwargs would make the config (merged with {base}) invalid:\n"
        "  - experiments.ql_flow.init_kwargs: QLearningAgent does not accept 'gama' (did you mean 'gamma'?)")
    assert over.read_text(encoding="utf-8") == "experiments:\n  ql_flow:\n    fit_budget: 10\n"


def test_unwritable_value_is_refused(config_path: Path):
    with pytest.raises(ConfigError, match=r"experiments\.ql_flow\.init_kwargs\.gamma: cannot write a value of type object"):
        update_init_kwargs(config_path, "ql_flow", {"gamma": object()}, now=NOW)
    assert_untouched(config_path)


def test_failed_replace_leaves_original_and_no_temp_file(config_path: Path, monkeypatch: pytest.MonkeyPatch):
    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        update_init_kwargs(config_path, "ql_flow", {"gamma": 0.9}, now=NOW)
    assert_untouched(config_path)


# ---------------------------------------------------------------------------------------------- file details
def test_file_mode_is_kept(config_path: Path):
    config_path.chmod(0o640)
    update_init_kwargs(config_path, "ql_flow", {"gamma": 0.9}, now=NOW)
    assert config_path.stat().st_mode & 0o777 == 0o640


def test_crlf_file_stays_crlf(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_bytes(CONFIG.replace("\n", "\r\n").encode())
    result = update_init_kwargs(path, "ql_flow", {"gamma": 0.9}, now=NOW)
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") == CONFIG.count("\n")
    assert result.backup.read_bytes() == CONFIG.replace("\n", "\r\n").encode()


def test_symlinked_config_stays_a_symlink(tmp_path: Path):
    real = tmp_path / "real" / "study.yaml"
    real.parent.mkdir()
    real.write_text(CONFIG, encoding="utf-8")
    link = tmp_path / "config.yaml"
    link.symlink_to(real)
    update_init_kwargs(link, "ql_flow", {"gamma": 0.9}, now=NOW)
    assert link.is_symlink()
    assert yaml.safe_load(real.read_text(encoding="utf-8"))["experiments"]["ql_flow"]["init_kwargs"]["gamma"] == 0.9


def test_anchored_init_kwargs_are_not_changed_through_an_alias(tmp_path: Path):
    text = """\
experiments:
  a:
    agent: rlpipe.agents.QLearningAgent
    train_env: FrozenLake-v1
    init_kwargs: &shared {gamma: 0.9}
    fit_budget: 10
  b:
    agent: rlpipe.agents.QLearningAgent
    train_env: FrozenLake-v1
    init_kwargs: *shared
    fit_budget: 10
"""
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    update_init_kwargs(path, "b", {"learning_rate": 0.2}, now=NOW)
    experiments = yaml.safe_load(path.read_text(encoding="utf-8"))["experiments"]
    assert experiments["a"]["init_kwargs"] == {"gamma": 0.9}
    assert experiments["b"]["init_kwargs"] == {"gamma": 0.9, "learning_rate": 0.2}


def test_real_default_config_round_trips(tmp_path: Path):
    source = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
    original = source.read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(original, encoding="utf-8")
    result = update_init_kwargs(path, "frozenlake_q_learning", {"learning_rate": 0.0003}, now=NOW)
    assert sum(line.startswith(("-", "+")) for line in result.diff.splitlines()) == 4
    assert comment_lines(path.read_text(encoding="utf-8")) == comment_lines(original)


@pytest.mark.parametrize(("mapping", "dash"), [(2, 0), (2, 2), (4, 0), (4, 2), (4, 4)])
def test_indentation_style_is_kept(tmp_path: Path, mapping: int, dash: int):
    def ind(level: int) -> str:
        return " " * (mapping * level)

    wrappers = [
        f"{ind(3)}{' ' * dash}- gymnasium.wrappers.TimeLimit  # a wrapper\n",
        f"{ind(3)}{' ' * dash}- {{wrapper: gymnasium.wrappers.TimeLimit, kwargs: {{max_episode_steps: 5}}}}\n",
    ]
    text = (f"experiments:\n{ind(1)}e:\n{ind(2)}agent: rlpipe.agents.QLearningAgent\n{ind(2)}train_env:\n"
            f"{ind(3)}id: FrozenLake-v1\n{ind(3)}wrappers:\n{''.join(wrappers)}"
            f"{ind(2)}init_kwargs:\n{ind(3)}gamma: 0.9\n{ind(2)}fit_budget: 10\n")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    update_init_kwargs(path, "e", {"learning_rate": 0.5}, now=NOW)
    expected = text.replace(f"{ind(3)}gamma: 0.9\n", f"{ind(3)}gamma: 0.9\n{ind(3)}learning_rate: 0.5\n")
    assert path.read_text(encoding="utf-8") == expected


MERGED = """\
experiments:
  a: &defaults
    agent: rlpipe.agents.QLearningAgent
    train_env: FrozenLake-v1
    init_kwargs: {gamma: 0.9}
    fit_budget: 10
  b:
    <<: *defaults
    n_fit: 2
"""


def test_merge_key_experiment_gets_its_own_init_kwargs(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(MERGED, encoding="utf-8")
    update_init_kwargs(path, "b", {"learning_rate": 0.5}, now=NOW)
    experiments = yaml.safe_load(path.read_text(encoding="utf-8"))["experiments"]
    assert experiments["a"]["init_kwargs"] == {"gamma": 0.9}
    assert experiments["b"]["init_kwargs"] == {"gamma": 0.9, "learning_rate": 0.5}


def test_edit_that_would_leak_into_another_experiment_is_refused(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(MERGED, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"differs at: experiments\.b\.init_kwargs\.gamma"):
        update_init_kwargs(path, "a", {"gamma": 0.7}, now=NOW)
    assert path.read_text(encoding="utf-8") == MERGED
    assert backups(tmp_path) == []


def test_concurrent_updates_of_two_experiments_both_land(config_path: Path):
    """Two select jobs writing back at the same moment: the file lock serialises read-edit-replace."""
    import threading

    for round_ in range(5):
        start = threading.Barrier(2)
        values = {"ql_flow": 0.1 + round_, "ql_block": 0.2 + round_}

        def update(experiment: str, value: float, start: threading.Barrier) -> None:
            start.wait()
            update_init_kwargs(config_path, experiment, {"learning_rate": value})

        threads = [threading.Thread(target=update, args=(name, value, start)) for name, value in values.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        data = yaml.safe_load(config_path.read_text())
        assert {name: data["experiments"][name]["init_kwargs"]["learning_rate"] for name in values} == values


@pytest.mark.parametrize(("line", "expected"), [
    ("    init_kwargs: {gamma: 0.9}      # tuned", "    init_kwargs: {gamma: 0.5}      # tuned"),  # column kept
    ("    init_kwargs: {gamma: 0.9} # tuned", "    init_kwargs: {gamma: 0.123456789} # tuned"),  # no room: one space
])
def test_end_of_line_comment_of_the_edited_line_keeps_its_column(tmp_path: Path, line: str, expected: str):
    path = tmp_path / "config.yaml"
    path.write_text(f"experiments:\n  lake:\n    agent: rlpipe.agents.QLearningAgent\n    train_env: FrozenLake-v1\n"
                    f"{line}\n    fit_budget: 10\n")
    value = float(expected.split("gamma: ")[1].split("}")[0])
    update_init_kwargs(path, "lake", {"gamma": value}, now=NOW)
    assert expected in path.read_text().splitlines()


def test_a_hash_inside_a_quoted_value_is_not_taken_for_a_comment(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("experiments:\n  lake:\n    agent: helpers_agents:PeakAgent\n    train_env: FrozenLake-v1\n"
                    "    init_kwargs: {x: 0.25, level: 'high #1'}\n    fit_budget: 10\n")
    update_init_kwargs(path, "lake", {"x": 0.5}, now=NOW)
    assert yaml.safe_load(path.read_text())["experiments"]["lake"]["init_kwargs"] == {"x": 0.5, "level": "high #1"}
