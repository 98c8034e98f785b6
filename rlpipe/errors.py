"""Exceptions whose message is meant for the person who wrote the config or the agent."""


class RlpipeError(Exception):
    """Base class: the message alone says what is wrong and where; no traceback is needed."""


class ConfigError(RlpipeError):
    """The study config is invalid (the message names the experiment and the key)."""


class CheckpointError(RlpipeError):
    """A checkpoint cannot be read: missing, truncated, from another format, or untrusted pickle."""
