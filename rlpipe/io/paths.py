"""The on-disk layout of results, in one place: the Snakemake rules and ExperimentManager both use it.

``<root>/<experiment>/instances/<i>/`` holds one fitted instance; ``<root>/<experiment>/`` the
experiment's aggregates; ``<root>/`` the cross-experiment comparison. Functions accept wildcard
strings such as ``"{experiment}"`` so that Snakemake rules can use them as patterns.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = "results"


@dataclass(frozen=True)
class InstancePaths:
    """Files of one fitted instance."""

    folder: Path

    @property
    def checkpoint(self) -> Path:
        return self.folder / "agent.ckpt"

    @property
    def writer(self) -> Path:
        return self.folder / "writer.parquet"

    @property
    def fit_record(self) -> Path:
        return self.folder / "fit.json"

    @property
    def fit_log(self) -> Path:
        return self.folder / "fit.log"

    @property
    def evaluation(self) -> Path:
        return self.folder / "evaluation.parquet"

    @property
    def evaluation_log(self) -> Path:
        return self.folder / "evaluate.log"

    @property
    def progress(self) -> Path:
        """Resume state of an unfinished fit (not a Snakemake output, so Snakemake never deletes it)."""
        return self.folder / "progress"


@dataclass(frozen=True)
class BatchPaths:
    """Files of one Snakemake job that fits or evaluates a batch of an experiment's instances
    (``<experiment>/batches/<stage>-<index>.*``); the instances' own files stay in their folders."""

    folder: Path
    stage: str
    index: int | str

    @property
    def record(self) -> Path:
        """The job's output: which instances it handled and the hash of each one's task."""
        return self.folder / f"{self.stage}-{self.index}.json"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.stage}-{self.index}.log"

    @property
    def progress(self) -> Path:
        """The instances an unfinished job completed (not a Snakemake output: a rerun of the job resumes after them)."""
        return self.folder / f"{self.stage}-{self.index}.progress.json"


@dataclass(frozen=True)
class OptimizePaths:
    """Files of an experiment's hyperparameter study (``<experiment>/optimize/``)."""

    folder: Path

    @property
    def journal(self) -> Path:
        """Optuna journal storage of the study (default storage; not a Snakemake output, so it is kept)."""
        return self.folder / "journal.log"

    @property
    def study_lock(self) -> Path:
        """Held while a worker counts trials and asks for a new one, so the total is exact."""
        return self.folder / "study.lock"

    def running_lock(self, study: str, trial: int) -> Path:
        """Held by the worker running ``trial`` of ``study``: a free lock on a running trial means its worker died."""
        return self.folder / "running" / study / f"{trial}.lock"

    def trial_folder(self, study: str, trial: int) -> Path:
        """Output dir of the trial's agents, deleted when the trial ends."""
        return self.folder / "trials" / study / str(trial)

    def worker_record(self, worker: int | str) -> Path:
        return self.folder / "workers" / f"{worker}.json"

    def worker_log(self, worker: int | str) -> Path:
        return self.folder / "workers" / f"{worker}.log"

    @property
    def best_init_kwargs(self) -> Path:
        return self.folder / "best_init_kwargs.yaml"

    @property
    def trials(self) -> Path:
        return self.folder / "trials.parquet"

    @property
    def history_plot(self) -> Path:
        return self.folder / "history.png"

    @property
    def importance_plot(self) -> Path:
        return self.folder / "importance.png"

    @property
    def select_log(self) -> Path:
        return self.folder / "select.log"

    def confirm_record(self, candidate: int | str) -> Path:
        """Output of the job that refits one candidate on the confirmation's seeds (a trial rank, or "current")."""
        return self.folder / "confirm" / f"{candidate}.json"

    def confirm_log(self, candidate: int | str) -> Path:
        return self.folder / "confirm" / f"{candidate}.log"

    def confirm_folder(self, candidate: int | str) -> Path:
        """Output dir of a candidate's confirmation agents, deleted when its job ends."""
        return self.folder / "confirm" / "work" / str(candidate)

    @property
    def confirmation(self) -> Path:
        """One row per confirmed candidate: search and confirmed scores, interval, p-value, chosen, written."""
        return self.folder / "confirmation.csv"

    @property
    def selection(self) -> Path:
        """The selection's decision and why, with every candidate's per-instance confirmed scores and the seeds."""
        return self.folder / "selection.json"


