"""Which init kwargs an experiment may set or tune: not those rlpipe sets for each instance, and only keywords
the agent's constructor accepts (a typo gets the closest name a config could use)."""
from __future__ import annotations

from collections.abc import Iterable

from rlpipe.runtime.keywords import accepted_keywords, rejected_keywords

# Set by rlpipe for every instance; an experiment must not set them in init_kwargs nor tune them.
RESERVED_INIT_KWARGS = ("env", "eval_env", "copy_env", "seeder", "output_dir")


def unaccepted_init_kwargs(agent_class: type, names: Iterable[str]) -> list[str]:
    """A line for each of ``names`` the agent's constructor does not accept, suggesting only names an experiment may
    set: neither reserved (reported apart) nor private (``_execution_metadata`` and the like, which rlpipe passes)."""
    accepted = accepted_keywords(agent_class)
    if accepted is None:
        return []
    unknown = [name for name in names if name not in accepted and name not in RESERVED_INIT_KWARGS]
    offered = {name for name in accepted if name not in RESERVED_INIT_KWARGS and not name.startswith("_")}
    if not offered:
        return [f"{agent_class.__name__} does not accept '{name}' (it takes no init kwargs an experiment may set)"
                for name in unknown]
    return rejected_keywords(agent_class.__name__, unknown, offered)
