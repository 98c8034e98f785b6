"""rlpipe.spec.adastop: a config's AdaStop comparisons, their defaults, and one line per problem naming the key."""
from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from rlpipe.errors import ConfigError
from rlpipe.spec.adastop import AdastopSpec, can_reject
from rlpipe.spec.experiment import validate_study

LAKE = {"id": "FrozenLake-v1", "kwargs": {"is_slippery": True}}
EVAL = {"eval_horizon": 100, "n_simulations": 10, "gamma": 1.0}
EXPERIMENTS = {
    "vi": {"agent": "rlpipe.agents.ValueIterationAgent", "train_env": LAKE, "fit_budget": 10, "eval_kwargs": EVAL},
    "ql": {"agent": "rlpipe.agents.QLearningAgent", "train_env": LAKE, "fit_budget": 10, "eval_kwargs": EVAL},
    "random": {"agent": "rlpipe.agents.RandomAgent", "train_env": LAKE, "fit_budget": 10,
               "eval_kwargs": {**EVAL, "n_simulations": 50}},  # more precise, the same score
    "cart": {"agent": "rlpipe.agents.RandomAgent", "train_env": "CartPole-v1", "fit_budget": 10},
}


def config(**comparisons: dict[str, Any]) -> dict[str, Any]:
    return {"seed": 1, "experiments": EXPERIMENTS, "adastop": comparisons}


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_study(config)
    return list(info.value.problems)


def test_a_comparison_with_its_defaults_compares_every_pair():
    study = validate_study(config(lake={"experiments": ["vi", "ql", "random"]}))
    assert study.adastop == {"lake": AdastopSpec(name="lake", experiments=("vi", "ql", "random"),
                                                 comparisons=((0, 1), (0, 2), (1, 2)), n=5, K=5, alpha=0.05, beta=0.0,
                                                 B=10000)}
    assert validate_study({"experiments": EXPERIMENTS}).adastop == {}


def test_chosen_pairs_keep_their_order():
    study = validate_study(config(lake={"experiments": ["vi", "ql", "random"], "comparisons": [["random", "vi"],
                                                                                                ["ql", "vi"]],
                                        "n": 3, "K": 4, "alpha": 0.1, "beta": 0.01, "B": 500}))
    spec = study.adastop["lake"]
    assert spec.comparisons == ((2, 0), (1, 0)) and spec.pair_names() == [("random", "vi"), ("ql", "vi")]
    assert (spec.n, spec.K, spec.alpha, spec.beta, spec.B) == (3, 4, 0.1, 0.01, 500)


def test_experiments_of_sweeps_are_named_by_their_expanded_names():
    sweeps = {"lr": {"grid": {"init_kwargs.learning_rate": [0.1, 0.5]}, "agent": "rlpipe.agents.QLearningAgent",
                     "train_env": LAKE, "fit_budget": 10, "eval_kwargs": EVAL}}
    study = validate_study({**config(lr={"experiments": ["lr-learning_rate0.1", "lr-learning_rate0.5", "ql"]}),
                            "sweeps": sweeps})
    assert study.adastop["lr"].experiments == ("lr-learning_rate0.1", "lr-learning_rate0.5", "ql")


def test_every_problem_is_one_line_naming_its_key():
    assert problems(config(
        a={"experiments": ["vi", "qll", "vi", "nothing_like_it"]},
        b={"experiments": ["vi"]},
        c={"experiments": ["vi", "ql", "random"], "comparisons": [["vi", "ql"], ["ql", "vi"], ["vi", "vi"], ["vi", "cart"]]},
        d={"experiments": ["vi", "ql", "random"], "comparisons": [["vi", "ql"]]},
        e={"experiments": ["vi", "ql"], "n": 0, "alpha": 1.5, "typo": 1},
    )) == [
        "adastop.e: unknown key 'typo' (allowed: experiments, comparisons, n, K, alpha, beta, B, allow_different_evaluations)",
        "adastop.e.alpha: 1.5 is greater than or equal to the maximum of 1",
        "adastop.e.n: 0 is less than the minimum of 1",
        "adastop.a.experiments: no experiment named 'qll' (did you mean 'ql'?)",
        "adastop.a.experiments: no experiment named 'nothing_like_it' (experiments: cart, ql, random, vi)",
        "adastop.a.experiments: 'vi' is listed 2 times",
        "adastop.b.experiments: a comparison needs at least 2 experiments, got 1",
        "adastop.c.comparisons[1]: compares 'ql' and 'vi' a second time",
        "adastop.c.comparisons[2]: compares 'vi' with itself",
        "adastop.c.comparisons[3]: 'cart' is not one of the comparison's experiments (vi, ql, random)",
        "adastop.d.experiments: 'random' is in none of the comparisons: compare it or remove it",
    ]


