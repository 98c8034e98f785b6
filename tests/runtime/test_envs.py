"""rlpipe.runtime.envs: every accepted spec form, wrappers, copies, errors, and describe_env."""
from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv

from rlpipe.errors import EnvSpecError
from rlpipe.runtime.envs import check_env_spec, describe_env, env_generators, make_env, seed_env

CARTPOLE_PATH = "gymnasium.envs.classic_control.cartpole:CartPoleEnv"


def make_cartpole(length: float = 0.5) -> gym.Env:
    env = CartPoleEnv()
    env.length = length
    return env


def not_an_env() -> dict:
    return {"I am": "not an env"}


# ---------------------------------------------------------------------------------------------- spec forms
def test_gymnasium_id_string():
    env = make_env("CartPole-v1")
    assert isinstance(env.unwrapped, CartPoleEnv)
    assert env.spec.id == "CartPole-v1"
    assert env.spec.max_episode_steps == 500


def test_mapping_with_id_and_kwargs():
    env = make_env({"id": "FrozenLake-v1", "kwargs": {"is_slippery": False, "map_name": "8x8"}})
    assert isinstance(env.unwrapped, FrozenLakeEnv)
    assert env.observation_space.n == 64
    assert env.spec.kwargs["is_slippery"] is False


def test_mapping_with_gym_make_kwargs():
    env = make_env({"id": "CartPole-v1", "kwargs": {"max_episode_steps": 7}})
    assert env.spec.max_episode_steps == 7


def test_mapping_with_constructor_and_kwargs():
    env = make_env({"constructor": f"{__name__}:make_cartpole", "kwargs": {"length": 2.0}})
    assert type(env) is CartPoleEnv
    assert env.length == 2.0


def test_mapping_with_constructor_class_path():
    env = make_env({"constructor": CARTPOLE_PATH})
    assert type(env) is CartPoleEnv


def test_rlberry_tuple_with_callable():
    env = make_env((make_cartpole, {"length": 3.0}))
    assert type(env) is CartPoleEnv and env.length == 3.0
    assert type(make_env((CartPoleEnv, {}))) is CartPoleEnv


def test_rlberry_tuple_with_gym_id():
    env = make_env(("CartPole-v1", {}))
    assert env.spec.id == "CartPole-v1"
    env = make_env(("FrozenLake-v1", {"is_slippery": False}))
    assert env.spec.kwargs["is_slippery"] is False


def test_rlberry_tuple_with_import_path():
    assert type(make_env((CARTPOLE_PATH, {}))) is CartPoleEnv
    # dotted form and None kwargs are accepted too
    assert type(make_env(("gymnasium.envs.classic_control.cartpole.CartPoleEnv", None))) is CartPoleEnv


def test_wrappers_are_applied_in_order_with_kwargs():
    spec = {
        "id": "FrozenLake-v1",
        "kwargs": {"is_slippery": False},
        "wrappers": [{"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_episode_steps": 5}}],
    }
    env = make_env(spec)
    assert isinstance(env, gym.wrappers.TimeLimit)
    env.reset(seed=0)
    # action 0 (left) in the top-left corner of a non-slippery lake: the agent never moves, never terminates
    for step in range(1, 6):
        _, _, terminated, truncated, _ = env.step(0)
        assert not terminated
        assert truncated == (step == 5)


def test_wrapper_given_as_plain_string():
    env = make_env({"id": "CartPole-v1", "wrappers": ["gymnasium.wrappers:RecordEpisodeStatistics"]})
    assert isinstance(env, gym.wrappers.RecordEpisodeStatistics)


def test_env_instance_is_copied_by_default():
    original = make_cartpole(length=1.25)
    copy = make_env(original)
    assert copy is not original
    assert type(copy) is CartPoleEnv and copy.length == 1.25
    assert make_env(original, copy_instance=False) is original


def test_each_call_builds_a_fresh_env():
    assert make_env("CartPole-v1") is not make_env("CartPole-v1")


# ---------------------------------------------------------------------------------------------- errors
def test_unknown_id_suggests_close_ids():
    with pytest.raises(EnvSpecError, match="does not know the env id 'CartPol-v1'; did you mean 'CartPole-v1'"):
        make_env("CartPol-v1")
    with pytest.raises(EnvSpecError, match="did you mean 'FrozenLake-v1'"):
        make_env({"id": "FrozenLak-v1"})
    with pytest.raises(EnvSpecError, match="did you mean 'CartPole-v1'"):
        make_env(("CartPol-v1", {}))


