"""rlpipe.spec.experiment: the validated spec, its defaults, one clear message per problem whichever driver
builds it, and the init kwargs an agent accepts. Reading config files is tested in test_config.py, the schema
in test_schema.py."""
from __future__ import annotations

import copy

import pytest

from rlpipe.agents import Agent, QLearningAgent, ValueIterationAgent
from rlpipe.errors import ConfigError
from rlpipe.runtime.keywords import accepted_keywords
from rlpipe.spec.experiment import ExperimentSpec, Study, experiment_spec, validate_study
from rlpipe.spec.init_kwargs import RESERVED_INIT_KWARGS

from helpers_configs import EXPERIMENT, MINIMAL, config, top


# ---------------------------------------------------------------------------------------------- defaults
def test_minimal_config_gets_every_default():
    study = validate_study(MINIMAL)
    assert isinstance(study, Study)
    assert study.seed == 42
    assert study.report == {"confidence": 0.95, "bootstrap_samples": 10000}
    assert list(study.experiments) == ["e"]
    assert study.experiment("e") == ExperimentSpec(
        name="e",
        agent=QLearningAgent,
        train_env="FrozenLake-v1",
        fit_budget=100,
        init_kwargs={},
        fit_kwargs={},
        eval_kwargs={},  # passed to eval as written; the rollout defaults are those of AgentWithSimplePolicy.eval
        n_fit=4,
        n_checkpoints=None,  # resolved per agent: 10 chunks for an additive fit, 1 otherwise
        writer={"print_log": True, "style_log": "multi_line", "log_interval": 3, "maxlen": None, "maxlen_by_tag": {}},
        learning_curve={"tag": "episode_rewards", "xtag": "global_step", "smoothing_window": 1},
        allow_pickle=False,
        instances_per_job="auto",  # resolved by the workflow: ceil(n_fit / 16)
        resources={"runtime": 120, "mem_mb": 2000, "cpus_per_task": 1, "gpu": 0},
    )


def test_defaults_fill_partial_sections_and_env_mappings():
    cfg = config(eval_kwargs={"n_simulations": 3}, writer={"print_log": False},
                 train_env={"id": "FrozenLake-v1"})
    cfg["report"] = {"confidence": 0.9}
    study = validate_study(cfg)
    e = study.experiment("e")
    assert e.eval_kwargs == {"n_simulations": 3}
    assert e.writer == {"print_log": False, "style_log": "multi_line", "log_interval": 3, "maxlen": None, "maxlen_by_tag": {}}
    assert e.train_env == {"id": "FrozenLake-v1", "kwargs": {}, "wrappers": []}
    assert study.report == {"confidence": 0.9, "bootstrap_samples": 10000}


def test_given_values_are_kept():
    cfg = config(n_fit=2, init_kwargs={"learning_rate": 0.5}, eval_env="FrozenLake8x8-v1")
    cfg["seed"] = 0
    study = validate_study(cfg)
    assert study.seed == 0
    assert study.experiment("e").n_fit == 2
    assert study.experiment("e").init_kwargs == {"learning_rate": 0.5}
    assert study.experiment("e").eval_env == "FrozenLake8x8-v1"


def test_input_is_not_mutated():
    cfg = config(eval_kwargs={"n_simulations": 3}, train_env={"id": "FrozenLake-v1"})
    before = copy.deepcopy(cfg)
    validate_study(cfg)
    assert cfg == before


def test_unknown_experiment_lookup():
    with pytest.raises(ConfigError, match=r"no experiment named 'x' \(experiments: e\)"):
        validate_study(MINIMAL).experiment("x")


