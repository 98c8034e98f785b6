# rlpipe: fit -> evaluate -> aggregate -> compare over every experiment in the config.
# Kept small: every cluster job re-parses it. The logic lives in the rlpipe package.
import os
import sys

sys.path.insert(0, workflow.basedir)  # this workflow's own rlpipe, for parsing and for the jobs
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))

from rlpipe.workflow import load_study_or_exit


if not workflow.overwrite_configfiles:  # a --configfile replaces the default config instead of extending it
    configfile: "config/config.yaml"


STUDY = load_study_or_exit(config, workflow.configfiles)


include: "workflow/rules/common.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/compare.smk"


rule all:
    default_target: True
    input:
        rw.all_outputs(STUDY),
