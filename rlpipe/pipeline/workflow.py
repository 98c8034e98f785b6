"""Helpers for the Snakefile and rule files: input functions and target lists built from the study.

They live here rather than in the .smk files so that they are tested like the rest of the library.
"""
from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rlpipe.core import tasks
from rlpipe.errors import ConfigError
from rlpipe.io.paths import StudyPaths
from rlpipe.spec.config import load_config_file, merge_configs
from rlpipe.spec.experiment import Study, check_tuning, validate_study
from rlpipe.spec.schema import config_schema, experiment_schema

PATHS = StudyPaths()
# The resources of every fit, evaluate and optimize-worker job (the schema fills them in for each experiment).
RESOURCE_KEYS = ("runtime", "mem_mb", "cpus_per_task", "gpu")
# The experiment wildcard matches exactly the names the schema allows.
EXPERIMENT_PATTERN = config_schema()["properties"]["experiments"]["propertyNames"]["pattern"].strip("^$")


def shell_prefix(workflow: Any) -> str:
    """Prefix of every shell job: strict mode, this workflow's rlpipe package first on PYTHONPATH, and the folder of
    Snakemake's own interpreter first on PATH, so that the ``rlpipe`` a rule runs is the console script installed
    beside it (no launcher shim such as pyenv's, which costs ~80 ms a job). A rule's command is thus the
    command a person types. In a conda env without the console script, ``rlpipe`` runs ``python -m rlpipe``.
    Being shell code, not a rule variable, it changes no job's params or code when the machine changes.
    """
    from snakemake.settings.types import DeploymentMethod

    settings = workflow.deployment_settings
    uses_conda = settings is not None and DeploymentMethod.CONDA in settings.deployment_method
    path = "" if uses_conda else f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH; "
    pythonpath = shlex.quote(workflow.basedir) + "${{PYTHONPATH:+:$PYTHONPATH}}"  # braces doubled for Snakemake
    fallback = 'command -v rlpipe >/dev/null || rlpipe() {{ python -m rlpipe "$@"; }}; '
    return f"set -euo pipefail; export PYTHONPATH={pythonpath}; {path}{fallback}"


def check_config_file_or_exit(path: str) -> None:
    """Read the config file with rlpipe's loader first: its errors name the file and the line."""
    try:
        load_config_file(path)
    except ConfigError as error:
        _exit(error)


def load_study_or_exit(config: dict[str, Any], configfiles: Sequence[str]) -> Study:
    """Validate the config; on error print every problem and exit before any job is scheduled. A study of many jobs
    gets a warning: Snakemake takes about a millisecond to plan each."""
    try:
        study = validate_study(config, source=_source(configfiles))
    except ConfigError as error:
        _exit(error)
    warning = many_jobs_warning(study)
    if warning:
        print(f"rlpipe: {warning}", file=sys.stderr)
    return study


MANY_JOBS = 10_000  # above this many jobs, planning takes more than about 10 s


def many_jobs_warning(study: Study) -> str | None:
    """Why and how to plan fewer jobs, when the study has more than :data:`MANY_JOBS` fit and evaluate jobs."""
    jobs = sum(len(tasks.job_batches(spec)) for spec in study.experiments.values())
    if 2 * jobs <= MANY_JOBS:
        return None
    return (f"the study has {2 * jobs:,} fit and evaluate jobs, which Snakemake takes about a millisecond each to plan; "
            "for cheap instances, raise instances_per_job (in a sweep's shared keys, say) for fewer, larger jobs")


def check_tuning_or_exit(study: Study, configfiles: Sequence[str], experiments: Sequence[str] | None = None) -> None:
    """The checks of the optimize sections that import Optuna (sampler keywords), run only when the DAG holds
    optimize jobs: on a problem, print it and exit before any job is scheduled, as a bad config does."""
    try:
        check_tuning(study, experiments, source=_source(configfiles))
    except ConfigError as error:
        _exit(error)


def _source(configfiles: Sequence[str]) -> str | None:
    return ", ".join(str(f) for f in configfiles) or None


def _exit(error: ConfigError) -> NoReturn:
    sys.exit(f"rlpipe: {error}\nNo job was run; nothing under results/ was changed.")


def batch_task_json(study: Study, experiment: str, stage: str, batch: str) -> str:
    """What a fit or evaluate job (a batch of instances) computes, as JSON: the rule's params, so the rerun trigger."""
    return tasks.task_batch(stage, study.experiment(experiment), study.root, int(batch)).to_json()


def run_settings(study: Study, experiment: str) -> tasks.RunSettings:
    """How the experiment's fit and evaluate jobs run. A param of this type is not recorded by Snakemake (only
    builtin values are), so changing it reruns no job; the shell command receives its JSON."""
    return tasks.run_settings(study.experiment(experiment))


