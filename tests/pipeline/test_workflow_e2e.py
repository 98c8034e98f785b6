"""End-to-end: real Snakemake runs of the workflow on tiny configs in temporary directories."""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rlpipe.io.provenance import code_version

from snakemake_runner import PNG_MAGIC, SNAKEFILE, TINY, job_counts, ok, report_items, run_snakemake, snapshot

pytestmark = pytest.mark.e2e

def instance_dir(workdir: Path, experiment: str, instance: int) -> Path:
    return workdir / "results" / experiment / "instances" / str(instance)


def without_times(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in ("dw_time_elapsed",) if c in frame])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("study")
    ok(run_snakemake(workdir, TINY))
    return workdir


def test_default_target_builds_every_output(finished_run: Path) -> None:
    results = finished_run / "results"
    for experiment, spec in TINY["experiments"].items():
        for i in range(spec["n_fit"]):
            folder = instance_dir(finished_run, experiment, i)
            for name in ("agent.ckpt", "writer.parquet", "fit.json", "evaluation.parquet"):
                assert (folder / name).is_file(), folder / name
            assert not (folder / "progress").exists()
        for name in ("writer_data.parquet", "evaluation.parquet", "summary.json"):
            assert (results / experiment / name).is_file()
        for name in ("learning_curve.png", "evaluation.png"):
            assert (results / experiment / name).read_bytes().startswith(PNG_MAGIC)
    assert (results / "comparison.png").read_bytes().startswith(PNG_MAGIC)
    assert not list(results.rglob("*.tmp"))


def test_every_table_says_which_seed_task_and_versions_made_it(finished_run: Path) -> None:
    tables = sorted((finished_run / "results").rglob("*.parquet"))
    assert len(tables) == sum(2 * spec["n_fit"] + 2 for spec in TINY["experiments"].values())
    for table in tables:
        provenance = json.loads(pq.read_schema(table).metadata[b"rlpipe"])
        assert provenance["root_seed"]["entropy"] == TINY["seed"], table
        assert len(provenance["task_hash"]) == 16 and {"rlpipe", "numpy", "gymnasium"} <= set(provenance["versions"])
        assert provenance["git"] == code_version(), table  # and the commit of the code that wrote it


def test_tables_hold_what_the_config_asked_for(finished_run: Path) -> None:
    results = finished_run / "results"
    evaluation = pd.read_parquet(results / "ql" / "evaluation.parquet")
    assert list(evaluation.columns) == ["experiment", "instance", "episode", "seed", "unit", "score", "return",
                                        "discounted_return", "length"]
    assert (evaluation.unit == "episode").all() and evaluation.score.equals(evaluation.discounted_return)
    assert len(evaluation) == 2 * 5 and sorted(evaluation.instance.unique()) == [0, 1]
    assert evaluation.length.max() <= 50
    writer = pd.read_parquet(results / "ql" / "writer_data.parquet")
    assert list(writer.columns) == ["name", "tag", "value", "dw_time_elapsed", "global_step", "instance"]
    assert set(writer.tag) == {"episode_rewards", "episode_length"}
    for i in (0, 1):  # episode lengths add up to the steps of finished episodes, within the budget
        lengths = writer[(writer.instance == i) & (writer.tag == "episode_length")]
        assert lengths.value.sum() == lengths.global_step.max() <= 1500
    record = json.loads((instance_dir(finished_run, "ql", 1) / "fit.json").read_text())
    assert record["total_env_steps"] == 1500 and record["chunks"] == [500, 500, 500]
    assert record["root_seed"] == {"entropy": 7, "spawn_key": []} and "numpy" in record["versions"]


def test_summary_statistics_match_the_evaluation_table(finished_run: Path) -> None:
    results = finished_run / "results"
    for experiment in TINY["experiments"]:
        evaluation = pd.read_parquet(results / experiment / "evaluation.parquet")
        per_instance = evaluation.groupby("instance").discounted_return.mean()
        summary = json.loads((results / experiment / "summary.json").read_text())
        assert summary["mean"] == pytest.approx(per_instance.mean())
        assert summary["median"] == pytest.approx(per_instance.median())
        assert summary["ci_low"] <= summary["mean"] <= summary["ci_high"]
        assert summary["n_fit"] == 2
    table = pd.read_csv(results / "summary.csv")
    assert list(table.experiment) == ["ql", "rand"]
    assert table.set_index("experiment").loc["ql", "mean"] == pytest.approx(
        json.loads((results / "ql" / "summary.json").read_text())["mean"])
    markdown = (results / "summary.md").read_text()
    assert "| ql" in markdown and "| rand" in markdown