# ---------------------------------------------------------------------------------------------- bad configs
# (config, dotted key path expected in the message, key phrase expected in the message)
BAD_CONFIGS = [
    pytest.param(top(experiment={}), "(top level)", "unknown key 'experiment' (did you mean 'experiments'?)",
                 id="unknown-top-level-key"),
    pytest.param({}, "(top level)", "missing required key 'experiments'", id="no-experiments"),
    pytest.param(config(fit_budjet=5), "experiments.e", "unknown key 'fit_budjet' (did you mean 'fit_budget'?)",
                 id="unknown-experiment-key"),
    pytest.param(config(n_fit=0), "experiments.e.n_fit", "0 is less than the minimum of 1", id="n_fit-0"),
    pytest.param(config(fit_budget=-5), "experiments.e.fit_budget", "-5 is less than the minimum of -1",
                 id="fit_budget-negative"),
    pytest.param(config(fit_budget="1000"), "experiments.e.fit_budget", "'1000' is not of type 'integer'",
                 id="fit_budget-string"),
    pytest.param(config(agent=None), "experiments.e", "missing required key 'agent'", id="missing-agent"),
    pytest.param(config(train_env=None), "experiments.e.train_env",
                 "QLearningAgent is evaluated by rolling out its policy, which needs an environment",
                 id="missing-train_env"),
    pytest.param(config(agent="no_such_pkg.agents.Agent"), "experiments.e.agent",
                 "cannot import 'no_such_pkg.agents.Agent': no module named 'no_such_pkg'", id="agent-module-missing"),
    pytest.param(config(agent="rlpipe.agents.QLearnAgent"), "experiments.e.agent",
                 "module 'rlpipe.agents' has no attribute 'QLearnAgent'", id="agent-attr-missing"),
    pytest.param(config(agent="collections.OrderedDict"), "experiments.e.agent",
                 "'collections.OrderedDict' is not a subclass of rlpipe.agents.Agent", id="agent-not-an-Agent"),
    pytest.param(config(agent="NoDots"), "experiments.e.agent", "is not an import path", id="agent-not-a-path"),
    pytest.param(config(train_env="CartPol-v1"), "experiments.e.train_env",
                 "gymnasium does not know the env id 'CartPol-v1'; did you mean 'CartPole-v1'", id="unknown-env-id"),
    pytest.param(config(eval_env={"id": "FrozenLak-v1"}), "experiments.e.eval_env",
                 "did you mean 'FrozenLake-v1'", id="unknown-eval-env-id"),
    pytest.param(config(train_env={"id": "CartPole-v1", "constructor": "gymnasium.envs:make"}),
                 "experiments.e.train_env", "exactly one of 'id'", id="env-id-and-constructor"),
    pytest.param(config(train_env={"id": "CartPole-v1", "kwarg": {}}), "experiments.e.train_env",
                 "unknown key 'kwarg' (did you mean 'kwargs'?)", id="env-unknown-key"),
    pytest.param(config(train_env={"constructor": "no_such_pkg.envs:make"}), "experiments.e.train_env",
                 "no module named 'no_such_pkg'", id="env-constructor-module-missing"),
    pytest.param(config(train_env={"id": "CartPole-v1", "wrappers": [{"wrapper": "no_such_pkg:W"}]}),
                 "experiments.e.train_env", "wrapper: cannot import 'no_such_pkg:W'", id="env-wrapper-missing"),
    pytest.param(config(eval_kwargs={"horizon": 10}), "experiments.e.eval_kwargs",
                 "the policy rollout of QLearningAgent does not accept 'horizon' (did you mean 'eval_horizon'?)",
                 id="eval_kwargs-unknown-key"),
    pytest.param(config(eval_kwargs={"gamma": 1.5}), "experiments.e.eval_kwargs.gamma",
                 "1.5 is greater than the maximum of 1", id="eval-gamma-above-1"),
    pytest.param(config(eval_kwargs={"n_simulations": 0}), "experiments.e.eval_kwargs.n_simulations",
                 "less than the minimum of 1", id="n_simulations-0"),
    pytest.param(config(init_kwargs={"learning_rat": 0.1}), "experiments.e.init_kwargs",
                 "QLearningAgent does not accept 'learning_rat' (did you mean 'learning_rate'?)",
                 id="init_kwargs-not-accepted"),
    pytest.param(config(init_kwargs={"seeder": 3}), "experiments.e.init_kwargs.seeder",
                 "is set by rlpipe for each instance", id="reserved-init-kwarg"),
    pytest.param(config(init_kwargs={"env": "CartPole-v1"}), "experiments.e.init_kwargs.env",
                 "is set by rlpipe for each instance", id="reserved-init-kwarg-env"),
    pytest.param(config(init_kwargs={"learning_rate": "1e-3"}), "experiments.e.init_kwargs.learning_rate",
                 "'1e-3' was read as a string", id="yaml11-float-string"),
    pytest.param(config(n_fit=2, init_kwargs_per_instance=[{}]), "experiments.e.init_kwargs_per_instance",
                 "has 1 entries but n_fit is 2", id="per-instance-wrong-length"),
    pytest.param(config(n_fit=2, init_kwargs_per_instance=[{}, {"gama": 0.5}]),
                 "experiments.e.init_kwargs_per_instance[1]", "does not accept 'gama' (did you mean 'gamma'?)",
                 id="per-instance-not-accepted"),
    pytest.param({"experiments": {"my exp": EXPERIMENT}}, "experiments", "'my exp' is not a valid name",
                 id="experiment-name-with-space"),
    pytest.param({"experiments": {}}, "experiments", "should be non-empty", id="empty-experiments"),
    pytest.param(config(writer={"style_log": "fancy"}), "experiments.e.writer.style_log",
                 "'fancy' is not one of ['multi_line', 'one_line', 'progressbar']", id="writer-style"),
    pytest.param(config(writer={"maxlen": 0}), "experiments.e.writer.maxlen", "less than the minimum of 1",
                 id="writer-maxlen-0"),
    pytest.param(config(learning_curve={"xtag": "time"}), "experiments.e.learning_curve.xtag",
                 "'time' is not one of ['global_step', 'dw_time_elapsed']", id="learning-curve-xtag"),
    pytest.param(top(report={"confidence": 1.5}), "report.confidence", "1.5 is greater than or equal to the maximum of 1",
                 id="report-confidence"),
    pytest.param(top(report={"bootstrap_samples": 10}), "report.bootstrap_samples", "less than the minimum of 100",
                 id="report-bootstrap-samples"),
    pytest.param(top(seed=-1), "seed", "-1 is less than the minimum of 0", id="seed-negative"),
    pytest.param(top(seed="42"), "seed", "'42' is not of type 'integer'", id="seed-string"),
    pytest.param(config(n_checkpoints=0), "experiments.e.n_checkpoints", "less than the minimum of 1",
                 id="n_checkpoints-0"),
    pytest.param(config(allow_pickle="yes"), "experiments.e.allow_pickle", "'yes' is not of type 'boolean'",
                 id="allow_pickle-string"),
    pytest.param(config(init_kwargs=[1]), "experiments.e.init_kwargs", "is not of type 'object'",
                 id="init_kwargs-list"),
]