def test_experiments_evaluated_differently_are_refused_unless_allowed():
    differently = {**EXPERIMENTS, "vi_discounted": {**EXPERIMENTS["vi"], "eval_kwargs": {**EVAL, "gamma": 0.9}}}
    assert problems({"experiments": differently, "adastop": {"x": {"experiments": ["vi", "cart", "vi_discounted"],
                                                                   "comparisons": [["vi", "cart"], ["vi", "vi_discounted"]]}}}) == [
        "adastop.x.experiments: 'vi' and 'cart' are not evaluated the same way (eval env FrozenLake-v1 "
        '{"is_slippery":true} vs CartPole-v1; eval_kwargs.eval_horizon 100 vs 100000), so their scores measure '
        "different things; set allow_different_evaluations: true to compare them anyway",
        "adastop.x.experiments: 'vi' and 'vi_discounted' are not evaluated the same way (eval_kwargs.gamma 1.0 vs 0.9), "
        "so their scores measure different things; set allow_different_evaluations: true to compare them anyway",
    ]
    allowed = validate_study(config(x={"experiments": ["vi", "cart"], "allow_different_evaluations": True}))
    assert allowed.adastop["x"].experiments == ("vi", "cart")
    # n_simulations changes how precisely a score is measured, not what it measures; an id is its mapping
    written = {**EXPERIMENTS, "lake": {**EXPERIMENTS["random"], "train_env": "FrozenLake-v1"},
               "lake_id": {**EXPERIMENTS["random"], "train_env": {"id": "FrozenLake-v1", "kwargs": {}}}}
    assert validate_study({"experiments": written, "adastop": {"x": {"experiments": ["vi", "random"]},
                                                                "y": {"experiments": ["lake", "lake_id"]}}}).adastop


def test_instances_with_their_own_init_kwargs_are_refused():
    per_instance = {**EXPERIMENTS, "ql4": {**EXPERIMENTS["ql"], "n_fit": 2,
                                           "init_kwargs_per_instance": [{"learning_rate": 0.1}, {}]}}
    assert problems({"experiments": per_instance, "adastop": {"x": {"experiments": ["vi", "ql4"]}}}) == [
        "adastop.x.experiments: 'ql4' sets init_kwargs_per_instance, but AdaStop needs instances that differ only by "
        "their seed (exchangeable scores)"]


def test_a_comparison_that_can_never_decide_is_refused_with_the_n_that_could():
    assert problems(config(x={"experiments": ["vi", "ql"], "n": 1, "K": 3, "alpha": 0.05})) == [
        "adastop.x: with n=1, K=3, alpha=0.05 and B=10000 no interim can decide 'larger' or 'smaller' (at every interim "
        "k, the smallest p-value of the permutation test, one over the splits of the scores, is above the level "
        "alpha*(k+1)/K allowed by then), so every pair would end 'equal': raise n or alpha (n = 2 could)"]
    assert not can_reject(2, 2, 0.02, 10000) and can_reject(2, 2, 0.06, 10000) and can_reject(5, 5, 0.05, 10000)
    assert can_reject(4, 3, 0.05, 10000) and not can_reject(4, 1, 0.01, 10000)  # 1/70 > 0.01
    assert can_reject(4, 1, 0.01, 50)  # random permutations: adastop may decide (see tests/core/test_adastop.py)


def test_an_experiment_may_not_be_named_as_the_comparisons_folder():
    named = {**EXPERIMENTS, "adastop": EXPERIMENTS["random"]}
    assert problems({"experiments": named, "adastop": {"x": {"experiments": ["vi", "adastop"]}}}) == [
        "experiments.adastop: the name 'adastop' is the folder of the AdaStop comparisons' results (results/adastop/): "
        "rename the experiment"]
    assert "adastop" in validate_study({"experiments": named}).experiments  # without comparisons, the name is free


def test_validating_a_config_with_comparisons_does_not_import_adastop():
    """A plain run never loads the adastop package: only an interim's decision job does."""
    code = ("import sys\n"
            "from rlpipe.spec.experiment import validate_study\n"
            "from rlpipe.pipeline import adastop, workflow\n"
            f"study = validate_study({config(x={'experiments': ['vi', 'ql']})!r})\n"
            "adastop.batch_task_json(study, 'vi', 'fit', 1)\n"
            "adastop.interim_records(study, 'x', 1, ['vi', 'ql'])\n"
            "print('adastop' in sys.modules, 'matplotlib' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
