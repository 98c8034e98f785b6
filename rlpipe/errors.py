"""The exceptions of rlpipe, in one hierarchy: their message is meant for the person who wrote the config,
the arguments or the agent, and names what is wrong and where."""


class RlpipeError(Exception):
    """Base class: the message alone says what is wrong and where; no traceback is needed."""


class ConfigError(RlpipeError, ValueError):
    """A study config or the arguments of ``ExperimentManager`` are invalid (the message names the key)."""


class EnvSpecError(ConfigError):
    """An environment spec cannot become an environment (unknown id, constructor or keyword)."""


class CheckpointError(RlpipeError):
    """A checkpoint cannot be read or written: missing, truncated, another format, untrusted or unpicklable."""


class OptimizationError(RlpipeError):
    """A hyperparameter study produced no usable result (every trial failed, or none completed)."""