@pytest.mark.parametrize("cfg, path, phrase", BAD_CONFIGS)
def test_bad_config(cfg, path, phrase):
    with pytest.raises(ConfigError) as info:
        validate_study(cfg)
    message = str(info.value)
    # the line of this problem starts with its key path
    assert any(line.startswith(f"{path}:") for line in info.value.problems), message
    assert phrase in message
    assert message.startswith("invalid config:\n") and f"\n  - {path}:" in message


def test_number_of_bad_configs():
    assert len(BAD_CONFIGS) >= 20


def test_every_problem_is_reported_at_once():
    cfg = copy.deepcopy(MINIMAL)
    cfg["experiments"]["a"] = {**EXPERIMENT, "n_fit": 0}
    cfg["experiments"]["b"] = {**EXPERIMENT, "agent": "rlpipe.agents.Nope"}
    cfg["seed"] = -3
    with pytest.raises(ConfigError) as info:
        validate_study(cfg)
    lines = info.value.problems
    assert any(line.startswith("experiments.a.n_fit:") for line in lines)
    assert any(line.startswith("experiments.b.agent:") for line in lines)
    assert any(line.startswith("seed:") for line in lines)
    assert not any(line.startswith("experiments.e") for line in lines)  # the valid experiment is fine
    assert len(lines) == 3


def test_schema_errors_and_the_other_keys_problems_are_listed_together():
    # one pass lists every problem of the experiment: the keys the schema accepted are still checked
    cfg = config(agent="rlpipe.agents.Nope", n_fit=0)
    with pytest.raises(ConfigError) as info:
        validate_study(cfg)
    assert str(info.value) == ("invalid config:\n  - experiments.e.n_fit: 0 is less than the minimum of 1\n"
                               "  - experiments.e.agent: cannot import 'rlpipe.agents.Nope': module 'rlpipe.agents' has "
                               "no attribute 'Nope'")


