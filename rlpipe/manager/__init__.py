"""The Python driver: rlberry's ``rlberry.manager`` API over rlpipe's core (``rlberry.manager`` → ``rlpipe.manager``).

Names are imported lazily: ``from rlpipe.manager import ExperimentManager`` does not load the plotting
and statistics modules (matplotlib, scipy, adastop) until they are used.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExperimentManager": "experiment_manager",
    "AgentManager": "experiment_manager",
    "preset_manager": "experiment_manager",
    "MultipleManagers": "tools",
    "evaluate_agents": "tools",
    "read_writer_data": "tools",
    "plot_writer_data": "tools",
    "plot_smoothed_curves": "tools",
    "plot_synchronized_curves": "tools",
    "compare_agents": "comparisons",
    "AdastopComparator": "comparisons",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlpipe.manager' has no attribute {name!r}")
    return getattr(importlib.import_module(f"rlpipe.manager.{module}"), name)
