"""Reading the CSV tables rlpipe writes, as the tests of the stages that write them do."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from rlpipe.io.provenance import commit_label


def read_results_csv(path: Path) -> pd.DataFrame:
    """A CSV table rlpipe wrote, without its ``git_commit`` column, checked to name the commit of this code."""
    table = pd.read_csv(path)
    assert set(table["git_commit"]) == {commit_label()}, path
    return table.drop(columns="git_commit")
