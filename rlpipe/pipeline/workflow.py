"""Helpers for the Snakefile and rule files: input functions and target lists built from the study.

They live here rather than in the .smk files so that they are tested like the rest of the library.
"""
from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
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
    """The config files as a user names them: Snakemake makes them absolute, a file below the current folder is
    shown relative to it."""
    def shown(path: str) -> str:
        relative = os.path.relpath(path)
        return path if relative.startswith("..") else relative

    return ", ".join(shown(str(f)) for f in configfiles) or None


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


def job_priority(study: Study, experiment: str) -> int:
    """Snakemake's priority of the experiment's fit, evaluate and aggregate jobs: the higher, the earlier the experiment
    is listed. So experiments run in the config's order, one after another as far as the cores allow: each one's
    results are complete as early as possible, the jobs that run side by side cost about the same, and listing the
    longest experiments first leaves the fewest cores idle at the end (without priorities Snakemake interleaves the
    experiments' jobs as it likes, and a long job may start last)."""
    names = list(study.experiments)
    return len(names) - names.index(experiment)


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


def optimize_confirm_files(study: Study, experiment: str) -> list[str]:
    """The records of the experiment's confirmation jobs: one per trial rank ``0 .. top_k - 1``, then the current
    init_kwargs' (none when ``optimize.confirm.enabled`` is false)."""
    paths = PATHS.experiment(experiment).optimize
    return [str(paths.confirm_record(task.candidate)) for task in tasks.confirm_tasks(study.experiment(experiment))]


def optimize_confirm_json(study: Study, experiment: str, candidate: str) -> str:
    """What a confirmation job measures, as JSON (its params beside the study's task): a trial rank's task holds no
    init_kwargs, so a write-back reruns only the job of the current init_kwargs, whose task holds them."""
    confirm = {task.candidate: task for task in tasks.confirm_tasks(study.experiment(experiment))}
    if candidate not in confirm:
        raise ConfigError(f"experiment '{experiment}' confirms the candidates {', '.join(confirm) or 'none'}, "
                          f"not '{candidate}' (optimize.confirm)")
    return confirm[candidate].to_json()


def optimize_confirm_settings_json(study: Study, experiment: str) -> str:
    """The experiment's ``optimize.confirm`` as JSON: the select job's params (a new alpha reruns only it)."""
    import json

    return json.dumps(study.experiment(experiment).optimize["confirm"], sort_keys=True)


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


def caption_facts(study: Study, experiment: str) -> dict[str, Any]:
    """What the report's captions of an experiment state: its agent, env, number of seeds and CI method."""
    from rlpipe.runtime.envs import describe_env

    spec = study.experiment(experiment)
    return {"name": experiment, "agent": spec.agent.__name__, "env": describe_env(spec.evaluation_env), "n_fit": spec.n_fit,
            "fit_budget": spec.fit_budget, "confidence": f"{study.report['confidence']:.0%}",
            "n_resamples": study.report["bootstrap_samples"]}


def study_facts(study: Study) -> dict[str, Any]:
    """What the captions of the study's summary state: experiments, seeds per experiment, the interval's method."""
    seeds = sorted({spec.n_fit for spec in study.experiments.values()})
    return {"experiments": len(study.experiments), "seeds": str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]} to {seeds[-1]}",
            "confidence": f"{study.report['confidence']:.0%}", "n_resamples": study.report["bootstrap_samples"]}


def experiment_labels(study: Study, figure: str) -> Callable[[Any], dict[str, str]]:
    """Labels of an experiment's figure in the report's tables (instead of a bare file name)."""
    def labels(wildcards: Any) -> dict[str, str]:
        facts = caption_facts(study, wildcards.experiment)
        return {"experiment": facts["name"], "figure": figure, "agent": facts["agent"], "env": facts["env"],
                "seeds": str(facts["n_fit"])}

    return labels


def config_json(config: Mapping[str, Any]) -> str:
    """The config as the run sees it (files merged, overrides applied), as JSON: the provenance job's input."""
    import json

    return json.dumps(config, sort_keys=True, default=str)