def batch_records(study: Study, experiment: str, stage: str) -> list[str]:
    """The records of every ``stage`` job ("fit" or "evaluate") of ``experiment``: one per batch of instances."""
    paths = PATHS.experiment(experiment)
    return [str(paths.batch(stage, b).record) for b in range(len(tasks.job_batches(study.experiment(experiment))))]


def threads(study: Study, experiment: str) -> int:
    """Cores of one of the experiment's jobs (``resources.cpus_per_task``)."""
    return study.experiment(experiment).resources["cpus_per_task"]


def job_resources(study: Study, without: Sequence[str] = ()) -> dict[str, Callable[[Any], Any]]:
    """The ``resources`` of a fit, evaluate or optimize-worker rule, from each experiment's ``resources``: the
    runtime, memory, cores and GPUs every experiment has (defaults filled in), and the optional SLURM keys some
    experiment sets (the others get none of them), but the keys ``without`` (an optimize worker's runtime is the
    profile's: it runs many trials)."""
    keys = [*RESOURCE_KEYS, *sorted({key for spec in study.experiments.values() for key in spec.resources
                                     if key not in RESOURCE_KEYS})]
    return {key: _resource(study, key) for key in keys if key not in without}


def study_job_resources() -> dict[str, Any]:
    """The runtime and memory of the jobs over the whole study (compare, an optimize select job): the defaults of an
    experiment's ``resources``. A rule that sets them keeps them when ``--default-resources`` replaces the profile's
    (to give an account or a partition)."""
    defaults = experiment_schema()["properties"]["resources"]["properties"]
    return {key: defaults[key]["default"] for key in ("runtime", "mem_mb")}


def _resource(study: Study, key: str) -> Callable[[Any], Any]:
    def value(wildcards: Any) -> Any:
        return study.experiment(wildcards.experiment).resources.get(key)
    return value


def aggregate_task_json(study: Study, experiment: str) -> str:
    return tasks.aggregate_task(study.experiment(experiment), study.root, study.report).to_json()


def optimize_task_json(study: Study, experiment: str) -> str:
    return tasks.optimize_task(study.experiment(experiment), study.root).to_json()


def optimize_worker_files(study: Study, experiment: str, configfiles: Sequence[str] = ()) -> list[str]:
    """The records of the experiment's ``n_optuna_workers`` worker jobs. Their select job's write-back is checked first,
    with the sampler's keywords, so that a problem stops the run before any trial."""
    check_tuning_or_exit(study, configfiles, [experiment])
    try:
        writeback_config_file(configfiles, experiment)
    except ConfigError as error:
        _exit(error)
    paths = PATHS.experiment(experiment).optimize
    return [str(paths.worker_record(k)) for k in range(study.experiment(experiment).optimize["n_optuna_workers"])]


def optimize_outputs(study: Study, configfiles: Sequence[str] = ()) -> list[str]:
    """What the ``optimize`` target builds: the best init kwargs of every experiment with an ``optimize`` section."""
    check_tuning_or_exit(study, configfiles)
    return [str(PATHS.experiment(name).optimize.best_init_kwargs) for name, spec in study.experiments.items()
            if spec.optimize is not None]


def writeback_config_file(configfiles: Sequence[str], experiment: str) -> str:
    """The config file the best init kwargs of ``experiment`` go into: the last one in use that defines it.

    The files are merged as Snakemake merges them and validated, since the write-back validates them so (the
    config in use may differ by ``--config`` values given on the command line, which no file keeps)."""
    files = [str(f) for f in configfiles]
    configs = [load_config_file(path) for path in files]
    for path, config in reversed(list(zip(files, configs))):
        experiments = config.get("experiments") or {}
        if isinstance(experiments, dict) and experiment in experiments:
            break
    else:
        raise ConfigError(f"no config file in use ({', '.join(files) or 'none'}) defines experiment "
                          f"'{experiment}', so its tuned init_kwargs have nowhere to go")
    try:
        validate_study(merge_configs(configs), source=", ".join(files))
    except ConfigError as error:
        raise ConfigError.listing(f"the tuned init_kwargs of '{experiment}' would be written into {path}, but the "
                                  f"config files without --config values are invalid ({', '.join(files)})",
                                  error.problems) from None
    return path


def writeback_config_files(configfiles: Sequence[str]) -> str:
    """The ``--config-files`` of an optimize select job: every config file in use, in order, quoted for the shell
    (the write-back validates them merged, the edited one included)."""
    return " ".join(shlex.quote(str(f)) for f in configfiles)


def summary_files(study: Study) -> list[str]:
    return [str(PATHS.experiment(name).summary) for name in study.experiments]


def all_outputs(study: Study) -> list[str]:
    """Everything the default target builds: each experiment's aggregates and the comparison."""
    outputs = []
    for name in study.experiments:
        paths = PATHS.experiment(name)
        outputs += [str(p) for p in (paths.writer_data, paths.evaluation, paths.summary,
                                     paths.learning_curve_plot, paths.evaluation_plot)]
    return outputs + [str(PATHS.summary_csv), str(PATHS.summary_md), str(PATHS.comparison_plot)]
