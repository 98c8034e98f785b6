"""The ``rlpipe`` command (also ``python -m rlpipe``): the thin entry points the Snakemake rules call.

A rule's shell command is the command a person types: each stage takes its task as JSON (what it
computes, from the rule's params), for fit and evaluate its run settings as JSON (how it runs), and the
folder it writes to. ``rlpipe validate CONFIG`` checks a config without running anything. Errors in the
config or in a checkpoint print one line naming the experiment and instance; an exception raised by an
agent prints its traceback too. Either way the exit status is non-zero.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from rlpipe.errors import RlpipeError
from rlpipe.io.logs import configure_logging


def _fit(args: argparse.Namespace) -> None:
    from rlpipe.core.batches import fit_batch
    from rlpipe.core.tasks import RunSettings, TaskBatch
    from rlpipe.io.paths import ExperimentPaths

    fit_batch(TaskBatch.from_json(args.task), ExperimentPaths(Path(args.experiment_dir)), args.batch,
              RunSettings.from_json(args.run), prefix=args.record_prefix)


def _evaluate(args: argparse.Namespace) -> None:
    from rlpipe.core.batches import evaluate_batch
    from rlpipe.core.tasks import RunSettings, TaskBatch
    from rlpipe.io.paths import ExperimentPaths

    evaluate_batch(TaskBatch.from_json(args.task), ExperimentPaths(Path(args.experiment_dir)), args.batch,
                   RunSettings.from_json(args.run), prefix=args.record_prefix)


def _aggregate(args: argparse.Namespace) -> None:
    from rlpipe.core.aggregation import aggregate_experiment
    from rlpipe.core.batches import check_batch_outputs
    from rlpipe.core.tasks import AggregateTask
    from rlpipe.io.paths import ExperimentPaths

    task = AggregateTask.from_json(args.task)
    paths = ExperimentPaths(Path(args.experiment_dir))
    check_batch_outputs(paths, [Path(record) for record in args.batch_records])
    aggregate_experiment(task, [paths.instance(i) for i in task.instances], paths)


def _compare(args: argparse.Namespace) -> None:
    from rlpipe.core.comparison import compare_experiments
    from rlpipe.io.paths import StudyPaths

    compare_experiments(args.summaries, StudyPaths(Path(args.results_dir)))


def _provenance(args: argparse.Namespace) -> None:
    import json

    from rlpipe.core.provenance_page import study_provenance, write_provenance
    from rlpipe.io.paths import StudyPaths

    record = study_provenance(json.loads(args.config), args.config_files, args.summaries)
    write_provenance(record, StudyPaths(Path(args.results_dir)))


def _cross_env(args: argparse.Namespace) -> None:
    from rlpipe.core.cross_env_comparison import compare_across_envs
    from rlpipe.core.tasks import CrossEnvTask
    from rlpipe.io.paths import StudyPaths

    compare_across_envs(CrossEnvTask.from_json(args.task), StudyPaths(Path(args.results_dir)))


def _page(args: argparse.Namespace) -> None:
    import json

    from rlpipe.core import opt_in_pages
    from rlpipe.io.paths import StudyPaths

    write = opt_in_pages.write_tuning_page if args.page == "tuning" else opt_in_pages.write_adastop_page
    write(json.loads(args.current), StudyPaths(Path(args.results_dir)), Path(args.output))


def _optimize_worker(args: argparse.Namespace) -> None:
    from rlpipe.core.tasks import OptimizeTask
    from rlpipe.io.atomic import write_json
    from rlpipe.io.paths import OptimizePaths
    from rlpipe.tuning.study import run_worker

    paths = OptimizePaths(Path(args.optimize_dir))
    record = run_worker(OptimizeTask.from_json(args.task), paths, args.worker)
    write_json(paths.worker_record(args.worker), record)


def _optimize_confirm(args: argparse.Namespace) -> None:
    from rlpipe.core.tasks import ConfirmTask, OptimizeTask
    from rlpipe.io.atomic import write_json
    from rlpipe.io.paths import OptimizePaths
    from rlpipe.tuning.confirmation import measure_candidate

    confirm = ConfirmTask.from_json(args.confirm)
    paths = OptimizePaths(Path(args.optimize_dir))
    record = measure_candidate(OptimizeTask.from_json(args.task), confirm, paths)
    write_json(paths.confirm_record(confirm.candidate), record)


def _optimize_select(args: argparse.Namespace) -> None:
    import json

    from rlpipe.core.tasks import OptimizeTask
    from rlpipe.io.paths import OptimizePaths
    from rlpipe.tuning.confirmation import select_setting, selection_lines, selection_summary
    from rlpipe.tuning.study import summarize_study
    from rlpipe.tuning.writeback import update_init_kwargs

    task = OptimizeTask.from_json(args.task)
    paths = OptimizePaths(Path(args.optimize_dir))
    records = [json.loads(Path(path).read_text()) for path in args.confirm_records]
    selection = select_setting(task, json.loads(args.confirm) if args.confirm else None, paths, records)
    record = summarize_study(task, paths, selection=selection_summary(selection))
    counts = ", ".join(f"{n} {state}" for state, n in record["trials"].items())
    print(f"rlpipe: '{task.experiment}': best trial {record['best_trial']} scored {record['best_value']:.6g} ({counts})")
    if record["first_error"]:
        print(f"rlpipe: '{task.experiment}': {record['first_error']}")
    print("\n".join(selection_lines(selection)))
    if args.config and selection["written"]:
        chosen = selection["chosen"]["init_kwargs"]
        result = update_init_kwargs(args.config, task.experiment, chosen, config_files=args.config_files)
        if result.changed:
            print(f"rlpipe: wrote the selected init_kwargs of '{task.experiment}' into {args.config} "
                  f"(backup: {result.backup}):\n{result.diff}")
        else:
            print(f"rlpipe: {args.config} already holds the selected init_kwargs of '{task.experiment}'")
    elif args.config:
        print(f"rlpipe: nothing written into {args.config}: '{task.experiment}' keeps its init_kwargs")


def _adastop_decide(args: argparse.Namespace) -> None:
    from rlpipe.core.adastop import AdastopTask, decide_interim
    from rlpipe.io.paths import StudyPaths

    task = AdastopTask.from_json(args.task)
    state = decide_interim(task, args.interim, StudyPaths(Path(args.results_dir)), [Path(r) for r in args.records],
                           Path(args.output))
    decisions = ", ".join(f"{p['first']} vs {p['second']}: {p['decision']}" for p in state["pairs"])
    print(f"rlpipe: AdaStop '{task.comparison}', interim {args.interim}: {decisions}; scores used: "
          + ", ".join(f"{name} {count}" for name, count in state["n_scores"].items())
          + ("; finished" if state["finished"] else f"; still compared: {', '.join(state['still_compared'])}"))


def _adastop_report(args: argparse.Namespace) -> None:
    import json

    from rlpipe.core.adastop_report import write_report
    from rlpipe.io.paths import AdastopPaths

    write_report(json.loads(Path(args.interim_file).read_text()), AdastopPaths(Path(args.output_dir)))


def _validate(args: argparse.Namespace) -> None:
    from rlpipe.spec.config import load_config_file
    from rlpipe.spec.experiment import validate_study
    from rlpipe.spec.sweeps import sweep_lines

    # tuning: also the checks a plain Snakemake run leaves to the optimize target (they import Optuna)
    study = validate_study(load_config_file(args.config), tuning=True, source=args.config)
    if not study.sweep_points:
        print(f"{args.config}: valid ({len(study.experiments)} experiments: {', '.join(study.experiments)})")
        return
    # With sweeps, what they expand into: a sweep of a thousand points is summed up, not listed.
    n_fit = {name: spec.n_fit for name, spec in study.experiments.items()}
    print(f"{args.config}: valid ({len(n_fit)} experiments, {sum(n_fit.values())} instances)")
    written = [name for name in study.experiments if name not in study.sweep_points]
    if written:
        print(f"  experiments: {', '.join(written)}")
    print("\n".join(sweep_lines(study.sweep_points, n_fit)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlpipe", description=__doc__.splitlines()[0])
    stages = parser.add_subparsers(dest="stage", required=True)
    for name, handler in (("fit", _fit), ("evaluate", _evaluate), ("aggregate", _aggregate)):
        stage = stages.add_parser(name, help=f"{name} stage (called by the Snakemake rule)")
        batched = name != "aggregate"
        stage.add_argument("--task", required=True, help="what the stage computes, as JSON: "
                           + ("a batch of instances' tasks" if batched else "the aggregate task"))
        if batched:
            stage.add_argument("--run", default="{}", help="the run settings as JSON: how the stage runs")
            stage.add_argument("--batch", required=True, type=int, help="index of the batch (names the job's record)")
            stage.add_argument("--record-prefix", default="", help="prefix of the job's record name, for the jobs of "
                               "another flow (adastop-: batches/adastop-fit-<b>.json)")
        stage.add_argument("--experiment-dir", required=True, help="the experiment's folder (layout of rlpipe.io.paths)")
        if not batched:
            stage.add_argument("batch_records", nargs="*", metavar="RECORD",
                               help="records of the fit and evaluate jobs: their instances' files are checked first")
        stage.set_defaults(handler=handler)
    worker = stages.add_parser("optimize-worker", help="run trials of an experiment's hyperparameter study")
    worker.add_argument("--task", required=True, help="the optimize task as JSON")
    worker.add_argument("--worker", required=True, type=int, help="index of this worker")
    worker.add_argument("--optimize-dir", required=True, help="the experiment's optimize folder")
    worker.set_defaults(handler=_optimize_worker)
    confirm = stages.add_parser("optimize-confirm", help="refit one candidate of a finished study on fresh seeds")
    confirm.add_argument("--task", required=True, help="the optimize task as JSON")
    confirm.add_argument("--confirm", required=True, help="the confirmation task of the candidate as JSON")
    confirm.add_argument("--optimize-dir", required=True, help="the experiment's optimize folder")
    confirm.set_defaults(handler=_optimize_confirm)
    select = stages.add_parser("optimize-select", help="summarize a study, confirm its best trials, write the selected "
                               "init_kwargs")
    select.add_argument("--task", required=True, help="the optimize task as JSON")
    select.add_argument("--optimize-dir", required=True, help="the experiment's optimize folder")
    select.add_argument("--confirm", help="the experiment's optimize.confirm settings as JSON (left out: the best trial "
                        "is written unconfirmed)")
    select.add_argument("--confirm-records", nargs="*", default=(), metavar="RECORD",
                        help="the records of the confirmation jobs (every trial rank, and the current init_kwargs)")
    select.add_argument("--config", help="config file whose init_kwargs receive the best values")
    select.add_argument("--config-files", nargs="*", default=(), metavar="FILE",
                        help="every config file in use, in order (--config among them): the edited config is "
                             "validated merged with the others, as Snakemake merges them")
    select.set_defaults(handler=_optimize_select)
    compare = stages.add_parser("compare", help="compare experiments from their summary.json files")
    compare.add_argument("--results-dir", required=True)
    compare.add_argument("summaries", nargs="+")
    compare.set_defaults(handler=_compare)
    across = stages.add_parser("cross-env", help="metrics across environments of the experiments' scores (rliable's)")
    across.add_argument("--task", required=True, help="the cross_env task as JSON (experiments, reference scores...)")
    across.add_argument("--results-dir", required=True, help="the results folder (layout of rlpipe.io.paths)")
    across.set_defaults(handler=_cross_env)
    provenance = stages.add_parser("provenance", help="write the study's provenance page (config, seed, commit, versions)")
    provenance.add_argument("--config", required=True, help="the config as the run saw it, as JSON")
    provenance.add_argument("--config-files", nargs="*", default=(), metavar="FILE", help="the config files in use")
    provenance.add_argument("--results-dir", required=True)
    provenance.add_argument("summaries", nargs="*", help="the experiments' summary.json files")
    provenance.set_defaults(handler=_provenance)
    decide = stages.add_parser("adastop-decide", help="an AdaStop interim's decisions, replayed from interim 0")
    decide.add_argument("--task", required=True, help="the comparison's task as JSON")
    decide.add_argument("--interim", required=True, type=int, help="the interim to decide (0-based)")
    decide.add_argument("--results-dir", required=True, help="the study's results folder")
    decide.add_argument("--output", required=True, help="the interim's JSON file")
    decide.add_argument("records", nargs="*", metavar="RECORD",
                        help="records of the evaluate jobs whose instances' scores it reads (checked first)")
    decide.set_defaults(handler=_adastop_decide)
    adastop_report = stages.add_parser("adastop-report", help="the tables and figure of a finished AdaStop comparison")
    adastop_report.add_argument("--interim-file", required=True, help="the JSON of its last interim")
    adastop_report.add_argument("--output-dir", required=True, help="the comparison's folder")
    adastop_report.set_defaults(handler=_adastop_report)
    page = stages.add_parser("page", help="write the report's page of an opt-in target's results (tuning, adastop)")
    page.add_argument("page", choices=("tuning", "adastop"))
    page.add_argument("--current", required=True, help="what the config defines now, as JSON: each tuned experiment's "
                      "study name, or each comparison's task hash (results of other settings are flagged)")
    page.add_argument("--results-dir", required=True)
    page.add_argument("--output", required=True)
    page.set_defaults(handler=_page)
    validate = stages.add_parser("validate", help="check a config file and exit")
    validate.add_argument("config")
    validate.set_defaults(handler=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    where = _describe(args)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except RlpipeError as error:
        print(f"rlpipe {args.stage}{where}: {error}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        print(f"rlpipe {args.stage}{where} failed: see the traceback above", file=sys.stderr)
        return 1
    return 0


def _describe(args: argparse.Namespace) -> str:
    """' (experiment X, instance I)' from the task, so every error names what failed."""
    import json

    try:
        task = json.loads(getattr(args, "task", "") or "{}")
    except ValueError:
        return ""
    if "first" in task:  # a batch of instances
        task = {**task["first"], "instances": task.get("instances", [])}
    parts = [f"experiment '{task['experiment']}'"] if "experiment" in task else []
    parts += [f"AdaStop comparison '{task['comparison']}'"] if "comparison" in task else []
    parts += [f"instance {task['instance']}"] if "instance" in task and "instances" not in task else []
    parts += [_instances(task["instances"])] if task.get("instances") else []
    return f" ({', '.join(parts)})" if parts else ""


def _instances(instances: list[int]) -> str:
    """A job's instances: always consecutive (a batch, or every instance of an experiment)."""
    return f"instance {instances[0]}" if len(instances) == 1 else f"instances {instances[0]}-{instances[-1]}"