def code_state() -> str:
    """The git commit and dirty flag of the running rlpipe, as a params value: the provenance page is rewritten
    when they change."""
    from rlpipe.io.provenance import code_version

    return str(code_version())


# The metrics across environments (rlpipe.core.cross_env_comparison): tables shown in papers, in three formats, the
# others as CSV, and a figure of each as PNG and vector PDF.
CROSS_ENV_SHOWN = ("aggregates", "improvement")
CROSS_ENV_FIGURES = ("aggregates", "improvement", "profiles", "sample_efficiency")


def cross_env_outputs(study: Study) -> list[str]:
    """The files of the cross_env job, in the order of its rule's outputs; none without a ``metrics`` section."""
    if study.metrics is None:
        return []
    files = PATHS.cross_env
    return [str(p) for p in (files.scores, *(files.table(name, suffix) for name in CROSS_ENV_SHOWN
                                             for suffix in ("csv", "md", "tex")),
                             files.table("profiles"), files.table("sample_efficiency"),
                             *(files.figure(name, suffix) for name in CROSS_ENV_FIGURES for suffix in ("png", "pdf")))]


def cross_env_task_json(study: Study) -> str:
    """What the cross_env job computes, as JSON (its params: the rerun trigger)."""
    return tasks.cross_env_task(study).to_json()


def writer_data_files(study: Study) -> list[str]:
    """Every experiment's writer data (the sample-efficiency curves read the configured tag of each)."""
    return [str(PATHS.experiment(name).writer_data) for name in study.experiments]


def cross_env_facts(study: Study) -> dict[str, Any]:
    """What the captions of the metrics across environments state: the numbers of algorithms, envs and runs, the
    interval's level and resamples, and the curves' tag."""
    task = tasks.cross_env_task(study)
    return {"algorithms": len({e["algorithm"] for e in task.experiments}), "envs": len(task.reference_scores),
            "experiments": len(task.experiments), "runs": sum(spec.n_fit for spec in study.experiments.values()),
            "confidence": f"{100 * task.confidence:.6g}%", "n_resamples": task.bootstrap_samples,
            "tag": task.sample_efficiency["tag"]}


def tuned_experiments(study: Study) -> list[str]:
    return [name for name, spec in study.experiments.items() if spec.optimize is not None]


def tuning_studies_json(study: Study) -> str:
    """Each tuned experiment's current study name, as JSON: what the tuning page checks its results against."""
    import json

    return json.dumps({name: tasks.optimize_task(study.experiments[name], study.root).study_name
                       for name in tuned_experiments(study)})


def adastop_tasks_json(study: Study) -> str:
    """Each AdaStop comparison's current task hash, as JSON: what the AdaStop page checks its results against."""
    import json

    from rlpipe.core.adastop import adastop_task

    return json.dumps({name: adastop_task(spec, study.root).task_hash() for name, spec in study.adastop.items()})


def opt_in_state(study: Study, page: str) -> str:
    """Digest of the files the ``page`` ("tuning" or "adastop") reads: the page is rewritten when they change."""
    from rlpipe.io.provenance import files_state

    if page == "tuning":
        return files_state(PATHS.tuning_page_inputs(tuned_experiments(study)))
    return files_state(PATHS.adastop_page_inputs(study.adastop))


def summary_files(study: Study) -> list[str]:
    return [str(PATHS.experiment(name).summary) for name in study.experiments]


def all_outputs(study: Study) -> list[str]:
    """Everything the default target builds: each experiment's aggregates and the comparison."""
    outputs = []
    for name in study.experiments:
        paths = PATHS.experiment(name)
        outputs += [str(p) for p in (paths.writer_data, paths.evaluation, paths.summary,
                                     paths.learning_curve_plot, paths.evaluation_plot)]
    pages = [str(PATHS.tuning_page)] * bool(tuned_experiments(study)) + [str(PATHS.adastop_page)] * bool(study.adastop)
    return outputs + [str(PATHS.summary_csv), str(PATHS.summary_md), str(PATHS.comparison_plot),
                      str(PATHS.provenance_html)] + cross_env_outputs(study) + pages