@dataclass(frozen=True)
class ExperimentPaths:
    """Files of one experiment."""

    folder: Path

    def instance(self, index: int | str) -> InstancePaths:
        return InstancePaths(self.folder / "instances" / str(index))

    def batch(self, stage: str, index: int | str) -> BatchPaths:
        """The job of ``stage`` ("fit" or "evaluate") over the experiment's batch ``index`` of instances."""
        return BatchPaths(self.folder / "batches", stage, index)

    @property
    def writer_data(self) -> Path:
        return self.folder / "writer_data.parquet"

    @property
    def evaluation(self) -> Path:
        return self.folder / "evaluation.parquet"

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def learning_curve_plot(self) -> Path:
        return self.folder / "learning_curve.png"

    @property
    def evaluation_plot(self) -> Path:
        return self.folder / "evaluation.png"

    @property
    def aggregate_log(self) -> Path:
        return self.folder / "aggregate.log"

    @property
    def optimize(self) -> OptimizePaths:
        return OptimizePaths(self.folder / "optimize")

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files of the Python API's ``enable_tensorboard`` (one folder per instance)."""
        return self.folder / "tensorboard"

    def written(self) -> list[Path]:
        """Every file and folder an experiment's stages write here (what replacing an experiment removes)."""
        return [self.folder / "instances", self.folder / "batches", self.optimize.folder, self.tensorboard,
                self.writer_data, self.evaluation, self.summary, self.learning_curve_plot, self.evaluation_plot, self.aggregate_log]


@dataclass(frozen=True)
class AdastopPaths:
    """Files of one AdaStop comparison (``<root>/adastop/<name>/``); the instances it fits stay in their experiments'
    folders, and the jobs that fit them write ``<experiment>/batches/adastop-fit-<b>.json`` (and ``adastop-evaluate``)."""

    folder: Path

    def interim(self, k: int | str) -> Path:
        """The decisions after interim ``k``, the experiments still compared, the scores so far, provenance."""
        return self.folder / f"interim-{k}.json"

    def interim_log(self, k: int | str) -> Path:
        return self.folder / f"interim-{k}.log"

    @property
    def decisions_csv(self) -> Path:
        return self.folder / "decisions.csv"

    @property
    def decisions_md(self) -> Path:
        return self.folder / "decisions.md"

    @property
    def scores_csv(self) -> Path:
        return self.folder / "scores.csv"

    @property
    def seeds_csv(self) -> Path:
        return self.folder / "seeds.csv"

    @property
    def plot(self) -> Path:
        return self.folder / "adastop.png"

    @property
    def report_log(self) -> Path:
        return self.folder / "report.log"


@dataclass(frozen=True)
class StudyPaths:
    """Files of the whole study under ``root``."""

    root: Path = Path(DEFAULT_ROOT)

    def experiment(self, name: str) -> ExperimentPaths:
        return ExperimentPaths(self.root / name)

    @property
    def summary_csv(self) -> Path:
        return self.root / "summary.csv"

    @property
    def summary_md(self) -> Path:
        return self.root / "summary.md"

    @property
    def comparison_plot(self) -> Path:
        return self.root / "comparison.png"

    @property
    def compare_log(self) -> Path:
        return self.root / "compare.log"

    @property
    def cross_env(self) -> CrossEnvPaths:
        """The metrics across environments (with a ``metrics`` section in the config)."""
        return CrossEnvPaths(self.root / "cross_env")

    @property
    def provenance_html(self) -> Path:
        return self.root / "provenance.html"

    @property
    def provenance_json(self) -> Path:
        return self.root / "provenance.json"

    @property
    def provenance_log(self) -> Path:
        return self.root / "provenance.log"

    @property
    def tuning_page(self) -> Path:
        return self.root / "tuning.html"

    @property
    def adastop_page(self) -> Path:
        return self.root / "adastop.html"

    def page_log(self, page: str) -> Path:
        return self.root / f"{page}_page.log"

    def tuning_page_inputs(self, experiments: Iterable[str]) -> list[Path]:
        """What the tuning page reads of each tuned experiment (written by the optimize target)."""
        folders = [self.experiment(name).optimize for name in experiments]
        return [f for o in folders for f in (o.selection, o.best_init_kwargs, o.history_plot, o.importance_plot)]

    def adastop_page_inputs(self, comparisons: Iterable[str]) -> list[Path]:
        """What the AdaStop page reads of each comparison (written by the adastop target)."""
        folders = [self.adastop(name) for name in comparisons]
        return [f for a in folders for f in (a.decisions_csv, a.seeds_csv, a.plot)]

    def adastop(self, name: str) -> AdastopPaths:
        """The files of AdaStop comparison ``name`` of the config's ``adastop`` section."""
        return AdastopPaths(self.root / "adastop" / name)


@dataclass(frozen=True)
class CrossEnvPaths:
    """Files of the metrics across environments (``<root>/cross_env/``): tables as CSV (and Markdown and LaTeX for
    those a paper shows), figures as PNG and PDF."""

    folder: Path

    @property
    def scores(self) -> Path:
        """Every run's raw and normalised score, with its algorithm and env."""
        return self.folder / "scores.csv"

    def table(self, name: str, suffix: str = "csv") -> Path:
        """``aggregates``, ``improvement``, ``profiles`` or ``sample_efficiency`` as ``csv``, ``md`` or ``tex``."""
        return self.folder / f"{name}.{suffix}"

    def figure(self, name: str, suffix: str = "png") -> Path:
        """The figure of ``name`` (as :meth:`table`) as ``png`` or ``pdf``."""
        return self.folder / f"{name}.{suffix}"

    @property
    def log(self) -> Path:
        return self.folder / "cross_env.log"