def test_unknown_id_without_close_match_has_no_suggestion():
    with pytest.raises(EnvSpecError) as info:
        make_env("Zzzzzzzzzz-v9")
    assert "did you mean" not in str(info.value)


def test_env_spec_error_is_a_value_error():
    assert issubclass(EnvSpecError, ValueError)


@pytest.mark.parametrize("spec", [{"id": "CartPole-v1", "constructor": CARTPOLE_PATH}, {}, {"kwargs": {}}])
def test_mapping_needs_exactly_one_of_id_or_constructor(spec):
    with pytest.raises(EnvSpecError, match="exactly one of 'id'.*or 'constructor'"):
        make_env(spec)


def test_unknown_module():
    with pytest.raises(EnvSpecError, match="cannot import 'no_such_pkg.envs:make': no module named 'no_such_pkg'"):
        make_env({"constructor": "no_such_pkg.envs:make"})
    with pytest.raises(EnvSpecError, match="cannot import module 'no_such_pkg'"):
        make_env({"id": "no_such_pkg:Foo-v0"})


def test_missing_attribute():
    with pytest.raises(EnvSpecError, match="has no attribute 'NoSuchEnv'"):
        make_env({"constructor": "gymnasium.envs.classic_control.cartpole:NoSuchEnv"})


def test_non_callable_constructor():
    with pytest.raises(EnvSpecError, match="env constructor 'math:pi' is not callable"):
        make_env({"constructor": "math:pi"})
    with pytest.raises(EnvSpecError, match="'math:pi' is not callable"):
        make_env(("math:pi", {}))


def test_constructor_returning_a_non_env():
    with pytest.raises(EnvSpecError, match="returned dict, not a gymnasium.Env"):
        make_env({"constructor": f"{__name__}:not_an_env"})
    with pytest.raises(EnvSpecError, match="returned dict, not a gymnasium.Env"):
        make_env((not_an_env, {}))


@pytest.mark.parametrize("spec, n", [(("CartPole-v1",), 1), (("CartPole-v1", {}, []), 3), ((), 0)])
def test_tuple_of_wrong_length(spec, n):
    with pytest.raises(EnvSpecError, match=rf"\(constructor, kwargs\), got {n} items"):
        make_env(spec)


@pytest.mark.parametrize("spec", [None, (None, None), [None, {}]])
def test_no_env_specs_build_no_env(spec):
    """rlberry's default train_env=(None, None) is an agent without an environment."""
    assert make_env(spec) is None
    check_env_spec(spec)  # valid
    assert describe_env(spec) == "none"


def test_tuple_head_of_wrong_type():
    with pytest.raises(EnvSpecError, match="must be callable or a string, got int"):
        make_env((3, {}))


@pytest.mark.parametrize("spec", [5, 2.5])
def test_unsupported_spec_types(spec):
    with pytest.raises(EnvSpecError, match=f"cannot make an environment from {type(spec).__name__}"):
        make_env(spec)


def test_a_two_item_list_is_read_as_a_tuple():
    """JSON and YAML have no tuples: a recorded (constructor, kwargs) comes back as a list."""
    env = make_env(["FrozenLake-v1", {"is_slippery": False}])
    assert env.unwrapped.spec.id == "FrozenLake-v1" and env.unwrapped.P[0][0] == [(1.0, 0, 0.0, False)]
    with pytest.raises(EnvSpecError, match="must be \\(constructor, kwargs\\), got 1 items"):
        make_env(["CartPole-v1"])


def test_unknown_wrapper():
    spec = {"id": "CartPole-v1", "wrappers": [{"wrapper": "no_such_pkg:Wrapper"}]}
    with pytest.raises(EnvSpecError, match="wrapper: cannot import 'no_such_pkg:Wrapper'"):
        make_env(spec)
    with pytest.raises(EnvSpecError, match="wrapper"):
        check_env_spec(spec)


def test_non_callable_wrapper_is_rejected_by_check_env_spec():
    with pytest.raises(EnvSpecError, match="not callable"):
        check_env_spec({"id": "CartPole-v1", "wrappers": ["math:pi"]})


