"""Files and records: atomic writes, Arrow tables, checkpoints, the results layout, provenance, logging,
and import paths. Imports nothing of rlpipe but ``errors``."""
