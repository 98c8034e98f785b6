# Wildcard constraints and input functions shared by the rules; all logic is in rlpipe.pipeline.workflow.
from rlpipe.pipeline import workflow as rw

RESULTS = rw.PATHS
INSTANCE = RESULTS.experiment("{experiment}").instance("{instance}")
EXPERIMENT = RESULTS.experiment("{experiment}")


wildcard_constraints:
    experiment=rw.EXPERIMENT_PATTERN,
    instance=r"\d+",
    worker=r"\d+",
