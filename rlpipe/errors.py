"""The exceptions of rlpipe, in one hierarchy: their message is meant for the person who wrote the config,
the arguments or the agent, and names what is wrong and where."""
from __future__ import annotations

from collections.abc import Sequence


class RlpipeError(Exception):
    """Base class: the message alone says what is wrong and where; no traceback is needed."""


class ConfigError(RlpipeError, ValueError):
    """A study config or the arguments of ``ExperimentManager`` are invalid (the message names the key).

    ``problems`` holds one line per problem, each naming its key; the message lays them out with
    :func:`format_problems` (an error built from one message has that message as its one problem).
    """

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = (message,) if problems is None else tuple(problems)

    @classmethod
    def listing(cls, header: str, problems: Sequence[str]) -> ConfigError:
        """An error listing ``problems`` under ``header`` (e.g. "invalid config (config.yaml)")."""
        return cls(format_problems(header, problems), problems)


class EnvSpecError(ConfigError):
    """An environment spec cannot become an environment (unknown id, constructor or keyword)."""


class CheckpointError(RlpipeError):
    """A checkpoint cannot be read or written: missing, truncated, another format, untrusted or unpicklable."""


class OptimizationError(RlpipeError):
    """A hyperparameter study produced no usable result (every trial failed, or none completed)."""


def format_problems(header: str, problems: Sequence[str]) -> str:
    """The one layout of a list of problems, whichever driver reports them: ``header:``, then a ``  - `` line
    per problem (a problem's further lines indented under it)."""
    return f"{header}:\n" + "\n".join("  - " + problem.replace("\n", "\n    ") for problem in problems)
