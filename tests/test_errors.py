"""rlpipe.errors: one hierarchy under RlpipeError (config problems are also ValueErrors), and every exception
survives pickling with its type and message, as it must to come back from a worker of a process pool."""
from __future__ import annotations

import inspect
import pickle

import cloudpickle
import pytest

import rlpipe.errors as errors
from rlpipe.errors import CheckpointError, ConfigError, EnvSpecError, OptimizationError, RlpipeError, format_problems

ALL_ERRORS = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
              if issubclass(obj, BaseException) and obj.__module__ == errors.__name__]


def test_the_module_defines_exactly_the_known_errors():
    assert set(ALL_ERRORS) == {RlpipeError, ConfigError, EnvSpecError, CheckpointError, OptimizationError}


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_every_error_is_an_rlpipe_error_and_an_exception(error):
    assert issubclass(error, RlpipeError) and issubclass(error, Exception)
    assert error.__doc__ and error.__doc__.strip()


def test_the_hierarchy():
    assert RlpipeError.__bases__ == (Exception,)
    assert issubclass(ConfigError, ValueError) and issubclass(EnvSpecError, ConfigError)
    assert issubclass(EnvSpecError, ValueError)
    for error in (RlpipeError, CheckpointError, OptimizationError):
        assert not issubclass(error, ValueError)
    assert not issubclass(CheckpointError, ConfigError) and not issubclass(OptimizationError, ConfigError)


def test_a_config_error_is_caught_as_a_value_error_and_an_env_spec_error_as_a_config_error():
    with pytest.raises(ValueError, match="bad key 'n_fit'"):
        raise ConfigError("bad key 'n_fit'")
    with pytest.raises(ConfigError, match="unknown env id"):
        raise EnvSpecError("unknown env id 'CartPol-v1'")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_pickle_round_trip_keeps_type_and_message(error, protocol):
    message = f"experiment 'dqn': {error.__name__} in 'init_kwargs.gamma' — é"
    copy = pickle.loads(pickle.dumps(error(message), protocol=protocol))
    assert type(copy) is error and str(copy) == message and copy.args == (message,)


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_cloudpickle_round_trip_keeps_type_and_message(error):
    copy = pickle.loads(cloudpickle.dumps(error("message")))
    assert type(copy) is error and str(copy) == "message"


def test_a_round_tripped_error_is_still_caught_by_its_bases():
    copy = pickle.loads(pickle.dumps(EnvSpecError("unknown env")))
    with pytest.raises(ValueError, match="unknown env"):
        raise copy
    assert isinstance(copy, ConfigError) and isinstance(copy, RlpipeError)


# ---------------------------------------------------------------------------------------------- problem lists
def test_a_list_of_problems_has_one_layout():
    error = ConfigError.listing("invalid config (config.yaml)", ["seed: -1 is less than the minimum of 0",
                                                                 "experiments.e: missing required key 'agent'"])
    assert str(error) == ("invalid config (config.yaml):\n  - seed: -1 is less than the minimum of 0\n"
                          "  - experiments.e: missing required key 'agent'")
    assert error.problems == ("seed: -1 is less than the minimum of 0", "experiments.e: missing required key 'agent'")
    assert format_problems("h", ["a\nb"]) == "h:\n  - a\n    b"  # a problem's further lines stay under it


def test_an_error_of_one_message_is_its_one_problem():
    assert ConfigError("no experiment named 'x'").problems == ("no experiment named 'x'",)
    assert EnvSpecError("unknown env id").problems == ("unknown env id",)


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_the_problems_survive_pickling(dumps):
    copy = pickle.loads(dumps(ConfigError.listing("invalid optimize_hyperparams arguments", ["n_trials: 0 is less"])))
    assert type(copy) is ConfigError and copy.problems == ("n_trials: 0 is less",)
    assert str(copy) == "invalid optimize_hyperparams arguments:\n  - n_trials: 0 is less"
