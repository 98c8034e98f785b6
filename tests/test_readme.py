"""The READMEs tell the truth: their Python examples and shell commands run as written, and every file, column and
metadata key they name exists (the end-to-end part runs every command on a tiny study in a copy of the repository)."""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_python_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rlpipe.manager.tools  # noqa: F401 - the example's plotting; a missing module is a failure, never a skip
    example = next(block for block in python_blocks() if "ExperimentManager(" in block)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)  # noqa: S102 - our own README
    manager = namespace["manager"]
    assert len(namespace["data"].instance.unique()) == 4
    assert (tmp_path / "rlpipe_data" / "episode_rewards.png").is_file()
    assert namespace["same"].output_dir == manager.output_dir
    assert namespace["config"]["experiments"]["QLearning"]["n_fit"] == 4
    assert len(namespace["episodes"]) == 4 * 10 and namespace["summary"]["n_fit"] == 4
    assert (manager.output_dir / "summary.json").is_file()


def test_the_tuning_example_runs_after_the_python_api_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks()
    example = next(block for block in blocks if "ExperimentManager(" in block)
    tuning = next(block for block in blocks if "optimize_hyperparams(" in block)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(example + tuning, str(README), "exec"), namespace)  # noqa: S102 - our own README
    manager, best = namespace["manager"], namespace["best"]
    assert set(best) == {"learning_rate", "gamma", "epsilon_decay_steps"}  # QLearningAgent.sample_parameters
    assert all(manager.init_kwargs[key] == value for key, value in best.items())
    assert len(namespace["manager"].get_agent_instances()) == 4  # refitted with the tuned values
    assert (manager.output_dir / "optimize" / "best_init_kwargs.yaml").is_file()


def test_the_custom_agent_example_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = next(block for block in python_blocks() if "class MyAgent" in block)
    namespace: dict = {}
    exec(compile(example, str(README), "exec"), namespace)  # noqa: S102 - our own README
    agent = namespace["MyAgent"]("FrozenLake-v1", seeder=0)
    agent.fit(200)
    assert agent.total_env_steps == 200
    path = agent.save(tmp_path / "agent.ckpt")
    loaded = namespace["MyAgent"].load(path, env="FrozenLake-v1", seeder=0)
    assert (loaded.preferences == agent.preferences).all()


def readme_class(name: str) -> type:
    """The agent class ``name`` as the README defines it."""
    block = next(block for block in python_blocks() if f"class {name}(" in block)
    namespace: dict = {"__name__": "readme"}
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - our own README
    return namespace[name]


def test_the_rlberry_style_agent_of_the_readme_reproduces(tmp_path: Path) -> None:
    from rlpipe import ExperimentManager, read_writer_data
    from rlpipe.manager.check_agent import check_rl_agent

    agent = readme_class("QAgent")
    check_rl_agent(agent, "discrete_state")
    runs = [ExperimentManager(agent, ("Taxi-v4", {}), fit_budget=500, n_fit=2, seed=3, output_dir=tmp_path / str(k),
                              default_writer_kwargs={"print_log": False}) for k in range(2)]
    for manager in runs:
        manager.fit()
    first, second = (read_writer_data(m)[["instance", "tag", "value", "global_step"]] for m in runs)
    assert len(first) == 2 * 500 and first.equals(second)


def test_the_additive_agent_of_the_readme_keeps_its_promise() -> None:
    from rlpipe.manager.check_agent import check_fit_additive, check_rl_agent

    agent = readme_class("MyAgent")
    check_rl_agent(agent, "discrete_state")
    check_fit_additive(agent, ("Taxi-v4", {}), budget=300)


def test_the_layout_names_every_module_of_the_package() -> None:
    layout = README.read_text().split("## Development", 1)[1]
    package = README.parent / "rlpipe"
    modules = {path.name for path in package.rglob("*.py") if not path.name.startswith("__")}
    modules.add("config.schema.yaml")
    assert {name for name in modules if f"  {name} " not in layout} == set()


@pytest.mark.parametrize("readme", [README, README.parent / "config" / "README.md"], ids=["README", "config-README"])
def test_every_file_path_a_readme_names_exists(readme: Path) -> None:
    named = set(re.findall(r"\b((?:tests|rlpipe|workflow|config)/[\w/.-]+\.(?:py|smk|yaml|rst))\b", readme.read_text()))
    assert named, "the pattern found no paths: the test would prove nothing"
    assert sorted(p for p in named if not (README.parent / p).exists()) == []


