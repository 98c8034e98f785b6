"""The README's Python example runs as written (it is the first thing a notebook user copies)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

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
