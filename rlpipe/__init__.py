"""rlpipe: reproducible reinforcement-learning experiments as a Snakemake workflow over a thin library.

Public names are imported lazily so that ``rlpipe <stage>`` jobs only pay for what they use. The
package is layered; each layer imports only the ones below it (checked by import-linter in CI):

- ``pipeline`` (the Snakemake driver's CLI and helpers) and ``manager`` (the rlberry-compatible Python driver);
- ``tuning``: hyperparameter optimisation (everything that imports Optuna);
- ``core``: the stages: tasks, fit, evaluate, aggregate, compare, and their statistics and plots;
- ``spec``: the config schema and the validated experiment spec both drivers build tasks from;
- ``agents``: the agent base classes, what an agent opts in to, the built-in agents;
- ``runtime``: what an agent is given: seeds, environments, a writer, rollouts;
- ``io``: files and records: atomic writes, Arrow tables, checkpoints, paths, provenance, logging;
- ``errors``: the one exception hierarchy.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# rlpipe.manager's exports, named here so that `import rlpipe` imports no subpackage (a test keeps the two equal)
_MANAGER = ("ExperimentManager", "AgentManager", "preset_manager", "MultipleManagers", "evaluate_agents",
            "read_writer_data", "plot_writer_data", "plot_smoothed_curves", "plot_synchronized_curves",
            "compare_agents", "AdastopComparator")
_EXPORTS = {
    "Agent": "rlpipe.agents.base",
    "AgentWithSimplePolicy": "rlpipe.agents.base",
    "DefaultWriter": "rlpipe.runtime.writer",
    "Seeder": "rlpipe.runtime.seeding",
    "WriterWrapper": "rlpipe.runtime.wrappers",
    **{name: "rlpipe.manager" for name in _MANAGER},
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlpipe' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