# ------------------------------------------------------------------------------------------------ the shell commands
REPO = README.parent
CONFIG_README = REPO / "config" / "README.md"
PAPER_README = REPO / "config" / "paper" / "README.md"
READMES = (README, CONFIG_README, PAPER_README)

# Commands (each part of a `a && b` line apart, comment removed) that are not run here, and why. The test fails when a
# README no longer has one of them, so that this list never skips a command silently.
SKIPPED = {
    "pip install -e .": "installs rlpipe: the tests run on the installed package",
    'pip install -e ".[test]"': "installs the test extra: the tests run in the installed environment",
    "pip install snakemake-executor-plugin-slurm": "installs the SLURM plugin (in the test extra)",
    "pip install torch==2.13.0": "installs torch (the sb3 extra)",
    'pip install -e ".[sb3]"': "installs the sb3 extra",
    "python -m pytest": "the test suite itself, this test included",
    'python -m pytest -m "not e2e"': "the test suite itself, this test included",
    "python -m pytest tests/test_paper_configs.py": "a test of the suite (tests/test_paper_configs.py)",
    'python -m pytest tests/test_paper_configs.py -m "not e2e"': "a test of the suite (tests/test_paper_configs.py)",
    "snakemake --workflow-profile workflow/profiles/slurm --default-resources slurm_account=A slurm_partition=P":
        "needs a SLURM cluster: tests/pipeline/test_slurm_e2e.py runs the profile on one",
    "snakemake --workflow-profile workflow/profiles/slurm --default-resources slurm_account=A slurm_partition=P optimize":
        "needs a SLURM cluster: tests/pipeline/test_slurm_e2e.py runs optimize workers through the profile",
    "snakemake --cores 8 --configfile config/deep.yaml": "deep RL (the sb3 extra, torch), minutes of fitting: "
        "tests/test_benchmarks.py runs its PPO and SAC through Snakemake on tiny budgets (tests/benchmarks/bench_sb3.py)",
    "snakemake --cores 2 --configfile config/deep.yaml": "deep RL (the sb3 extra, torch), minutes of fitting: "
        "tests/test_benchmarks.py runs its PPO and SAC through Snakemake on tiny budgets (tests/benchmarks/bench_sb3.py)",
    "xdg-open results/frozenlake_q_learning/optimize/history.png":
        "opens an image viewer; the file is in the Outputs tree, whose files this test checks",
    "xdg-open results/frozenlake_q_learning/optimize/importance.png":
        "opens an image viewer; the file is in the Outputs tree, whose files this test checks",
}
# Commands run with --dry-run only (planned, every config key validated, nothing fitted), and why.
DRY_RUN = {
    "snakemake --cores 8 --configfile config/sweep.yaml":
        "24 experiments × 10 instances, minutes of fitting (tests/pipeline/test_cli.py checks its expansion)",
    "snakemake --cores 8 --configfile config/paper/cliff_walking.yaml":
        "40 instances of 24000 steps; tests/test_paper_configs.py runs it and checks its numbers",
}
# config/config.yaml of the copy: the default study's experiments and sections (metrics, adastop, optimize with its
# confirmation), on tiny budgets. `my_study.yaml`, the READMEs' name for a user's study, is the same study.
TINY_CONFIG = """\
# The default study's experiments and sections on tiny budgets (tests/test_readme.py)
seed: 42
report: {bootstrap_samples: 100}
experiments:
  frozenlake_value_iteration:
    agent: rlpipe.agents.ValueIterationAgent
    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: true}}
    init_kwargs: {gamma: 0.999}
    fit_budget: 20
    eval_kwargs: {eval_horizon: 100, n_simulations: 3, gamma: 1.0}
    n_fit: 2
    instances_per_job: 2
    learning_curve: {tag: bellman_residual}
  frozenlake_q_learning:
    agent: rlpipe.agents.QLearningAgent
    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: true}}
    init_kwargs: {gamma: 0.99, learning_rate: 0.05, epsilon_decay_steps: 200}
    fit_budget: 400
    eval_kwargs: {eval_horizon: 100, n_simulations: 3, gamma: 1.0}
    n_fit: 2
    instances_per_job: 2
    optimize:
      n_trials: 2
      n_fit: 1
      n_optuna_workers: 2
      pruner_method: median
      fit_fraction: 0.5
      search_space:
        learning_rate: {type: float, low: 0.01, high: 0.5, log: true}
      confirm: {top_k: 1, n_fit: 1, alpha: 0.5}
  frozenlake_random:
    agent: rlpipe.agents.RandomAgent
    train_env: {id: FrozenLake-v1, kwargs: {is_slippery: true}}
    fit_budget: 100
    eval_kwargs: {eval_horizon: 100, n_simulations: 3, gamma: 1.0}
    n_fit: 2
    instances_per_job: 2
  cartpole_policy_gradient:
    agent: rlpipe.agents.PolicyGradientAgent
    train_env: CartPole-v1
    init_kwargs: {n_steps: 64, n_epochs: 1}
    fit_budget: 128
    eval_kwargs: {eval_horizon: 50, n_simulations: 2, gamma: 1.0}
    n_fit: 2
    instances_per_job: 2
  cartpole_random:
    agent: rlpipe.agents.RandomAgent
    train_env: CartPole-v1
    fit_budget: 100
    eval_kwargs: {eval_horizon: 50, n_simulations: 2, gamma: 1.0}
    n_fit: 2
    instances_per_job: 2
metrics:
  reference_scores:
    FrozenLake-v1: {random: 0.01394, optimum: 0.7442}
    CartPole-v1: {random: 22.36, optimum: 500.0}
  bootstrap_samples: 100
  sample_efficiency: {n_points: 10}
adastop:
  frozenlake:                     # n above n_fit: AdaStop adds an instance to each experiment (adastop-fit-<b>)
    experiments: [frozenlake_value_iteration, frozenlake_q_learning, frozenlake_random]
    n: 3
    K: 1
    alpha: 0.5
    B: 100
"""