def test_a_rejected_key_is_not_checked_further_but_the_others_are():
    cfg = config(n_fit=0, init_kwargs_per_instance=[{}], init_kwargs={"learning_rte": 0.1}, train_env="FrozenLak-v1")
    with pytest.raises(ConfigError) as info:
        validate_study(cfg)
    assert [line.split(":")[0] for line in info.value.problems] == [
        "experiments.e.n_fit", "experiments.e.init_kwargs", "experiments.e.train_env"]  # no length check of n_fit 0


class ModeAgent(QLearningAgent):
    """An agent with a string hyperparameter."""

    def __init__(self, env, mode: str = "fast", **kwargs):
        super().__init__(env, **kwargs)
        self.mode = mode


def test_other_strings_in_init_kwargs_are_fine():
    study = validate_study(config(agent=f"{__name__}:ModeAgent", init_kwargs={"mode": "e5", "gamma": 0.5}))
    assert study.experiment("e").init_kwargs == {"mode": "e5", "gamma": 0.5}


# ---------------------------------------------------------------------------------------------- accepted kwargs
def test_accepted_init_kwargs_of_q_learning():
    accepted = accepted_keywords(QLearningAgent)
    assert {"gamma", "learning_rate", "epsilon_start", "epsilon_end", "epsilon_decay_steps"} <= accepted
    assert set(RESERVED_INIT_KWARGS) <= accepted  # env, eval_env, copy_env, seeder, output_dir
    assert "self" not in accepted and "kwargs" not in accepted


def test_accepted_init_kwargs_of_value_iteration_and_base():
    assert {"gamma", "epsilon", "env", "seeder"} <= accepted_keywords(ValueIterationAgent)
    assert "learning_rate" not in accepted_keywords(ValueIterationAgent)
    assert accepted_keywords(Agent) >= {"env", "eval_env", "copy_env", "seeder", "output_dir"}


def test_accepted_init_kwargs_none_when_kwargs_go_anywhere():
    class Base:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class Child(Base):
        def __init__(self, a=1, **kwargs):
            super().__init__(**kwargs)

    assert accepted_keywords(Child) is None
    assert accepted_keywords(Base) is None


def test_accepted_init_kwargs_follows_inherited_init():
    class NoInit(QLearningAgent):
        pass

    class KeywordOnly(QLearningAgent):
        def __init__(self, env, *, extra=1, **kwargs):
            super().__init__(env, **kwargs)

    assert accepted_keywords(NoInit) == accepted_keywords(QLearningAgent)
    assert accepted_keywords(KeywordOnly) == accepted_keywords(QLearningAgent) | {"extra"}


# ---------------------------------------------------------------------------------------------- the Python API's entries
def test_experiment_spec_leaves_the_callers_values_alone():
    env = {"id": "FrozenLake-v1"}
    writer = {"print_log": False}
    entry = {"agent": QLearningAgent, "train_env": env, "eval_env": env, "fit_budget": 10, "writer": writer}
    before = copy.deepcopy(entry)
    spec = experiment_spec("e", entry)
    assert entry == before and entry["agent"] is QLearningAgent  # no default filled into the caller's dicts
    assert spec.train_env == spec.eval_env == {"id": "FrozenLake-v1", "kwargs": {}, "wrappers": []}
    assert spec.train_env is not env and spec.writer["style_log"] == "multi_line"


def test_experiment_spec_keeps_an_env_given_as_a_python_object():
    def make() -> object:
        raise AssertionError("validation builds no env")

    spec = experiment_spec("e", {"agent": QLearningAgent, "train_env": (make, {}), "fit_budget": 10})
    assert spec.train_env[0] is make
    assert experiment_spec("e", {"agent": "helpers_agents:EvalOnlyAgent", "train_env": (None, None),
                                 "fit_budget": 10}).train_env == (None, None)  # rlberry's "no env", as given


