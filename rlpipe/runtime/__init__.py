"""What an agent is given when it runs: its seeds, its environments (built, wrapped and seeded), a writer,
and episode rollouts. Used by the agents and by every layer above them."""