def bash_commands(readme: Path) -> list[str]:
    """The shell commands of a README's ```bash blocks, one per line, comments removed."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"(?:^|\s)#.*", "", line).strip()
            if command:
                commands.append(command)
    return commands


# Every ```python block of the README, by a line of it, and the test that runs it.
PYTHON_BLOCKS = {
    "class QAgent(AgentWithSimplePolicy):": "test_the_rlberry_style_agent_of_the_readme_reproduces",
    "class MyAgent(AgentWithSimplePolicy):": "test_the_additive_agent_of_the_readme_keeps_its_promise",
    "summary = manager.aggregate()": "test_the_python_api_example_runs",
    "from rlpipe.agents.sb3 import SACAgent": "tests/agents/test_sb3.py::test_the_readmes_deep_rl_example_runs",
    "best = manager.optimize_hyperparams(": "test_the_tuning_example_runs_after_the_python_api_example",
}


def test_every_python_block_of_the_readmes_is_run_by_a_test() -> None:
    assert [block for block in python_blocks() if sum(line in block for line in PYTHON_BLOCKS) != 1] == []
    assert len(python_blocks()) == len(PYTHON_BLOCKS)
    assert not [readme for readme in READMES[1:] if "```python" in readme.read_text()]  # none there to run
    assert "def test_the_readmes_deep_rl_example_runs(" in (REPO / "tests/agents/test_sb3.py").read_text()
    assert all(f"def {name}(" in Path(__file__).read_text() for name in PYTHON_BLOCKS.values() if "::" not in name)


def test_the_readmes_have_shell_commands_and_the_skip_lists_name_only_commands_they_have() -> None:
    parts = {part.strip() for readme in READMES for command in bash_commands(readme) for part in command.split("&&")}
    assert len(bash_commands(README)) > 20 and bash_commands(PAPER_README)
    assert sorted(set(SKIPPED) - parts) == [] and sorted(set(DRY_RUN) - parts) == []
    assert not set(SKIPPED) & set(DRY_RUN)


def copy_of_the_repository(destination: Path) -> None:
    """The files git tracks, as the working tree has them (a fresh clone of what would be committed)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = REPO / name, destination / name
        if not source.is_symlink() and not source.exists():  # deleted in the working tree
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