def test_experiment_spec_and_a_config_give_the_same_spec():
    entry = {"agent": "rlpipe.agents.QLearningAgent", "train_env": {"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}},
             "eval_env": None, "fit_budget": 10}
    assert experiment_spec("e", entry) == validate_study({"experiments": {"e": entry}}).experiment("e")


def test_eval_env_null_means_the_train_env():
    cfg = config()
    cfg["experiments"]["e"]["eval_env"] = None
    spec = validate_study(cfg).experiment("e")
    assert spec.eval_env is None and spec.evaluation_env == "FrozenLake-v1"


def test_experiment_spec_lists_every_problem_under_the_experiment():
    with pytest.raises(ConfigError) as info:
        experiment_spec("e", {"agent": QLearningAgent, "train_env": "FrozenLake-v1", "fit_budget": "1e4",
                              "init_kwargs": {"learning_rte": 0.1}})
    assert info.value.problems == ("fit_budget: '1e4' was read as a string (write 10000 for an integer; YAML 1.1 floats "
                                   "need a dot and a signed exponent: write 1.0e+4)",
                                   "init_kwargs: QLearningAgent does not accept 'learning_rte' (did you mean 'learning_rate'?)")
    assert str(info.value) == "invalid experiment 'e':\n" + "\n".join(f"  - {line}" for line in info.value.problems)


@pytest.mark.parametrize("entry", [
    {"fit_kwargs": {"lr": "3e-4"}},
    {"eval_kwargs": {"gamma": "1e-3"}},
    {"train_env": {"id": "FrozenLake-v1", "kwargs": {"max_episode_steps": "1e3"}}},
    {"init_kwargs": {"learning_rate": "1e-3"}, "fit_budget": "1e2"},
], ids=["fit_kwargs", "eval_kwargs", "env-kwargs", "init_kwargs-and-budget"])
def test_a_misread_float_gets_the_same_lines_from_both_drivers(entry):
    full = {**EXPERIMENT, **entry}
    with pytest.raises(ConfigError) as from_config:
        validate_study({"experiments": {"e": full}})
    with pytest.raises(ConfigError) as from_api:
        experiment_spec("e", full)
    assert [f"experiments.e.{line}" for line in from_api.value.problems] == list(from_config.value.problems)
    assert all("was read as a string" in line for line in from_config.value.problems)
    assert len(from_config.value.problems) == len(entry)


def test_suggestions_name_only_keys_an_experiment_may_set():
    with pytest.raises(ConfigError) as info:
        validate_study(config(init_kwargs={"seed": 3}))
    [problem] = info.value.problems
    assert problem.startswith("experiments.e.init_kwargs: QLearningAgent does not accept 'seed' (allowed: ")
    for name in (*RESERVED_INIT_KWARGS, "_execution_metadata", "_default_writer_kwargs"):
        assert f"'{name}'" not in problem and f" {name}," not in problem and not problem.endswith(f"{name})")
    assert "learning_rate" in problem


def test_the_studys_resources_go_under_each_experiments_and_each_sweeps_own():
    cfg = config(resources={"mem_mb": 900, "slurm_partition": "gpu"})
    cfg["resources"] = {"slurm_partition": "cpu", "slurm_account": "lab", "mem_mb": 500}
    cfg["experiments"]["other"] = {"agent": "rlpipe.agents.RandomAgent", "train_env": "FrozenLake-v1", "fit_budget": 10}
    cfg["sweeps"] = {"s": {"grid": {"fit_budget": [10, 20]}, "agent": "rlpipe.agents.RandomAgent",
                           "train_env": "FrozenLake-v1", "resources": {"runtime": 5}}}
    before = copy.deepcopy(cfg)
    study = validate_study(cfg)
    assert cfg == before  # the config itself is not changed
    defaults = {"runtime": 120, "cpus_per_task": 1, "gpu": 0}
    assert study.experiment("e").resources == {**defaults, "slurm_partition": "gpu", "slurm_account": "lab", "mem_mb": 900}
    assert study.experiment("other").resources == {**defaults, "slurm_partition": "cpu", "slurm_account": "lab",
                                                   "mem_mb": 500}
    assert study.experiment("s-10").resources == {**defaults, "runtime": 5, "slurm_partition": "cpu",
                                                  "slurm_account": "lab", "mem_mb": 500}


def test_bad_study_resources_are_reported_once():
    cfg = config()
    cfg["experiments"]["other"] = {"agent": "rlpipe.agents.RandomAgent", "train_env": "FrozenLake-v1", "fit_budget": 10}
    cfg["resources"] = {"mem_mb": 0, "slurm_partitio": "x"}
    with pytest.raises(ConfigError) as error:
        validate_study(cfg)
    assert list(error.value.problems) == ["resources: unknown key 'slurm_partitio' (did you mean 'slurm_partition'?)",
                                    "resources.mem_mb: 0 is less than the minimum of 1"]