def test_check_env_spec_resolves_without_building(monkeypatch):
    built = []
    monkeypatch.setattr(CartPoleEnv, "__init__", lambda self, *a, **k: built.append(1))
    check_env_spec({"constructor": CARTPOLE_PATH})
    check_env_spec((CARTPOLE_PATH, {}))
    check_env_spec("CartPole-v1")
    check_env_spec(("CartPole-v1", {}))
    assert built == []
    check_env_spec(CartPoleEnv.__new__(CartPoleEnv))  # an instance is accepted as is
    with pytest.raises(EnvSpecError, match="did you mean 'CartPole-v1'"):
        check_env_spec("CartPol-v1")


# ---------------------------------------------------------------------------------------------- describe_env
@pytest.mark.parametrize(
    "spec, name",
    [
        ("CartPole-v1", "CartPole-v1"),
        ({"id": "FrozenLake-v1", "kwargs": {"is_slippery": False}}, "FrozenLake-v1"),
        ({"constructor": CARTPOLE_PATH, "kwargs": {}}, CARTPOLE_PATH),
        ((make_cartpole, {}), "make_cartpole"),
        ((CartPoleEnv, {}), "CartPoleEnv"),
        (("CartPole-v1", {}), "CartPole-v1"),
        ((CARTPOLE_PATH, {}), CARTPOLE_PATH),
    ],
)
def test_describe_env_of_specs(spec, name):
    assert describe_env(spec) == name


def test_describe_env_of_instances():
    assert describe_env(gym.make("FrozenLake-v1")) == "FrozenLake-v1"
    assert describe_env(CartPoleEnv()) == "CartPoleEnv"  # no spec: the class name


# ---------------------------------------------------------------------------------------------- keyword checks
@pytest.mark.parametrize(("spec", "message"), [
    ({"id": "FrozenLake-v1", "kwargs": {"is_slipery": True}}, "FrozenLake-v1 does not accept 'is_slipery' (did you mean 'is_slippery'?)"),
    (("CartPole-v1", {"gravity": 3.0}), "CartPole-v1 does not accept 'gravity'"),
    ({"constructor": "gymnasium.envs.classic_control.cartpole:CartPoleEnv", "kwargs": {"render": True}},
     "CartPoleEnv does not accept 'render' (did you mean 'render_mode'?)"),
    ({"id": "CartPole-v1", "wrappers": [{"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_steps": 5}}]},
     "wrapper TimeLimit does not accept 'max_steps' (did you mean 'max_episode_steps'?)"),
])
def test_check_env_spec_rejects_keywords_the_env_does_not_accept(spec, message):
    with pytest.raises(EnvSpecError, match=re.escape(message)):
        check_env_spec(spec)


def test_check_env_spec_accepts_gymnasium_make_options_and_the_envs_own_arguments():
    check_env_spec({"id": "CartPole-v1", "kwargs": {"max_episode_steps": 50, "render_mode": None, "sutton_barto_reward": True}})
    check_env_spec(("FrozenLake-v1", {"map_name": "8x8", "is_slippery": False}))
    check_env_spec({"constructor": "gymnasium:make", "kwargs": {"id": "CartPole-v1", "anything": 1}})  # **kwargs: not checkable


def test_seed_env_seeds_resets_without_a_seed_and_the_spaces():
    """An agent that calls env.reset() and action_space.sample() itself gets the same numbers after seed_env."""
    def draws(seed: int) -> list:
        env = make_env("Taxi-v4")
        seed_env(env, np.random.SeedSequence(seed))
        return [int(env.reset()[0]) for _ in range(5)] + [int(env.action_space.sample()) for _ in range(5)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert len({int(make_env("Taxi-v4").reset()[0]) for _ in range(30)}) > 1  # unseeded envs draw OS entropy


def test_env_generators_names_every_generator_an_agent_can_draw_from() -> None:
    env = gym.make("FrozenLake-v1", disable_env_checker=True)
    env.unwrapped.observation_space = gym.spaces.Dict({"cell": gym.spaces.Discrete(16), "noise": gym.spaces.Box(0, 1)})
    seed_env(env, np.random.SeedSequence(3))
    env.observation_space.sample()  # subspaces make their generators when first used
    found = env_generators(env)
    assert sorted(found) == ["action_space", "np_random", "observation_space", "observation_space/cell",
                             "observation_space/noise"]
    assert found["np_random"] is env.unwrapped.np_random and found["action_space"] is env.action_space.np_random
    assert env_generators(None) == {}