def test_q_learning_solves_the_deterministic_lake(finished_run: Path) -> None:
    summary = json.loads((finished_run / "results" / "ql" / "summary.json").read_text())
    assert summary["mean"] == 1.0  # the non-slippery lake is solved by every instance
    assert summary["learning_curve_tags"] == ["episode_rewards"]  # the default tag, which QLearningAgent logs


def test_second_run_does_nothing(finished_run: Path) -> None:
    before = snapshot(finished_run / "results")
    result = ok(run_snakemake(finished_run, TINY))
    assert "Nothing to be done" in result.stdout + result.stderr
    assert snapshot(finished_run / "results") == before


def test_changes_rerun_only_what_depends_on_them(tmp_path: Path) -> None:
    config = copy.deepcopy(TINY)
    ok(run_snakemake(tmp_path, config))
    checkpoint = lambda e, i: instance_dir(tmp_path, e, i) / "agent.ckpt"  # noqa: E731
    episodes = lambda e, i: instance_dir(tmp_path, e, i) / "evaluation.parquet"  # noqa: E731
    mtime = lambda p: p.stat().st_mtime_ns  # noqa: E731

    # eval_kwargs: evaluation reruns, fits are kept
    fitted = {i: mtime(checkpoint("ql", i)) for i in (0, 1)}
    evaluated = {i: mtime(episodes("ql", i)) for i in (0, 1)}
    rand_eval = mtime(episodes("rand", 0))
    config["experiments"]["ql"]["eval_kwargs"]["n_simulations"] = 7
    ok(run_snakemake(tmp_path, config))
    assert {i: mtime(checkpoint("ql", i)) for i in (0, 1)} == fitted
    assert all(mtime(episodes("ql", i)) > evaluated[i] for i in (0, 1))
    assert mtime(episodes("rand", 0)) == rand_eval
    assert len(pd.read_parquet(tmp_path / "results" / "ql" / "evaluation.parquet")) == 2 * 7

    # n_fit 2 -> 3: only instance 2 is fitted and evaluated; instances 0 and 1 are untouched
    evaluated = {i: mtime(episodes("ql", i)) for i in (0, 1)}
    config["experiments"]["ql"]["n_fit"] = 3
    ok(run_snakemake(tmp_path, config))
    assert {i: mtime(checkpoint("ql", i)) for i in (0, 1)} == fitted
    assert {i: mtime(episodes("ql", i)) for i in (0, 1)} == evaluated
    assert checkpoint("ql", 2).is_file() and episodes("ql", 2).is_file()
    assert sorted(pd.read_parquet(tmp_path / "results" / "ql" / "writer_data.parquet").instance.unique()) == [0, 1, 2]

    # how jobs run (progress output, checkpoints of an additive agent, the pickle permission): nothing reruns but
    # the provenance page, which records the config as run
    config["experiments"]["ql"]["writer"] = {"print_log": True, "style_log": "one_line", "log_interval": 0}
    config["experiments"]["ql"]["n_checkpoints"] = 5
    config["experiments"]["ql"]["allow_pickle"] = True
    config["experiments"]["ql"]["resources"] = {"runtime": 5, "mem_mb": 500, "slurm_partition": "short"}
    assert job_counts(ok(run_snakemake(tmp_path, config, "-n")).stdout) == {"provenance": 1, "all": 1}
    config["experiments"]["ql"]["writer"]["maxlen"] = 1000  # which writer rows are kept: the fits rerun
    planned = ok(run_snakemake(tmp_path, config, "-n")).stdout
    assert planned.count("rule fit:") == 3 and "Params have changed" in planned

    # init_kwargs of one experiment: that experiment refits, the other does not
    rand_fit = mtime(checkpoint("rand", 0))
    config["experiments"]["ql"]["init_kwargs"]["learning_rate"] = 0.5
    ok(run_snakemake(tmp_path, config))
    assert all(mtime(checkpoint("ql", i)) > fitted[i] for i in (0, 1))
    assert mtime(checkpoint("rand", 0)) == rand_fit

    # instances_per_job: the regrouped jobs rerun, but keep every instance (nothing is fitted or evaluated again)
    fitted = {i: mtime(checkpoint("ql", i)) for i in range(3)}
    tables = {i: pd.read_parquet(episodes("ql", i)) for i in range(3)}
    config["experiments"]["ql"]["instances_per_job"] = 2
    ok(run_snakemake(tmp_path, config))
    assert {i: mtime(checkpoint("ql", i)) for i in range(3)} == fitted
    batches = tmp_path / "results" / "ql" / "batches"
    assert [json.loads((batches / f"fit-{b}.json").read_text())["kept"] for b in (0, 1)] == [[0, 1], [2]]
    assert [json.loads((batches / f"evaluate-{b}.json").read_text())["kept"] for b in (0, 1)] == [[0, 1], [2]]
    assert all(pd.read_parquet(episodes("ql", i)).equals(tables[i]) for i in range(3))


