"""Hyperparameter optimisation with Optuna: samplers and pruners, the shared study and its trials, the
study's outputs, and the write-back of the best init kwargs into the config. The only layer that imports Optuna."""
