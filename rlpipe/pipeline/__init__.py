"""The Snakemake driver: the ``rlpipe`` command the rules run, and the helpers the Snakefile and rules call."""