def test_same_seed_same_numbers_whatever_the_cores(tmp_path: Path, finished_run: Path) -> None:
    result = ok(run_snakemake(tmp_path, TINY, cores=1))
    # one core: the experiments' fit, evaluate and aggregate jobs run in the config's order (rw.job_priority)
    started = re.findall(r"^(?:local)?rule (?:fit|evaluate|aggregate):\n(?:.*\n)*?\s+wildcards: experiment=(\w+)",
                         result.stderr, re.M)
    assert started == sorted(started, key=list(TINY["experiments"]).index) and set(started) == set(TINY["experiments"])
    for experiment in TINY["experiments"]:
        for table in ("writer_data.parquet", "evaluation.parquet"):
            ours = without_times(pd.read_parquet(tmp_path / "results" / experiment / table))
            theirs = without_times(pd.read_parquet(finished_run / "results" / experiment / table))
            pd.testing.assert_frame_equal(ours, theirs)
        for i in range(2):
            a = np.load(instance_dir(tmp_path, experiment, i) / "agent.ckpt")
            b = np.load(instance_dir(finished_run, experiment, i) / "agent.ckpt")
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_instances_differ(finished_run: Path) -> None:
    writer = pd.read_parquet(finished_run / "results" / "rand" / "writer_data.parquet")
    lengths = [tuple(writer[(writer.instance == i) & (writer.tag == "episode_length")].value) for i in (0, 1)]
    assert lengths[0] != lengths[1]
    seeds = pd.read_parquet(finished_run / "results" / "rand" / "evaluation.parquet").groupby("instance").seed.apply(tuple)
    assert seeds[0] != seeds[1]


def test_a_different_seed_changes_the_numbers(tmp_path: Path, finished_run: Path) -> None:
    config = copy.deepcopy(TINY)
    config["seed"] = 8
    config["experiments"] = {"rand": config["experiments"]["rand"]}
    ok(run_snakemake(tmp_path, config))
    ours = pd.read_parquet(tmp_path / "results" / "rand" / "writer_data.parquet")
    theirs = pd.read_parquet(finished_run / "results" / "rand" / "writer_data.parquet")
    assert not without_times(ours).equals(without_times(theirs))




def test_a_bad_config_stops_snakemake_before_any_job(tmp_path: Path) -> None:
    """One real run proves the path (each message is checked in process in tests/pipeline/test_workflow.py):
    Snakemake exits non-zero with every problem, before any job, and leaves earlier results alone."""
    sentinel = tmp_path / "results" / "ql" / "summary.json"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text("earlier result")
    config = copy.deepcopy(TINY)
    config["experiments"]["ql"].update(n_fits=3, init_kwargs={"learning_rte": 0.1})
    config["experiments"]["rand"]["train_env"] = "FrozenLake-v9"
    result = run_snakemake(tmp_path, config)
    assert result.returncode != 0
    for line in ("experiments.ql: unknown key 'n_fits' (did you mean 'n_fit'?)",
                 "experiments.rand.train_env: gymnasium does not know the env id 'FrozenLake-v9'"):
        assert line in result.stderr
    assert "No job was run" in result.stderr
    assert [p for p in (tmp_path / "results").rglob("*") if p.is_file()] == [sentinel]
    assert sentinel.read_text() == "earlier result"


