# rlpipe: fit -> evaluate -> aggregate -> compare over every experiment in the config.
# Kept small: every cluster job re-parses it. The logic lives in the rlpipe package.
import sys

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, workflow.basedir)  # this workflow's own rlpipe package

from rlpipe.pipeline.workflow import check_config_file_or_exit, load_study_or_exit, shell_prefix

shell.prefix(shell_prefix(workflow))  # puts the `rlpipe` command beside Snakemake's interpreter first on PATH


if not workflow.overwrite_configfiles:  # a --configfile replaces the default config instead of extending it
    check_config_file_or_exit("config/config.yaml")

    configfile: "config/config.yaml"



STUDY = load_study_or_exit(config, workflow.configfiles)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/optimize.smk"
include: "workflow/rules/adastop.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rw.all_outputs(STUDY),