@dataclass
class ReadmeRun:
    """What running the READMEs' commands in a copy of the repository left."""
    repo: Path
    commit: str
    ran: list[tuple[str, str, subprocess.CompletedProcess, float]] = field(default_factory=list)  # readme, command
    skipped: dict[str, str] = field(default_factory=dict)  # command part -> readme
    dry_run: dict[str, str] = field(default_factory=dict)

    @property
    def results(self) -> Path:
        return self.repo / "results"

    @property
    def config(self) -> dict:
        return yaml.safe_load(TINY_CONFIG)

    def shell(self, command: str) -> subprocess.CompletedProcess:
        """``command`` run by bash in the copy, as a user types it: ``snakemake``, ``python`` and ``rlpipe`` are those
        of the tests' interpreter, and ``rlpipe`` (like Python) runs the copy's package."""
        from snakemake_runner import env_with_tests_on_pythonpath

        env = env_with_tests_on_pythonpath()
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env["PYTHONPATH"] = os.pathsep.join([str(self.repo), env["PYTHONPATH"]])
        script = 'set -o pipefail\nrlpipe() { python -m rlpipe "$@"; }\n' + command
        return subprocess.run(["bash", "-c", script], cwd=self.repo, env=env, capture_output=True, text=True, timeout=600)


def run_the_readmes(repo: Path) -> ReadmeRun:
    copy_of_the_repository(repo)
    (repo / "config" / "config.yaml").write_text(TINY_CONFIG)
    (repo / "my_study.yaml").write_text(TINY_CONFIG)
    git = ["git", "-c", "user.name=rlpipe tests", "-c", "user.email=tests@rlpipe.invalid", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "a tiny study"]):
        subprocess.run(git + command, cwd=repo, check=True, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout
    run = ReadmeRun(repo, commit.strip())
    for readme in READMES:
        for command in bash_commands(readme):
            parts = []
            for part in (part.strip() for part in command.split("&&")):
                if part in SKIPPED:
                    run.skipped[part] = readme.name
                elif part in DRY_RUN:
                    run.dry_run[part] = readme.name
                    parts.append(f"{part} --dry-run")
                else:
                    parts.append(part)
            if parts:
                start = time.perf_counter()
                result = run.shell(" && ".join(parts))
                run.ran.append((str(readme.relative_to(REPO)), " && ".join(parts), result, time.perf_counter() - start))
    return run


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> ReadmeRun:
    return run_the_readmes(tmp_path_factory.mktemp("readme") / "rlpipe")


@pytest.mark.e2e
def test_every_shell_command_of_the_readmes_runs_as_written(readme_run: ReadmeRun) -> None:
    failed = [f"{readme}: `{command}` exited {result.returncode}:\n{result.stdout[-1500:]}\n{result.stderr[-2000:]}"
              for readme, command, result, _ in readme_run.ran if result.returncode != 0]
    assert failed == [], "\n\n".join(failed)
    # every skipped or dry-run command is one the READMEs have (a new command is run, never skipped silently)
    assert set(readme_run.skipped) == set(SKIPPED) and set(readme_run.dry_run) == set(DRY_RUN)
    ran = [command for _, command, *_ in readme_run.ran]
    assert "snakemake --cores 8 optimize" in ran and "snakemake --cores 8 adastop" in ran  # the placeholders' study too:
    assert "rlpipe validate my_study.yaml" in ran and "snakemake --report results/report.html" in ran
    # "A second `snakemake --cores 8` prints `Nothing to be done`" (after every command above, too)
    assert "A second `snakemake --cores 8` prints `Nothing to be done`." in " ".join(README.read_text().split())
    again = readme_run.shell("snakemake --cores 8")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stderr[-3000:]
    # what the README says of a target written after --configfile
    late_target = readme_run.shell("snakemake --cores 8 --configfile my_study.yaml optimize")
    assert late_target.returncode != 0 and "FileNotFoundError" in late_target.stderr and "'optimize'" in late_target.stderr
    assert "FileNotFoundError: ... 'optimize'" in " ".join(README.read_text().split())
    assert "FileNotFoundError: ... 'optimize'" in CONFIG_README.read_text()


# ------------------------------------------------------------------------------------------------ the outputs they name
def without_parentheses(text: str) -> str:
    while (shorter := re.sub(r"\([^()]*\)", "", text)) != text:
        text = shorter
    return text


def outputs_tree() -> list[str]:
    """The path (under results/, a folder ending with /) of every file and folder the README's Outputs tree names,
    with its placeholders (``<experiment>``, ``<i>``…); a folder the tree does not open is followed by the files
    its description lists."""
    block = README.read_text().split("\n## Outputs\n", 1)[1].split("```", 2)[1]
    entries: list[list] = []  # [depth, name, description]
    for line in block.splitlines():
        match = re.match(r"^((?:│   | {4})*)[├└]── (.*)$", line)
        if match:
            name, _, description = re.split(r"(\s{2,}|$)", match.group(2).strip(), maxsplit=1)
            entries.append([len(match.group(1)) // 4, name, description])
        elif entries and line.strip("│ "):
            entries[-1][2] += " " + line.strip("│ ")
    paths, folders = [], {0: ""}
    for position, (depth, name, description) in enumerate(entries):
        prefix = folders[depth]
        previous = ""
        for part in (piece for item in name.split(", ") for piece in item.replace("/.", "/ .").split("/ ")):
            part = previous.rsplit(".", 1)[0] + part if part.startswith(".") else part  # `x.json, .log`: x.log
            paths.append(prefix + part)
            previous = part
        if name.endswith("/") and ", " not in name:
            folders[depth + 1] = prefix + name
            opened = position + 1 < len(entries) and entries[position + 1][0] > depth
            if not opened:
                files = re.findall(r"[\w<>-]+\.(?:[a-z]+\b|\*)", without_parentheses(description.replace("`", "")))
                paths += [prefix + name + file for file in files]
    return paths


def test_the_outputs_tree_is_read_as_it_is_written() -> None:
    tree = outputs_tree()
    for path in ("summary.csv", "provenance.json", "cross_env/aggregates.pdf", "adastop/<name>/interim-<k>.log",
                 "<experiment>/batches/adastop-evaluate-<b>.*", "<experiment>/instances/<i>/writer.parquet",
                 "<experiment>/instances/<i>/evaluate.log", "<experiment>/optimize/confirm/<candidate>.log",
                 "<experiment>/optimize/running/", "<experiment>/optimize/workers/<k>.log", "compare.log"):
        assert path in tree
    assert len(tree) == len(set(tree)) > 60 and not [path for path in tree if " " in path]


def expanded(pattern: str, config: dict) -> list[str]:
    """``pattern``'s files in the tiny study: every experiment (that the folder or file concerns), instance,
    comparison and confirmation candidate, and the first batch, worker and interim."""
    experiments = list(config["experiments"])
    if "/optimize/" in pattern:
        experiments = [name for name, entry in config["experiments"].items() if "optimize" in entry]
    elif "/adastop-" in pattern:
        experiments = sorted({name for comparison in config["adastop"].values() for name in comparison["experiments"]})
    values = {"<experiment>": experiments, "<name>": list(config["adastop"]), "<candidate>": ["0", "current"],
              "<i>": [str(i) for i in range(2)], "<k>": ["0"],
              "<b>": ["[0-9]*"] if "/adastop-" in pattern else ["0"]}  # AdaStop's jobs are numbered by cells of instances
    placeholders = [name for name in values if name in pattern]
    paths = []
    for chosen in itertools.product(*(values[name] for name in placeholders)):
        path = pattern
        for name, value in zip(placeholders, chosen):
            path = path.replace(name, value)
        paths.append(path)
    return paths


@pytest.mark.e2e
def test_every_file_of_the_outputs_tree_exists_and_the_tree_names_every_file(readme_run: ReadmeRun) -> None:
    tree = outputs_tree()
    missing = []
    for pattern in tree:
        for path in expanded(pattern, readme_run.config):
            found = list(readme_run.results.glob(path)) if "*" in path else [readme_run.results / path]  # at least one
            if not any(p.is_dir() if path.endswith("/") else p.is_file() for p in found):
                missing.append(path)
    assert missing == []
    # and every file under results/ is named by the tree (a folder such as optimize/running/ names what it holds)
    named = [re.compile(re.sub(r"<\w+>", "[^/]+", re.escape(p).replace(r"\*", "[^/]*")) + ("" if p.endswith("/") else "$"))
             for p in tree]
    files = [str(p.relative_to(readme_run.results)) for p in readme_run.results.rglob("*") if p.is_file()]
    assert len(files) > 100 and [p for p in files if not any(pattern.match(p) for pattern in named)] == []


def documented_columns() -> dict[str, list[str]]:
    """The README's columns table: file (as the table names it) -> the columns it names."""
    table = README.read_text().split("\nColumns:\n", 1)[1].strip().split("\n\n", 1)[0]
    columns: dict[str, list[str]] = {}
    previous: list[str] = []
    for file, cell in re.findall(r"^\| `([^`]+)` \| (.*) \|$", table, flags=re.M):
        text = without_parentheses(cell).split(";", 1)[0]  # what follows a `;` explains the columns
        names = [name.strip() for span in re.findall(r"`([^`]+)`", text) for name in span.split(",")]
        previous = columns[file] = names + (previous if "the above" in text else [])
    return columns


def test_the_columns_table_is_read_as_it_is_written() -> None:
    columns = documented_columns()
    assert columns["writer_data.parquet"] == ["instance", "name", "tag", "value", "dw_time_elapsed", "global_step"]
    assert columns["<experiment>/evaluation.parquet"][:2] == ["experiment", "instance"]
    assert "fit_cpu_time_s" in columns["summary.csv"] and "fit_budget" in columns["summary.csv"]
    assert columns["cross_env/scores.csv"][-1] == "score" and len(columns) >= 12
    assert all(re.fullmatch(r"\w+", name) for names in columns.values() for name in names)


def read_columns(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    import pandas as pd

    return list(pd.read_csv(path, nrows=0).columns)


@pytest.mark.e2e
def test_every_column_the_readme_names_is_in_its_file(readme_run: ReadmeRun) -> None:
    tree = outputs_tree()
    missing = {}
    for file, names in documented_columns().items():
        [pattern] = [path for path in tree if path == file or path.endswith("/" + file)]
        for path in expanded(pattern, readme_run.config):
            absent = [name for name in names if name not in read_columns(readme_run.results / path)]
            if absent:
                missing[path] = absent
    assert missing == {}
    # "every CSV table has a `git_commit` column" (the last), and every Markdown and LaTeX table a line naming it
    tables = sorted(readme_run.results.rglob("*.csv"))
    assert len(tables) >= 10 and [p for p in tables if read_columns(p)[-1] != "git_commit"] == []
    texts = sorted([*readme_run.results.rglob("*.md"), *readme_run.results.rglob("*.tex")])
    assert len(texts) >= 5 and [p for p in texts if readme_run.commit[:12] not in p.read_text()] == []


def parquet_metadata_claim() -> tuple[str, str]:
    """What the README says Parquet files carry, and under which schema metadata key."""
    text = " ".join(README.read_text().split())
    claim = re.search(r"Parquet files carry (.*?) in their schema metadata \(key `(\w+)`\)", text)
    assert claim, "the README no longer says what a Parquet file's metadata holds"
    return claim.group(1), claim.group(2)


@pytest.mark.e2e
def test_every_parquet_file_carries_what_the_readme_says_in_its_metadata(readme_run: ReadmeRun) -> None:
    import pyarrow.parquet as pq

    carried, key = parquet_metadata_claim()
    claimed = [item for item in re.split(r", | and ", without_parentheses(carried).strip())]
    assert claimed == ["the root seed", "the library versions", "the git commit", "the hash of the task that wrote them"]
    assert re.search(r"\((.*)\)", carried).group(1) == "for `trials.parquet`, the study's name"
    files = sorted(readme_run.results.rglob("*.parquet"))
    assert {p.name for p in files} == {"writer.parquet", "evaluation.parquet", "writer_data.parquet", "trials.parquet"}
    wrong = {}
    for path in files:
        metadata = pq.read_schema(path).metadata or {}
        record = json.loads(metadata.get(key.encode(), b"{}"))
        checks = {"the root seed": record.get("root_seed", {}).get("entropy") == readme_run.config["seed"],
                  "the library versions": {"rlpipe", "numpy", "gymnasium"} <= set(record.get("versions", {})),
                  "the git commit": record.get("git", {}).get("commit") == readme_run.commit}
        if path.name == "trials.parquet":
            checks["the study's name"] = str(record.get("study")).startswith(f"{path.parent.parent.name}-")
        else:
            checks["the hash of the task"] = re.fullmatch(r"[0-9a-f]{16}", str(record.get("task_hash"))) is not None
        if not all(checks.values()):
            wrong[str(path.relative_to(readme_run.results))] = [words for words, held in checks.items() if not held]
    assert wrong == {}


@pytest.mark.e2e
def test_fit_json_has_the_times_the_readme_describes(readme_run: ReadmeRun) -> None:
    paragraph = README.read_text().split("A fit's times, in its `fit.json`:", 1)[1].split("\n\n", 1)[0]
    times = re.findall(r"`(\w+_time_s)`", paragraph)
    assert set(times) == {"cpu_time_s", "wall_time_s", "run_wall_time_s"}
    records = [json.loads(p.read_text()) for p in readme_run.results.glob("*/instances/*/fit.json")]
    assert len(records) >= 10
    assert [r for r in records if not all(isinstance(r.get(name), float) and r[name] >= 0 for name in times)] == []


@pytest.mark.e2e
def test_the_report_captions_and_labels_every_figure_of_the_default_target(readme_run: ReadmeRun) -> None:
    from snakemake_runner import report_items

    items = report_items(readme_run.results / "report.html")
    assert [path for path, item in items.items() if not item.get("caption") or not item.get("labels")] == []
    pages = {"results/provenance.html", "results/tuning.html", "results/adastop.html", "results/summary.csv"}
    figures = {str(p.relative_to(readme_run.repo)) for p in readme_run.results.rglob("*.png")
               if p.parent.name not in ("optimize", "frozenlake")}  # the tuning and AdaStop figures are in their pages
    assert sorted((pages | figures) - set(items)) == []
    for experiment in readme_run.config["experiments"]:
        labels = items[f"results/{experiment}/learning_curve.png"]["labels"]
        assert {"experiment", "agent", "env", "seeds"} <= set(labels) and labels["experiment"] == experiment


@pytest.mark.e2e
def test_the_readmes_commands_leave_nothing_git_does_not_ignore(readme_run: ReadmeRun) -> None:
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=readme_run.repo,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line for line in status if line.startswith("??")] == []


# ------------------------------------------------------------------------------------------------ cheap checks
def test_the_readmes_sample_of_a_bad_config_is_what_validation_prints() -> None:
    from rlpipe.pipeline import workflow

    sample = README.read_text().split("A bad config fails before any job starts", 1)[1].split("```\n", 2)[1]
    config = {"experiments": {
        "cartpole": {"agent": "rlpipe.agents.RandomAgent", "train_env": "CartPole-v1", "fit_budget": 100, "n_fits": 2},
        "lake": {"agent": "rlpipe.agents.RandomAgent", "train_env": "FrozenLake-v9", "fit_budget": 100}}}
    with pytest.raises(SystemExit) as exited:
        workflow.load_study_or_exit(config, ["my_study.yaml"])
    assert f"{exited.value.code}\n" == sample


FIGURE = re.compile(r"\d[\d.,]*\s?(?:s|ms|µs|MB|GB|core-s)\b|\*\*[\d.]+")


def test_every_benchmark_figure_names_the_command_that_reproduces_it() -> None:
    """In the README's Benchmarks sections, every table or paragraph with a measured figure follows (in its section)
    the `python tests/benchmarks/...` command that measures it, and that script exists."""
    section = README.read_text().split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    with_figures = 0
    for subsection in section.split("\n### "):
        commands: list[str] = []
        for paragraph in subsection.split("\n\n"):
            commands += re.findall(r"`python (tests/benchmarks/\w+\.py)\b[^`]*`", paragraph)
            if FIGURE.search(paragraph):
                with_figures += 1
                assert commands, f"no `python tests/benchmarks/...` command before these figures:\n{paragraph}"
        assert [command for command in commands if not (REPO / command).is_file()] == []
    assert with_figures >= 3
    # the fit budget of the parallel benchmark's table is the script's default
    [steps] = re.findall(r"PolicyGradientAgent on CartPole-v1, ([\d ]+) steps", section)
    [default] = re.findall(r'"--budget", type=int, default=([\d_]+)', (REPO / "tests/benchmarks/bench_parallel.py").read_text())
    assert int(steps.replace(" ", "")) == int(default.replace("_", ""))
