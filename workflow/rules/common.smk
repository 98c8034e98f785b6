# Wildcard constraints and paths shared by the rules; all logic is in rlpipe.pipeline.workflow.
from rlpipe.pipeline import workflow as rw

RESULTS = rw.PATHS
EXPERIMENT = RESULTS.experiment("{experiment}")
FIT_BATCH = EXPERIMENT.batch("fit", "{batch}")
EVALUATE_BATCH = EXPERIMENT.batch("evaluate", "{batch}")
CROSS_ENV = RESULTS.cross_env  # the metrics across environments (a metrics section in the config)
JOB_RESOURCES = rw.job_resources(STUDY)


wildcard_constraints:
    experiment=rw.EXPERIMENT_PATTERN,
    batch=r"\d+",
    worker=r"\d+",
