"""rlpipe: reproducible reinforcement-learning experiments as a Snakemake workflow over a thin library.

Public names are imported lazily so that ``python -m rlpipe <stage>`` jobs only pay for what they use.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "rlpipe.agents.base",
    "AgentWithSimplePolicy": "rlpipe.agents.base",
    "DefaultWriter": "rlpipe.writer",
    "ExperimentManager": "rlpipe.manager",
    "AgentManager": "rlpipe.manager",
    "preset_manager": "rlpipe.manager",
    "MultipleManagers": "rlpipe.manager_tools",
    "evaluate_agents": "rlpipe.manager_tools",
    "plot_writer_data": "rlpipe.manager_tools",
    "plot_smoothed_curves": "rlpipe.manager_tools",
    "plot_synchronized_curves": "rlpipe.manager_tools",
    "read_writer_data": "rlpipe.manager_tools",
    "compare_agents": "rlpipe.agent_comparisons",
    "AdastopComparator": "rlpipe.agent_comparisons",
    "Seeder": "rlpipe.seeding",
    "WriterWrapper": "rlpipe.wrappers",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlpipe' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
