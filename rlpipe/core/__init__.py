"""The stages both drivers run: tasks built from the spec, fitting, evaluation, aggregation and comparison,
with their statistics, curves and plots."""