def test_malformed_yaml_is_reported(tmp_path: Path) -> None:
    """The default config file is read by rlpipe first, so the message names the file and the line.

    (A file given with --configfile is parsed by Snakemake before the workflow runs; its message is
    Snakemake's own, which names neither.)
    """
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("seed: 1\nexperiments:\n  ql: {agent: [unclosed\n")
    command = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(tmp_path), "--cores", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "config/config.yaml is not valid YAML" in result.stderr and "line 4" in result.stderr
    assert not (tmp_path / "results").exists()

    (tmp_path / "other.yaml").write_text("experiments: [unclosed\n")
    result = subprocess.run(command + ["--configfile", str(tmp_path / "other.yaml")], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "not valid JSON or YAML" in result.stderr
    assert not (tmp_path / "results").exists()


def test_a_failing_instance_is_named_and_others_finish(tmp_path: Path) -> None:
    config = copy.deepcopy(TINY)
    config["experiments"]["ql"]["init_kwargs_per_instance"] = [{}, {"learning_rate": 2.0}]  # invalid for instance 1
    result = run_snakemake(tmp_path, config, "--keep-going")
    assert result.returncode != 0
    job_log = (tmp_path / "results" / "ql" / "batches" / "fit-1.log").read_text()
    assert "rlpipe fit (experiment 'ql', instance 1)" in job_log and "learning_rate must be in (0, 1]" in job_log
    assert "learning_rate must be in (0, 1]" in (instance_dir(tmp_path, "ql", 1) / "fit.log").read_text()
    assert (instance_dir(tmp_path, "ql", 0) / "agent.ckpt").is_file()
    assert (tmp_path / "results" / "rand" / "summary.json").is_file()
    assert not (instance_dir(tmp_path, "ql", 1) / "agent.ckpt").exists()


def _damaged_copy(finished_run: Path, tmp_path: Path, damage) -> tuple[Path, dict]:
    """A copy of the finished study with one file damaged, and a snapshot of the other experiment's results."""
    import shutil

    workdir = tmp_path / "study"
    shutil.copytree(finished_run, workdir)  # copy2 keeps mtimes, so only the damaged file looks changed
    damage(workdir / "results" / "ql")
    return workdir, snapshot(workdir / "results" / "rand")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def test_a_truncated_checkpoint_fails_evaluation_with_its_name(finished_run: Path, tmp_path: Path) -> None:
    workdir, others = _damaged_copy(finished_run, tmp_path, lambda ql: _truncate(ql / "instances" / "0" / "agent.ckpt"))
    result = run_snakemake(workdir, TINY, "--forcerun", "results/ql/batches/evaluate-0.json")  # its job's record
    assert result.returncode != 0
    log = (workdir / "results" / "ql" / "batches" / "evaluate-0.log").read_text()  # the job's log
    assert "rlpipe evaluate (experiment 'ql', instance 0):" in log and "agent.ckpt is truncated" in log
    assert "agent.ckpt is truncated" in (workdir / "results" / "ql" / "instances" / "0" / "evaluate.log").read_text()
    assert snapshot(workdir / "results" / "rand") == others


def test_a_checkpoint_from_another_format_version_is_refused(finished_run: Path, tmp_path: Path) -> None:
    def downgrade(ql: Path) -> None:
        path = ql / "instances" / "1" / "agent.ckpt"
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        meta["format"] = "rlpipe-checkpoint/0"
        with open(path, "wb") as handle:
            np.savez(handle, **arrays, __meta__=np.array(json.dumps(meta)))

    workdir, others = _damaged_copy(finished_run, tmp_path, downgrade)
    result = run_snakemake(workdir, TINY, "--forcerun", "results/ql/batches/evaluate-1.json")
    assert result.returncode != 0
    log = (workdir / "results" / "ql" / "instances" / "1" / "evaluate.log").read_text()
    assert "has format 'rlpipe-checkpoint/0'; this rlpipe reads 'rlpipe-checkpoint/1'" in log
    assert snapshot(workdir / "results" / "rand") == others


def test_a_truncated_writer_table_fails_aggregation_with_its_name(finished_run: Path, tmp_path: Path) -> None:
    workdir, others = _damaged_copy(finished_run, tmp_path, lambda ql: _truncate(ql / "instances" / "1" / "writer.parquet"))
    result = run_snakemake(workdir, TINY, "--forcerun", "results/ql/summary.json")
    assert result.returncode != 0
    log = (workdir / "results" / "ql" / "aggregate.log").read_text()
    assert "instances/1/writer.parquet cannot be read" in log and "experiment 'ql'" in log
    assert snapshot(workdir / "results" / "rand") == others


def test_the_report_captions_and_labels_every_item_and_holds_the_provenance(finished_run: Path, tmp_path: Path) -> None:
    import shutil

    workdir = tmp_path / "study"
    shutil.copytree(finished_run, workdir)
    ok(run_snakemake(workdir, TINY, "--report", str(workdir / "report.html")))
    items = report_items(workdir / "report.html")
    expected = {f"results/{e}/{figure}.png" for e in TINY["experiments"] for figure in ("learning_curve", "evaluation")}
    expected |= {"results/summary.csv", "results/summary.md", "results/comparison.png", "results/provenance.html"}
    assert set(items) == expected
    assert all(item["caption"].strip() for item in items.values())
    for experiment, spec in TINY["experiments"].items():  # each figure says what it shows and over how many seeds
        for figure in ("learning curve", "evaluation"):
            path = f"results/{experiment}/{figure.replace(' ', '_')}.png"
            assert items[path]["labels"] == {"experiment": experiment, "figure": figure, "agent": spec["agent"].split(".")[-1],
                                             "env": "FrozenLake-v1", "seeds": str(spec["n_fit"])}
            assert f"{spec['n_fit']} independently seeded instances" in items[path]["caption"]
    assert "95% percentile-bootstrap confidence band" in items["results/ql/learning_curve.png"]["caption"]
    record = json.loads((workdir / "results" / "provenance.json").read_text())
    assert record["root_seed"] == TINY["seed"] and record["config"]["experiments"] == TINY["experiments"]
    assert [row["experiment"] for row in record["experiments"]] == list(TINY["experiments"])
    assert record["git"] == code_version()


def test_a_sweep_runs_as_the_experiments_it_expands_into(tmp_path: Path) -> None:
    """A 2 agents × 2 budgets grid of 2 seeds, in batches of 2, beside one experiment written out: each point is an
    experiment of its own (folder, row of the comparison), and the point written out by hand computes the same."""
    point = {"agent": "rlpipe.agents.QLearningAgent", "train_env": "FrozenLake-v1", "fit_budget": 300, "n_fit": 2,
             "eval_kwargs": {"eval_horizon": 20, "n_simulations": 3}, "writer": {"print_log": False}}
    config = {"seed": 11, "report": {"bootstrap_samples": 200},
              "experiments": {"by-hand": point},
              "sweeps": {"grid": {"grid": {"agent": {"ql": "rlpipe.agents.QLearningAgent",
                                                     "random": "rlpipe.agents.RandomAgent"},
                                           "fit_budget": [300, 600]},
                                  "train_env": "FrozenLake-v1", "n_fit": 2, "instances_per_job": 2,
                                  "eval_kwargs": {"eval_horizon": 20, "n_simulations": 3},
                                  "writer": {"print_log": False}}}}
    ok(run_snakemake(tmp_path, config))
    names = ["grid-ql-300", "grid-ql-600", "grid-random-300", "grid-random-600"]
    summary = pd.read_csv(tmp_path / "results" / "summary.csv")
    assert sorted(summary.experiment) == sorted(["by-hand", *names])
    for name in names:
        assert [p.name for p in sorted((tmp_path / "results" / name / "batches").glob("*.json"))] == [
            "evaluate-0.json", "fit-0.json"]  # one job of 2 instances per stage
    # the point written out under its own name: the same seeds, so the same numbers
    again = tmp_path / "by_name"
    ok(run_snakemake(again, {"seed": 11, "report": {"bootstrap_samples": 200}, "experiments": {"grid-ql-300": point}}))
    for i in range(2):
        assert (instance_dir(again, "grid-ql-300", i) / "agent.ckpt").read_bytes() == \
            (instance_dir(tmp_path, "grid-ql-300", i) / "agent.ckpt").read_bytes()
