"""What an experiment is: the config schema, config files, the search space of tuning, and the validated
experiment spec that both drivers build their tasks from."""
