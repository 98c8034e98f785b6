"""The files a hyperparameter study leaves behind: best init kwargs (YAML), trials (Parquet), plots (PNG)."""
from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import optuna
import pandas as pd
import yaml
from optuna.trial import FrozenTrial

from rlpipe.core.plots import importance_figure, optimization_history_figure
from rlpipe.io.atomic import save_figure, write_parquet, write_text
from rlpipe.io.paths import OptimizePaths


def write_study_outputs(study: optuna.Study, trials: list[FrozenTrial], record: dict[str, Any],
                        paths: OptimizePaths) -> None:
    """Write every output of the study; ``best_init_kwargs.yaml`` last, since it marks the study as summarized."""
    table = trials_table(study)
    write_parquet(paths.trials, table, metadata={k: record[k] for k in ("experiment", "study", "root_seed", "versions", "git")})
    title = f"{record['experiment']}: {len(trials)} trials"
    save_figure(optimization_history_figure(table, title), paths.history_plot, dpi=120)
    importances = parameter_importances(study, trials)
    save_figure(importance_figure(importances, f"{record['experiment']}: parameter importance"),
                paths.importance_plot, dpi=120)
    write_text(paths.best_init_kwargs, best_init_kwargs_text({**record, "importances": importances}))


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """``study.trials_dataframe()`` with columns Parquet cannot hold as they are written as JSON text:
    nested user attributes (init kwargs), and parameters whose values mix types (categorical choices
    such as ``["auto", 0.5]``)."""
    table = study.trials_dataframe()
    for column in table.columns:
        if table[column].dtype == object and _needs_json(table[column]):
            table[column] = table[column].map(lambda v: json.dumps(v, sort_keys=True) if _present(v) else None)
    return table


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _needs_json(values: pd.Series) -> bool:
    present = [v for v in values if _present(v)]
    kinds = {type(v) for v in present}
    numbers = kinds & {int, float}  # ints and floats share a Parquet column
    return any(isinstance(v, (dict, list)) for v in present) or len(kinds - numbers) + bool(numbers) > 1


def parameter_importances(study: optuna.Study, trials: list[FrozenTrial]) -> dict[str, float]:
    """PED-ANOVA importances of the completed trials' parameters: how much each one matters for reaching
    the best 10% of scores. Deterministic and pure numpy (fANOVA would need scikit-learn). Empty when
    there are too few completed trials or no parameter that varies."""
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    varying = {name for t in complete for name in t.params
               if len({json.dumps(other.params.get(name), default=str) for other in complete}) > 1}
    if len(complete) < 2 or not varying:
        return {}
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        with warnings.catch_warnings():  # "quantiles select the same set of trials" on small studies: equal shares, shown as such
            warnings.simplefilter("ignore", UserWarning)
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):  # e.g. no parameter took two values
        return {}
    return {name: float(value) for name, value in importances.items() if name in varying and np.isfinite(value)}


def best_init_kwargs_text(record: dict[str, Any]) -> str:
    header = (f"# Best init_kwargs of '{record['experiment']}' (trial {record['best_trial']}, score {record['best_value']:.6g}),\n"
              "# written by rlpipe's optimize stage; the `optimize` target copies init_kwargs into the config.\n")
    selection = record.get("selection")
    if selection is not None:  # confirmed on fresh seeds: what the config received, if anything, is said under selection
        header = (f"# Best trial of '{record['experiment']}' by search score: {record['best_trial']} ({record['best_value']:.6g}; "
                  "biased up, the maximum of noisy scores).\n"
                  f"# Selection on fresh seeds: {selection['decision']}. {selection['reason']}\n"
                  "# The config received selection.init_kwargs only if selection.written is true.\n")
    return header + yaml.safe_dump(json.loads(json.dumps(record, default=str)), sort_keys=False, width=120)
